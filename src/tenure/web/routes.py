"""Dashboard pages. Clients of the domain services: no SQL here."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tenure import db as tenure_db
from tenure.accounts import service as accounts_service
from tenure.auth import service as auth_service
from tenure.auth.dependencies import (
    SESSION_COOKIE,
    clear_session_cookie,
    client_ip,
    optional_actor,
    set_session_cookie,
)
from tenure.deps import DB, State
from tenure.ingest import service as ingest_service
from tenure.kit.actor import Actor
from tenure.kit.errors import Forbidden, InvalidInput, TenureError, Unauthorized
from tenure.kit.security import constant_time_equals, sign
from tenure.monitor import service as monitor_service
from tenure.web.charts import BarChart, bar_chart
from tenure.web.templating import templates

router = APIRouter(include_in_schema=False)

NAV = [
    ("portfolio", "Portfolio", "/"),
    ("accounts", "Accounts", "/accounts"),
    ("interventions", "Interventions", None),
    ("playbooks", "Playbooks", None),
    ("reports", "Reports", None),
    ("models", "Models", None),
    ("system", "System", "/system"),
    ("settings", "Settings", "/settings"),
]
PAGE_SIZE = 50
USAGE_MONTHS = 18


class LoginRequired(TenureError):
    status = 303
    title = "Login required"


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an attacker must not bounce a fresh login to another host.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def page_actor(request: Request, actor: Annotated[Actor | None, Depends(optional_actor)]) -> Actor:
    if actor is None or actor.kind != "user":
        raise LoginRequired(
            request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
    return actor


PageActor = Annotated[Actor, Depends(page_actor)]


def csrf_token(request: Request, state: State) -> str:
    return sign(state.secret_key, "csrf:" + (request.cookies.get(SESSION_COOKIE) or ""))


def check_csrf(request: Request, state: State, token: str) -> None:
    if not constant_time_equals(token, csrf_token(request, state)):
        raise Forbidden("the form expired or did not come from this site; reload and try again")


def render(
    request: Request,
    template: str,
    state: State,
    actor: Actor | None,
    nav: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        template,
        {
            "user": actor,
            "nav": nav,
            "nav_items": NAV,
            "csrf": csrf_token(request, state),
            **context,
        },
        status_code=status_code,
    )


# -- login -----------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, state: State, next: str | None = None) -> HTMLResponse:
    return render(
        request, "login.html", state, None, "", next=_safe_next(next), error=None, email=""
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
            next=_safe_next(next),
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
    response = RedirectResponse(_safe_next(next), status_code=303)
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


# -- pages -----------------------------------------------------------------------------------


@router.get("/")
def portfolio(request: Request, db: DB, state: State, actor: PageActor) -> HTMLResponse:
    summary = accounts_service.portfolio_summary(db)
    return render(request, "portfolio.html", state, actor, "portfolio", summary=summary)


def _usage_chart(usage: list[ingest_service.MonthUsage], what: str) -> BarChart:
    points = [
        (
            m.month.strftime("%b"),
            m.events,
            f"{m.month:%B %Y}: {m.events:,} events, {m.active_days:,} active days",
        )
        for m in usage
    ]
    return bar_chart(
        points, description=f"{what} per month, {usage[0].month:%b %Y} to {usage[-1].month:%b %Y}"
    )


@router.get("/fragments/seasonality")
def seasonality(request: Request, db: DB, state: State, actor: PageActor) -> HTMLResponse:
    """Portfolio activity per month and hemisphere: the wedding seasons, loaded lazily."""
    today = state.clock.now().date()
    charts = [
        (
            hemisphere,
            _usage_chart(
                ingest_service.monthly_usage(
                    db,
                    until=today,
                    months=USAGE_MONTHS,
                    account_ids=accounts_service.ids_query(hemisphere=hemisphere),
                ),
                f"Product events of {hemisphere}ern accounts",
            ),
        )
        for hemisphere in ("north", "south")
    ]
    return render(request, "_seasonality.html", state, actor, "portfolio", charts=charts)


@router.get("/accounts")
def accounts(
    request: Request,
    db: DB,
    state: State,
    actor: PageActor,
    q: Annotated[str, Query(max_length=200)] = "",
    category: str = "",
    plan: str = "",
    status: str = "",
    owner: str = "",
    sort: str = "name",
    order: str = "asc",
    cursor: str | None = None,
) -> HTMLResponse:
    if status and status not in ("trial", "active", "churned"):
        raise InvalidInput(f"unknown status '{status}'")
    if order not in ("asc", "desc"):
        raise InvalidInput("order must be asc or desc")
    # "me" is the CSM's own book of accounts; otherwise a staff user's id.
    owner_id: uuid.UUID | None = None
    if owner == "me":
        owner_id = actor.user_id
    elif owner:
        try:
            owner_id = uuid.UUID(owner)
        except ValueError as exc:
            raise InvalidInput(f"unknown owner '{owner}'") from exc
    filters = accounts_service.AccountFilters(
        q=q or None,
        category=category or None,
        plan=plan or None,
        status=status or None,
        owner_id=owner_id,
    )
    page = accounts_service.list_accounts(
        db, filters, sort=sort, descending=order == "desc", cursor=cursor, limit=PAGE_SIZE
    )
    total = accounts_service.count_accounts(db, filters)
    params = {
        k: v
        for k, v in {
            "q": q,
            "category": category,
            "plan": plan,
            "status": status,
            "owner": owner,
            "sort": sort,
            "order": order,
        }.items()
        if v
    }

    def link(**extra: str) -> str:
        return "/accounts?" + urlencode({**params, **extra})

    def sort_link(key: str) -> str:
        flip = "desc" if sort == key and order == "asc" else "asc"
        base = {k: v for k, v in params.items() if k not in ("sort", "order")}
        return "/accounts?" + urlencode({**base, "sort": key, "order": flip})

    context: dict[str, Any] = {
        "page": page,
        "total": total,
        "q": q,
        "category": category,
        "plan": plan,
        "status": status,
        "owner": owner,
        "owners": [u for u in auth_service.list_users(db) if u.role in ("admin", "csm")],
        "sort": sort,
        "order": order,
        "facets": accounts_service.facets(db),
        "next_link": link(cursor=page.next_cursor) if page.next_cursor else None,
        "prev_link": link(cursor=page.prev_cursor) if page.prev_cursor else None,
        "sort_link": sort_link,
    }
    template = (
        "accounts/_results.html" if request.headers.get("hx-request") else "accounts/list.html"
    )
    return render(request, template, state, actor, "accounts", **context)


@router.get("/accounts/{account_id}")
def account_detail(
    request: Request, account_id: uuid.UUID, db: DB, state: State, actor: PageActor
) -> HTMLResponse:
    account = accounts_service.get_account(db, account_id)
    parent = accounts_service.get_account(db, account.parent_id) if account.parent_id else None
    context: dict[str, Any] = {
        "account": account,
        "parent": parent,
        "children": accounts_service.list_children(db, account.id),
        "contacts": accounts_service.list_contacts(db, account.id),
        "notes": accounts_service.list_notes(db, account.id),
        "can_write": actor.has_scope("write"),
        "usage": _usage_chart(
            ingest_service.monthly_usage(
                db, until=state.clock.now().date(), months=USAGE_MONTHS, account_id=account.id
            ),
            "Product events",
        ),
        "history": auth_service.list_audit(
            db, limit=20, target_type="account", target_id=str(account.id)
        )
        if actor.has_scope("admin")
        else [],
    }
    return render(request, "accounts/detail.html", state, actor, "accounts", **context)


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
    )


def _require_admin(actor: Actor) -> None:
    if not actor.has_scope("admin"):
        raise Forbidden("only administrators can open Settings")


@router.get("/settings")
def settings_page(request: Request, db: DB, state: State, actor: PageActor) -> HTMLResponse:
    _require_admin(actor)
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
    _require_admin(actor)
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
    _require_admin(actor)
    check_csrf(request, state, csrf)
    record = auth_service.find_api_key(db, str(key_id))
    auth_service.revoke_api_key(db, record, actor=actor, now=state.clock.now())
    return RedirectResponse("/settings", status_code=303)


@router.post("/accounts/{account_id}/notes")
def account_add_note(
    request: Request,
    account_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    body: Annotated[str, Form(max_length=10_000)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, state, csrf)
    if not actor.has_scope("write"):
        raise Forbidden("viewers cannot add notes")
    accounts_service.add_note(db, account_id, body, actor=actor, now=state.clock.now())
    return RedirectResponse(f"/accounts/{account_id}#notes", status_code=303)
