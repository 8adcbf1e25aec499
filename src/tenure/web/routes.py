"""Dashboard pages. Clients of the domain services: no SQL here."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

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
from tenure.hub.events import EVENT_TYPES
from tenure.ingest import service as ingest_service
from tenure.kit.actor import Actor
from tenure.kit.errors import Conflict, Forbidden, InvalidInput, TenureError, Unauthorized
from tenure.kit.security import constant_time_equals, sign
from tenure.monitor import service as monitor_service
from tenure.web.charts import BarChart, bar_chart
from tenure.web.templating import templates
from tenure.webhooks import service as webhooks_service
from tenure.webhooks.models import WebhookStatus
from tenure.webhooks.schemas import EndpointCreate, EndpointUpdate

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
        live_types=sorted(EVENT_TYPES),
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


# -- settings: outbound webhooks ---------------------------------------------------------------

WEBHOOK_PAGE_SIZE = 50
# Messages after a POST-redirect-GET: the query names one of these, never free text.
WEBHOOK_NOTICES = {
    "enabled": "Endpoint enabled: its pending deliveries resume now.",
    "disabled": "Endpoint disabled: nothing is sent to it until it is enabled again.",
    "deleted": "Endpoint deleted, with its delivery log.",
    "test": (
        "A webhook.test event was queued for this endpoint: the worker sends it within "
        "seconds and it appears in the delivery log."
    ),
    "replayed": "The delivery was set to be sent again, from its first attempt.",
}


def _webhook_notice(done: str, replayed: int | None) -> str | None:
    if done == "range" and replayed is not None:
        return (
            f"{replayed} deliver{'y' if replayed == 1 else 'ies'} set to be sent again."
            if replayed
            else "No delivery in that range matched: nothing to send again."
        )
    return WEBHOOK_NOTICES.get(done)


def _validation_detail(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )


def _webhooks_page(
    request: Request,
    db: DB,
    state: State,
    actor: Actor,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    endpoints = webhooks_service.list_endpoints(db)
    values: dict[str, Any] = {
        "endpoints": [(e, webhooks_service.status_counts(db, e.id)) for e in endpoints],
        "event_types": sorted(EVENT_TYPES),
        "new_secret": None,
        "rotated": None,
        "error": None,
        "notice": None,
        "form": {"url": "", "event_types": [], "description": ""},
        **context,
    }
    return render(
        request, "webhooks/list.html", state, actor, "settings", status_code=status_code, **values
    )


def _back(back: str, endpoint_id: uuid.UUID) -> str:
    return f"/settings/webhooks/{endpoint_id}" if back == "detail" else "/settings/webhooks"


@router.get("/settings/webhooks")
def webhooks_page(
    request: Request,
    db: DB,
    state: State,
    actor: PageActor,
    done: str = "",
) -> HTMLResponse:
    _require_admin(actor)
    return _webhooks_page(request, db, state, actor, notice=WEBHOOK_NOTICES.get(done))


@router.post("/settings/webhooks")
def webhooks_create(
    request: Request,
    db: DB,
    state: State,
    actor: PageActor,
    url: Annotated[str, Form(max_length=4096)] = "",
    event_types: Annotated[list[str] | None, Form()] = None,
    description: Annotated[str, Form(max_length=2000)] = "",
    csrf: Annotated[str, Form()] = "",
) -> HTMLResponse:
    _require_admin(actor)
    check_csrf(request, state, csrf)
    form = {"url": url.strip(), "event_types": event_types or [], "description": description}
    try:
        data = EndpointCreate(
            url=form["url"], event_types=form["event_types"], description=description.strip()
        )
        with db.begin_nested():
            endpoint = webhooks_service.create_endpoint(
                db,
                data,
                actor=actor,
                now=state.clock.now(),
                allow_private=state.settings.allow_private_destinations,
            )
    except ValidationError as exc:
        return _webhooks_page(
            request, db, state, actor, status_code=422, error=_validation_detail(exc), form=form
        )
    except InvalidInput as exc:
        return _webhooks_page(
            request, db, state, actor, status_code=422, error=exc.detail, form=form
        )
    # The secret is shown in this answer only: a reload of the page does not show it again.
    return _webhooks_page(request, db, state, actor, status_code=201, new_secret=endpoint)


@router.get("/settings/webhooks/deliveries/{delivery_id}")
def webhook_delivery_page(
    request: Request,
    delivery_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    done: str = "",
) -> HTMLResponse:
    _require_admin(actor)
    return _delivery_page(request, db, state, actor, delivery_id, notice=WEBHOOK_NOTICES.get(done))


def _delivery_page(
    request: Request,
    db: DB,
    state: State,
    actor: Actor,
    delivery_id: uuid.UUID,
    *,
    status_code: int = 200,
    notice: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    delivery = webhooks_service.get_delivery(db, delivery_id)
    return render(
        request,
        "webhooks/delivery.html",
        state,
        actor,
        "settings",
        status_code=status_code,
        delivery=delivery,
        webhook_id=webhooks_service.webhook_id(delivery.id),
        endpoint=webhooks_service.get_endpoint(db, delivery.endpoint_id),
        attempts=webhooks_service.delivery_log(db, delivery.id),
        notice=notice,
        error=error,
    )


@router.post("/settings/webhooks/deliveries/{delivery_id}/replay")
def webhook_delivery_replay(
    request: Request,
    delivery_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    _require_admin(actor)
    check_csrf(request, state, csrf)
    try:
        with db.begin_nested():
            webhooks_service.replay_delivery(db, delivery_id, actor=actor, now=state.clock.now())
    except Conflict as exc:
        return _delivery_page(
            request, db, state, actor, delivery_id, status_code=409, error=exc.detail
        )
    return RedirectResponse(
        f"/settings/webhooks/deliveries/{delivery_id}?done=replayed", status_code=303
    )


def _endpoint_page(
    request: Request,
    db: DB,
    state: State,
    actor: Actor,
    endpoint_id: uuid.UUID,
    *,
    status: str = "",
    cursor: str | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    endpoint = webhooks_service.get_endpoint(db, endpoint_id)
    page = webhooks_service.list_deliveries(
        db, endpoint_id=endpoint.id, status=status or None, cursor=cursor, limit=WEBHOOK_PAGE_SIZE
    )
    base = f"/settings/webhooks/{endpoint.id}"

    def link(page_cursor: str) -> str:
        return (
            base
            + "?"
            + urlencode({**({"status": status} if status else {}), "cursor": page_cursor})
        )

    values: dict[str, Any] = {
        "endpoint": endpoint,
        "counts": webhooks_service.status_counts(db, endpoint.id),
        "page": page,
        "webhook_id": webhooks_service.webhook_id,
        "status": status,
        "statuses": [s.value for s in WebhookStatus],
        "next_link": link(page.next_cursor) if page.next_cursor else None,
        "prev_link": link(page.prev_cursor) if page.prev_cursor else None,
        "now": state.clock.now(),
        "notice": None,
        "error": None,
        "replay": {"start": "", "end": "", "failed_only": True},
        **context,
    }
    return render(
        request,
        "webhooks/endpoint.html",
        state,
        actor,
        "settings",
        status_code=status_code,
        **values,
    )


@router.get("/settings/webhooks/{endpoint_id}")
def webhook_endpoint_page(
    request: Request,
    endpoint_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    status: str = "",
    cursor: str | None = None,
    done: str = "",
    replayed: int | None = None,
) -> HTMLResponse:
    _require_admin(actor)
    return _endpoint_page(
        request,
        db,
        state,
        actor,
        endpoint_id,
        status=status,
        cursor=cursor,
        notice=_webhook_notice(done, replayed),
    )


@router.post("/settings/webhooks/{endpoint_id}/enable")
def webhook_enable(
    request: Request,
    endpoint_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    csrf: Annotated[str, Form()] = "",
    back: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    return _set_enabled(request, endpoint_id, db, state, actor, csrf, back, enabled=True)


@router.post("/settings/webhooks/{endpoint_id}/disable")
def webhook_disable(
    request: Request,
    endpoint_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    csrf: Annotated[str, Form()] = "",
    back: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    return _set_enabled(request, endpoint_id, db, state, actor, csrf, back, enabled=False)


def _set_enabled(
    request: Request,
    endpoint_id: uuid.UUID,
    db: DB,
    state: State,
    actor: Actor,
    csrf: str,
    back: str,
    *,
    enabled: bool,
) -> Response:
    _require_admin(actor)
    check_csrf(request, state, csrf)
    webhooks_service.update_endpoint(
        db,
        endpoint_id,
        EndpointUpdate(enabled=enabled),
        actor=actor,
        now=state.clock.now(),
        allow_private=state.settings.allow_private_destinations,
    )
    done = "enabled" if enabled else "disabled"
    return RedirectResponse(f"{_back(back, endpoint_id)}?done={done}", status_code=303)


@router.post("/settings/webhooks/{endpoint_id}/test")
def webhook_send_test(
    request: Request,
    endpoint_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    _require_admin(actor)
    check_csrf(request, state, csrf)
    webhooks_service.send_test(db, endpoint_id, actor=actor, now=state.clock.now())
    return RedirectResponse(f"/settings/webhooks/{endpoint_id}?done=test", status_code=303)


@router.post("/settings/webhooks/{endpoint_id}/rotate")
def webhook_rotate(
    request: Request,
    endpoint_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    csrf: Annotated[str, Form()] = "",
) -> HTMLResponse:
    _require_admin(actor)
    check_csrf(request, state, csrf)
    endpoint = webhooks_service.rotate_secret(db, endpoint_id, actor=actor, now=state.clock.now())
    # Shown in this answer only, like a new endpoint's secret.
    return _webhooks_page(request, db, state, actor, rotated=endpoint)


@router.get("/settings/webhooks/{endpoint_id}/delete")
def webhook_delete_confirm(
    request: Request, endpoint_id: uuid.UUID, db: DB, state: State, actor: PageActor
) -> HTMLResponse:
    _require_admin(actor)
    endpoint = webhooks_service.get_endpoint(db, endpoint_id)
    return render(
        request,
        "webhooks/delete.html",
        state,
        actor,
        "settings",
        endpoint=endpoint,
        counts=webhooks_service.status_counts(db, endpoint.id),
    )


@router.post("/settings/webhooks/{endpoint_id}/delete")
def webhook_delete(
    request: Request,
    endpoint_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    _require_admin(actor)
    check_csrf(request, state, csrf)
    webhooks_service.delete_endpoint(db, endpoint_id, actor=actor, now=state.clock.now())
    return RedirectResponse("/settings/webhooks?done=deleted", status_code=303)


def _parse_moment(value: str, field: str) -> datetime:
    """A date or date-time from the form; without a zone it is UTC, like the pages show."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            f"{field} {value!r} is not a date or time (e.g. 2026-06-01 or 2026-06-01T09:30)",
            field=field,
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@router.post("/settings/webhooks/{endpoint_id}/replay")
def webhook_replay_range(
    request: Request,
    endpoint_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    start: Annotated[str, Form(max_length=64)] = "",
    end: Annotated[str, Form(max_length=64)] = "",
    failed_only: Annotated[bool, Form()] = False,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    _require_admin(actor)
    check_csrf(request, state, csrf)
    try:
        with db.begin_nested():
            count = webhooks_service.replay_range(
                db,
                endpoint_id,
                start=_parse_moment(start, "start"),
                end=_parse_moment(end, "end"),
                failed_only=failed_only,
                actor=actor,
                now=state.clock.now(),
            )
    except InvalidInput as exc:
        return _endpoint_page(
            request,
            db,
            state,
            actor,
            endpoint_id,
            status_code=422,
            error=exc.detail,
            replay={"start": start, "end": end, "failed_only": failed_only},
        )
    return RedirectResponse(
        f"/settings/webhooks/{endpoint_id}?done=range&replayed={count}", status_code=303
    )
