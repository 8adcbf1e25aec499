"""Who is calling: bearer API key or session cookie, and what they may do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from tenure.auth import service
from tenure.deps import DB, State
from tenure.kit.actor import Actor
from tenure.kit.errors import Forbidden, Unauthorized

SESSION_COOKIE = "tenure_session"


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def optional_actor(request: Request, db: DB, state: State) -> Actor | None:
    now = state.clock.now()
    header = request.headers.get("authorization")
    if header:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise Unauthorized("Authorization header must be 'Bearer <API key>'")
        return service.authenticate_api_key(db, credentials, now=now, ip=client_ip(request))
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        user = service.resolve_session(db, token, now=now)
        if user is not None:
            return service.actor_for_user(user, client_ip(request))
    return None


def current_actor(actor: Annotated[Actor | None, Depends(optional_actor)]) -> Actor:
    if actor is None:
        raise Unauthorized(
            "Authentication required: send 'Authorization: Bearer <API key>' or log in"
        )
    return actor


def require(scope: str) -> Callable[[Actor], Actor]:
    def check(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
        if not actor.has_scope(scope):
            raise Forbidden(f"this requires the '{scope}' scope")
        return actor

    return check


Reader = Annotated[Actor, Depends(require("read"))]
Writer = Annotated[Actor, Depends(require("write"))]
Admin = Annotated[Actor, Depends(require("admin"))]


def set_session_cookie(response: object, token: str, state: State) -> None:
    """HttpOnly, SameSite=Lax; Secure in production (or when configured)."""
    response.set_cookie(  # type: ignore[attr-defined]
        SESSION_COOKIE,
        token,
        max_age=state.settings.session_max_age_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=state.settings.cookies_secure,
        path="/",
    )


def clear_session_cookie(response: object) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")  # type: ignore[attr-defined]
