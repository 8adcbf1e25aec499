"""The accounts pages: the list with its filters (risk levels among them), the account page
with its health and churn panels, usage and notes, and the account page's forms (health
override, rescore, notes). Clients of the domain services: no SQL here."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tenure.accounts import service as accounts_service
from tenure.auth import service as auth_service
from tenure.deps import DB, State
from tenure.health import service as health_service
from tenure.ingest import service as ingest_service
from tenure.kit.actor import Actor
from tenure.kit.errors import InvalidInput
from tenure.web import churn_panels, health_panels
from tenure.web.charts import BandStyle
from tenure.web.health_panels import band_styles, health_panel, override_form
from tenure.web.pages import (
    USAGE_MONTHS,
    PageActor,
    check_csrf,
    parse_moment,
    render,
    require_writer,
    usage_chart,
)

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
REASON_MAX = 1000


def _risk_filter(levels: list[str], risk: str) -> tuple[str, ...]:
    """risk=high,critical (or one level, or 'unscored') checked against the levels in use."""
    if not risk:
        return ()
    wanted = tuple(dict.fromkeys(r.strip() for r in risk.split(",") if r.strip()))
    known = [*levels, "unscored"]
    unknown = [r for r in wanted if r not in known]
    if unknown:
        raise InvalidInput(
            f"unknown risk level {', '.join(unknown)} (choose from {', '.join(known)})",
            field="risk",
        )
    return wanted


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
    risk: Annotated[str, Query(max_length=200)] = "",
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
    cards = health_service.active_cards(db, now=state.clock.now())
    levels = health_service.risk_levels(db)
    filters = accounts_service.AccountFilters(
        q=q or None,
        category=category or None,
        plan=plan or None,
        status=status or None,
        owner_id=owner_id,
        risk=_risk_filter(levels, risk),
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
            "risk": ",".join(filters.risk),
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
        "risk": ",".join(filters.risk),
        "risk_options": _risk_options(levels, band_styles(cards), filters.risk),
        "styles": band_styles(cards),
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


def _risk_options(
    levels: list[str], styles: dict[str, BandStyle], chosen: tuple[str, ...]
) -> list[tuple[str, str]]:
    """(value, label) of the Risk filter: each level, 'unscored', and the current choice
    when it combines several (a link from the portfolio asks for high,critical)."""

    def name(level: str) -> str:
        return (
            "Not scored"
            if level == "unscored"
            else (styles[level].label if level in styles else level)
        )

    options = [(level, name(level)) for level in [*levels, "unscored"]]
    if len(chosen) > 1:
        options.insert(0, (",".join(chosen), " or ".join(name(level) for level in chosen)))
    return options


@router.get("/accounts/{account_id}")
def account_detail(
    request: Request,
    account_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    done: str = "",
) -> HTMLResponse:
    notice = health_panels.NOTICES.get(done) or churn_panels.NOTICES.get(done)
    return account_page(request, db, state, actor, account_id, notice=notice)


def account_page(
    request: Request,
    db: DB,
    state: State,
    actor: Actor,
    account_id: uuid.UUID,
    *,
    status_code: int = 200,
    notice: str | None = None,
    churn_error: str | None = None,
    **health: Any,
) -> HTMLResponse:
    """The account page; a failed form comes back on it with its error (the health
    override's form, error and error_field in **health)."""
    account = accounts_service.get_account(db, account_id)
    parent = accounts_service.get_account(db, account.parent_id) if account.parent_id else None
    now = state.clock.now()
    context: dict[str, Any] = {
        "account": account,
        "parent": parent,
        "children": accounts_service.list_children(db, account.id),
        "contacts": accounts_service.list_contacts(db, account.id),
        "notes": accounts_service.list_notes(db, account.id),
        "can_write": actor.has_scope("write"),
        "health": health_panel(db, account.id, now=now, **health),
        "churn": churn_panels.account_panel(
            db, account.id, now=now, edges=state.settings.churn_bands, error=churn_error
        ),
        "notice": notice,
        "usage": usage_chart(
            ingest_service.monthly_usage(
                db, until=now.date(), months=USAGE_MONTHS, account_id=account.id
            ),
            "Product events",
        ),
        "history": auth_service.list_audit(
            db, limit=20, target_type="account", target_id=str(account.id)
        )
        if actor.has_scope("admin")
        else [],
    }
    return render(
        request,
        "accounts/detail.html",
        state,
        actor,
        "accounts",
        status_code=status_code,
        **context,
    )


def _form_score(value: str) -> float | None:
    if not value.strip():
        return None
    try:
        score = float(value.strip())
    except ValueError:
        raise InvalidInput(f"score {value!r} is not a number", field="score") from None
    if score != score:  # NaN
        raise InvalidInput("score must be between 0 and 100", field="score")
    return score


def _form_expiry(value: str) -> datetime:
    """A date means until the end of that day (UTC, like the pages show); a time is taken as is."""
    if not value.strip():
        raise InvalidInput("give the date the override expires", field="expires_at")
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        return parse_moment(value, "expires_at")
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


@router.post("/accounts/{account_id}/health/override")
def account_override(
    request: Request,
    account_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    score: Annotated[str, Form(max_length=32)] = "",
    risk_level: Annotated[str, Form(max_length=32)] = "",
    reason: Annotated[str, Form(max_length=20_000)] = "",
    expires: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, state, csrf)
    require_writer(actor, "override health scores")
    now = state.clock.now()
    form = {"score": score, "risk_level": risk_level, "reason": reason, "expires": expires}
    try:
        if len(reason.strip()) > REASON_MAX:
            raise InvalidInput(
                f"the reason is limited to {REASON_MAX:,} characters", field="reason"
            )
        with db.begin_nested():
            health_service.create_override(
                db,
                account_id,
                score=_form_score(score),
                risk_level=risk_level or None,
                reason=reason,
                expires_at=_form_expiry(expires),
                actor=actor,
                now=now,
            )
    except InvalidInput as exc:
        return account_page(
            request,
            db,
            state,
            actor,
            account_id,
            status_code=422,
            form=override_form(now, **form),
            error=exc.detail,
            error_field=exc.extra.get("field"),
        )
    return RedirectResponse(f"/accounts/{account_id}?done=override#health", status_code=303)


@router.post("/accounts/{account_id}/health/override/remove")
def account_override_remove(
    request: Request,
    account_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, state, csrf)
    require_writer(actor, "remove overrides")
    accounts_service.get_account(db, account_id)
    health_service.remove_override(db, account_id, actor=actor, now=state.clock.now())
    return RedirectResponse(f"/accounts/{account_id}?done=override_removed#health", status_code=303)


@router.post("/accounts/{account_id}/health/rescore")
def account_rescore(
    request: Request,
    account_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, state, csrf)
    require_writer(actor, "rescore accounts")
    accounts_service.get_account(db, account_id)
    now = state.clock.now()
    health_service.rescore(db, as_of=now, now=now, account_ids=[account_id])
    latest = health_service.latest(db, account_id)
    done = "rescored" if latest is not None and latest.as_of == now else "not_scored"
    return RedirectResponse(f"/accounts/{account_id}?done={done}#health", status_code=303)


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
    require_writer(actor, "add notes")
    accounts_service.add_note(db, account_id, body, actor=actor, now=state.clock.now())
    return RedirectResponse(f"/accounts/{account_id}#notes", status_code=303)
