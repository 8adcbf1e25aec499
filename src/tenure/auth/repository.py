"""Every query of the auth domain."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tenure.auth.models import ApiKey, AuditEntry, StaffUser, UserSession


def user_by_email(session: Session, email: str) -> StaffUser | None:
    return session.scalar(select(StaffUser).where(StaffUser.email == email))


def user_by_id(session: Session, user_id: uuid.UUID) -> StaffUser | None:
    return session.get(StaffUser, user_id)


def users(session: Session) -> list[StaffUser]:
    return list(session.scalars(select(StaffUser).order_by(StaffUser.email)))


def count_admins(session: Session) -> int:
    return (
        session.scalar(select(func.count()).select_from(StaffUser).where(StaffUser.role == "admin"))
        or 0
    )


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(StaffUser)) or 0


def session_by_token_hash(session: Session, token_hash: str) -> UserSession | None:
    return session.scalar(select(UserSession).where(UserSession.token_hash == token_hash))


def delete_session(session: Session, token_hash: str) -> None:
    session.execute(delete(UserSession).where(UserSession.token_hash == token_hash))


def delete_sessions_of(session: Session, user_id: uuid.UUID) -> None:
    session.execute(delete(UserSession).where(UserSession.user_id == user_id))


def api_key_by_hash(session: Session, key_hash: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))


def api_key_by_id_or_prefix(session: Session, ref: str) -> ApiKey | None:
    try:
        return session.get(ApiKey, uuid.UUID(ref))
    except ValueError:
        return session.scalar(select(ApiKey).where(ApiKey.prefix == ref))


def api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc())))


def audit_entries(
    session: Session, *, limit: int, target_type: str | None = None, target_id: str | None = None
) -> list[AuditEntry]:
    query = select(AuditEntry)
    if target_type:
        query = query.where(AuditEntry.target_type == target_type)
    if target_id:
        query = query.where(AuditEntry.target_id == target_id)
    return list(session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)))


def delete_expired_sessions(session: Session, now: datetime) -> int:
    result = session.execute(delete(UserSession).where(UserSession.expires_at <= now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
