from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from tenure.auth import service as auth_service
from tenure.auth.models import StaffUser
from tenure.kit.actor import Actor


def make_user(
    session: Session,
    *,
    now: datetime,
    email: str = "csm@example.com",
    role: str = "csm",
    password: str = "a long enough password",
    name: str | None = None,
) -> StaffUser:
    return auth_service.create_user(
        session,
        email=email,
        password=password,
        role=role,
        name=name,
        actor=Actor.system("tests"),
        now=now,
    )


def make_api_key(
    session: Session, *, now: datetime, scopes: list[str], name: str = "test key"
) -> str:
    return auth_service.create_api_key(
        session, name=name, scopes=scopes, actor=Actor.system("tests"), now=now
    ).key
