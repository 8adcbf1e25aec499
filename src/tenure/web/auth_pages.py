"""Dashboard sign-in and sign-out: the login form, its POST (a session cookie and a redirect
to a same-site page) and logout."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tenure.auth import service as auth_service
from tenure.auth.dependencies import (
    SESSION_COOKIE,
    clear_session_cookie,
    client_ip,
    set_session_cookie,
)
from tenure.deps import DB, State
from tenure.kit.errors import Unauthorized
from tenure.web.pages import PageActor, check_csrf, render, safe_next

router = APIRouter(include_in_schema=False)


@router.get("/login")
def login_form(request: Request, state: State, next: str | None = None) -> HTMLResponse:
    return render(
        request, "login.html", state, None, "", next=safe_next(next), error=None, email=""
    )


@router.post("/login")
def login_submit(
    request: Request,
    db: DB,
    state: State,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    now = state.clock.now()
    try:
        user = auth_service.authenticate(db, email, password, now=now)
    except Unauthorized as exc:
        return render(
            request,
            "login.html",
            state,
            None,
            "",
            status_code=401,
            next=safe_next(next),
            error=exc.detail,
            email=email,
        )
    started = auth_service.start_session(
        db,
        user,
        now=now,
        max_age=timedelta(hours=state.settings.session_max_age_hours),
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(response, started.token, state)
    return response


@router.post("/logout")
def logout(
    request: Request,
    db: DB,
    state: State,
    actor: PageActor,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, state, csrf)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        auth_service.end_session(db, token, actor=actor, now=state.clock.now())
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response
