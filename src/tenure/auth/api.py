"""Routes: login sessions, staff users, API keys, audit log."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from tenure.auth import service
from tenure.auth.dependencies import (
    SESSION_COOKIE,
    Admin,
    clear_session_cookie,
    client_ip,
    current_actor,
    optional_actor,
    set_session_cookie,
)
from tenure.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    AuditRead,
    LoginRequest,
    Me,
    UserCreate,
    UserRead,
)
from tenure.deps import DB, State
from tenure.kit.actor import Actor

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post("/session", response_model=UserRead, summary="Log in (sets the session cookie)")
def login(
    body: LoginRequest, request: Request, response: Response, db: DB, state: State
) -> UserRead:
    now = state.clock.now()
    user = service.authenticate(db, body.email, body.password, now=now)
    started = service.start_session(
        db,
        user,
        now=now,
        max_age=timedelta(hours=state.settings.session_max_age_hours),
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    set_session_cookie(response, started.token, state)
    return UserRead.model_validate(user)


@router.delete("/session", status_code=204, summary="Log out")
def logout(
    request: Request,
    response: Response,
    db: DB,
    state: State,
    actor: Annotated[Actor | None, Depends(optional_actor)],
) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        service.end_session(db, token, actor=actor, now=state.clock.now())
    clear_session_cookie(response)


@router.get("/me", response_model=Me)
def me(actor: Annotated[Actor, Depends(current_actor)]) -> Me:
    return Me(kind=actor.kind, label=actor.label, role=actor.role, scopes=sorted(actor.scopes))


@router.get("/users", response_model=list[UserRead])
def list_users(db: DB, _: Admin) -> list[UserRead]:
    return [UserRead.model_validate(u) for u in service.list_users(db)]


@router.post("/users", response_model=UserRead, status_code=201)
def create_user(body: UserCreate, db: DB, state: State, actor: Admin) -> UserRead:
    user = service.create_user(
        db,
        email=body.email,
        password=body.password,
        role=body.role,
        name=body.name,
        actor=actor,
        now=state.clock.now(),
    )
    return UserRead.model_validate(user)


@router.post("/users/{user_id}/disable", response_model=UserRead)
def disable_user(user_id: uuid.UUID, db: DB, state: State, actor: Admin) -> UserRead:
    user = service.get_user(db, user_id)
    return UserRead.model_validate(
        service.set_user_active(db, user, False, actor=actor, now=state.clock.now())
    )


@router.get("/keys", response_model=list[ApiKeyRead])
def list_keys(db: DB, _: Admin) -> list[ApiKeyRead]:
    return [ApiKeyRead.model_validate(k) for k in service.list_api_keys(db)]


@router.post("/keys", response_model=ApiKeyCreated, status_code=201)
def create_key(body: ApiKeyCreate, db: DB, state: State, actor: Admin) -> ApiKeyCreated:
    created = service.create_api_key(
        db, name=body.name, scopes=body.scopes, actor=actor, now=state.clock.now()
    )
    return ApiKeyCreated(**ApiKeyRead.model_validate(created.record).model_dump(), key=created.key)


@router.delete("/keys/{key_id}", response_model=ApiKeyRead)
def revoke_key(key_id: uuid.UUID, db: DB, state: State, actor: Admin) -> ApiKeyRead:
    record = service.find_api_key(db, str(key_id))
    return ApiKeyRead.model_validate(
        service.revoke_api_key(db, record, actor=actor, now=state.clock.now())
    )


@router.get("/audit", response_model=list[AuditRead])
def audit_log(
    db: DB,
    _: Admin,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    target_type: str | None = None,
    target_id: str | None = None,
) -> list[AuditRead]:
    entries = service.list_audit(db, limit=limit, target_type=target_type, target_id=target_id)
    return [AuditRead.model_validate(e) for e in entries]
