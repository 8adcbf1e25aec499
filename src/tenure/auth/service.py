"""Staff users, login sessions, API keys and the audit log."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from tenure.auth import repository as repo
from tenure.auth.models import ROLE_SCOPES, ApiKey, AuditEntry, Role, Scope, StaffUser, UserSession
from tenure.kit.actor import Actor
from tenure.kit.errors import Conflict, InvalidInput, NotFound, Unauthorized
from tenure.kit.security import (
    hash_password,
    new_token,
    password_needs_rehash,
    token_digest,
    verify_password,
)

LOGIN_FAILED = "Invalid email or password"
API_KEY_PREFIX = "tn_"
MIN_PASSWORD_LENGTH = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Touching last_seen/last_used on every request would turn every read into a write.
_TOUCH_EVERY = timedelta(minutes=5)


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > 320:
        raise InvalidInput(f"'{email}' is not a valid email address", field="email")
    return email


def parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError as exc:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidInput(f"unknown role '{role}' (choose {allowed})", field="role") from exc


def parse_scopes(scopes: Iterable[str]) -> list[str]:
    result: list[str] = []
    for scope in scopes:
        try:
            value = Scope(scope).value
        except ValueError as exc:
            allowed = ", ".join(s.value for s in Scope)
            raise InvalidInput(
                f"unknown scope '{scope}' (choose {allowed})", field="scopes"
            ) from exc
        if value not in result:
            result.append(value)
    if not result:
        raise InvalidInput("an API key needs at least one scope", field="scopes")
    return result


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )


def audit(
    session: Session,
    actor: Actor,
    action: str,
    *,
    now: datetime,
    target_type: str | None = None,
    target_id: str | uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Record one write in the audit log, in the caller's transaction."""
    entry = AuditEntry(
        at=now,
        actor_type=actor.kind,
        actor_id=actor.id,
        actor_label=actor.label,
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        details=details or {},
        ip=actor.ip,
    )
    session.add(entry)
    return entry


def list_audit(
    session: Session,
    *,
    limit: int = 100,
    target_type: str | None = None,
    target_id: str | None = None,
) -> list[AuditEntry]:
    return repo.audit_entries(session, limit=limit, target_type=target_type, target_id=target_id)


# -- users -----------------------------------------------------------------------------------


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    role: str,
    actor: Actor,
    now: datetime,
    name: str | None = None,
) -> StaffUser:
    """Create a staff user; the email is unique (case-insensitive)."""
    email = normalise_email(email)
    parsed_role = parse_role(role)
    check_password_strength(password)
    if repo.user_by_email(session, email) is not None:
        raise Conflict(f"a user with email {email} already exists")
    user = StaffUser(
        email=email,
        name=name,
        role=parsed_role.value,
        password_hash=hash_password(password),
        is_active=True,
        created_at=now,
    )
    session.add(user)
    session.flush()
    audit(
        session,
        actor,
        "user.create",
        now=now,
        target_type="user",
        target_id=user.id,
        details={"email": email, "role": parsed_role.value},
    )
    return user


def list_users(session: Session) -> list[StaffUser]:
    return repo.users(session)


def has_users(session: Session) -> bool:
    return repo.count_users(session) > 0


def get_user(session: Session, user_id: uuid.UUID) -> StaffUser:
    user = repo.user_by_id(session, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    return user


def find_user(session: Session, ref: str) -> StaffUser:
    """A user by email or id."""
    try:
        return get_user(session, uuid.UUID(ref))
    except ValueError:
        pass
    user = repo.user_by_email(session, ref.strip().lower())
    if user is None:
        raise NotFound(f"no user {ref}")
    return user


def set_user_active(
    session: Session, user: StaffUser, active: bool, *, actor: Actor, now: datetime
) -> StaffUser:
    """Disable (and log out everywhere) or re-enable a user."""
    user.is_active = active
    if not active:
        repo.delete_sessions_of(session, user.id)
    audit(
        session,
        actor,
        "user.enable" if active else "user.disable",
        now=now,
        target_type="user",
        target_id=user.id,
        details={"email": user.email},
    )
    return user


def actor_for_user(user: StaffUser, ip: str | None = None) -> Actor:
    scopes = frozenset(s.value for s in ROLE_SCOPES[Role(user.role)])
    return Actor(
        kind="user",
        id=str(user.id),
        label=user.email,
        scopes=scopes,
        role=user.role,
        user_id=user.id,
        ip=ip,
    )


# -- login sessions --------------------------------------------------------------------------


def authenticate(session: Session, email: str, password: str, *, now: datetime) -> StaffUser:
    """The active user with these credentials; the same error whatever part is wrong."""
    user = repo.user_by_email(session, email.strip().lower())
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        raise Unauthorized(LOGIN_FAILED)
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now
    return user


@dataclass(frozen=True)
class NewSession:
    token: str
    record: UserSession


def start_session(
    session: Session,
    user: StaffUser,
    *,
    now: datetime,
    max_age: timedelta,
    ip: str | None = None,
    user_agent: str | None = None,
) -> NewSession:
    """A server-side session; only the returned token (for the cookie) can find it."""
    token = new_token()
    record = UserSession(
        token_hash=token_digest(token),
        user_id=user.id,
        created_at=now,
        expires_at=now + max_age,
        last_seen_at=now,
        ip=ip,
        user_agent=(user_agent or "")[:255] or None,
    )
    session.add(record)
    audit(
        session,
        actor_for_user(user, ip),
        "session.login",
        now=now,
        target_type="user",
        target_id=user.id,
    )
    return NewSession(token=token, record=record)


def resolve_session(session: Session, token: str, *, now: datetime) -> StaffUser | None:
    """The active user behind a session token, or None if unknown/expired/disabled."""
    record = repo.session_by_token_hash(session, token_digest(token))
    if record is None:
        return None
    if record.expires_at <= now:
        repo.delete_session(session, record.token_hash)
        return None
    user = repo.user_by_id(session, record.user_id)
    if user is None or not user.is_active:
        return None
    if now - record.last_seen_at > _TOUCH_EVERY:
        record.last_seen_at = now
    return user


def end_session(session: Session, token: str, *, actor: Actor | None, now: datetime) -> None:
    repo.delete_session(session, token_digest(token))
    if actor is not None:
        audit(session, actor, "session.logout", now=now, target_type="user", target_id=actor.id)


# -- API keys --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewApiKey:
    key: str  # shown once, never stored
    record: ApiKey


def create_api_key(
    session: Session, *, name: str, scopes: Iterable[str], actor: Actor, now: datetime
) -> NewApiKey:
    """A random key with scopes; only its SHA-256 digest and visible prefix are stored."""
    name = name.strip()
    if not name:
        raise InvalidInput("an API key needs a name", field="name")
    parsed = parse_scopes(scopes)
    secret = new_token(32)
    key = f"{API_KEY_PREFIX}{secret}"
    record = ApiKey(
        name=name[:255],
        prefix=key[: len(API_KEY_PREFIX) + 8],
        key_hash=token_digest(key),
        scopes=parsed,
        created_by_id=actor.user_id,
        created_at=now,
    )
    session.add(record)
    session.flush()
    audit(
        session,
        actor,
        "api_key.create",
        now=now,
        target_type="api_key",
        target_id=record.id,
        details={"name": record.name, "prefix": record.prefix, "scopes": parsed},
    )
    return NewApiKey(key=key, record=record)


def list_api_keys(session: Session) -> list[ApiKey]:
    return repo.api_keys(session)


def find_api_key(session: Session, ref: str) -> ApiKey:
    record = repo.api_key_by_id_or_prefix(session, ref.strip())
    if record is None:
        raise NotFound(f"no API key {ref}")
    return record


def revoke_api_key(session: Session, record: ApiKey, *, actor: Actor, now: datetime) -> ApiKey:
    if record.revoked_at is None:
        record.revoked_at = now
        audit(
            session,
            actor,
            "api_key.revoke",
            now=now,
            target_type="api_key",
            target_id=record.id,
            details={"prefix": record.prefix},
        )
    return record


def authenticate_api_key(
    session: Session, key: str, *, now: datetime, ip: str | None = None
) -> Actor:
    """The actor behind a bearer key; missing, unknown and revoked keys are all 401."""
    record = repo.api_key_by_hash(session, token_digest(key.strip())) if key else None
    if record is None or record.revoked_at is not None:
        raise Unauthorized("Invalid or revoked API key")
    if record.last_used_at is None or now - record.last_used_at > _TOUCH_EVERY:
        record.last_used_at = now
    return Actor(
        kind="api_key",
        id=str(record.id),
        label=f"{record.name} ({record.prefix})",
        scopes=frozenset(record.scopes),
        ip=ip,
    )


def prune_expired_sessions(session: Session, *, now: datetime) -> int:
    """Delete dashboard sessions past their expiry; returns how many."""
    return repo.delete_expired_sessions(session, now)
