"""The System page (readiness, database, settings in use) and Settings: users, API keys
(create, revoke) and the audit log. Settings is for administrators; its outbound webhooks
pages are in tenure.web.webhooks."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tenure import db as tenure_db
from tenure.auth import service as auth_service
from tenure.deps import DB, State
from tenure.hub.events import EVENT_TYPES
from tenure.kit.errors import InvalidInput
from tenure.monitor import service as monitor_service
from tenure.web.pages import PageActor, check_csrf, render, require_admin

router = APIRouter(include_in_schema=False)


@router.get("/system")
def system(request: Request, state: State, actor: PageActor) -> HTMLResponse:
    readiness = monitor_service.readiness(state.engine, state.settings.redis_url)
    return render(
        request,
        "system.html",
        state,
        actor,
        "system",
        readiness=readiness,
        database=tenure_db.describe(state.engine),
        settings=state.settings,
        live_types=sorted(EVENT_TYPES),
    )


@router.get("/settings")
def settings_page(request: Request, db: DB, state: State, actor: PageActor) -> HTMLResponse:
    require_admin(actor)
    return render(
        request,
        "settings.html",
        state,
        actor,
        "settings",
        new_key=None,
        error=None,
        users=auth_service.list_users(db),
        keys=auth_service.list_api_keys(db),
        audit=auth_service.list_audit(db, limit=30),
    )


@router.post("/settings/keys")
def settings_create_key(
    request: Request,
    db: DB,
    state: State,
    actor: PageActor,
    name: Annotated[str, Form(max_length=255)] = "",
    scopes: Annotated[list[str] | None, Form()] = None,
    csrf: Annotated[str, Form()] = "",
) -> HTMLResponse:
    require_admin(actor)
    check_csrf(request, state, csrf)
    new_key, error = None, None
    try:
        with db.begin_nested():
            new_key = auth_service.create_api_key(
                db, name=name, scopes=scopes or [], actor=actor, now=state.clock.now()
            )
    except InvalidInput as exc:
        error = exc.detail
    return render(
        request,
        "settings.html",
        state,
        actor,
        "settings",
        status_code=201 if new_key else 422,
        new_key=new_key,
        error=error,
        users=auth_service.list_users(db),
        keys=auth_service.list_api_keys(db),
        audit=auth_service.list_audit(db, limit=30),
    )


@router.post("/settings/keys/{key_id}/revoke")
def settings_revoke_key(
    request: Request,
    key_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    require_admin(actor)
    check_csrf(request, state, csrf)
    record = auth_service.find_api_key(db, str(key_id))
    auth_service.revoke_api_key(db, record, actor=actor, now=state.clock.now())
    return RedirectResponse("/settings", status_code=303)
