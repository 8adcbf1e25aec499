"""Dashboard pages. Clients of the domain services: no SQL here."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
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
from tenure.health import service as health_service
from tenure.health.models import HealthScore
from tenure.hub.events import EVENT_TYPES
from tenure.ingest import service as ingest_service
from tenure.kit.actor import Actor
from tenure.kit.errors import Conflict, Forbidden, InvalidInput, TenureError, Unauthorized
from tenure.kit.security import constant_time_equals, sign
from tenure.monitor import service as monitor_service
from tenure.web import churn_panels
from tenure.web.charts import BandStyle, BarChart, band_of, bar_chart, gauge, score_trend
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
    ("models", "Models", "/models"),
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
            "base_currency": state.settings.reporting_currency,
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


# Health: what the account page, the portfolio and the accounts list show of it.

HEALTH_DAYS = 90
RISK_LIST_SIZE = 20
AT_RISK = ("critical", "high")
OVERRIDE_DAYS = 30
REASON_MAX = 1000
# Messages after a POST-redirect-GET on the account page: the query names one of these.
HEALTH_NOTICES = {
    "rescored": "Rescored now: the panel shows the new score.",
    "not_scored": (
        "Not scored: the account has churned or has not started, so it keeps its last score."
    ),
    "override": "Override saved: lists and the portfolio show it until it expires.",
    "override_removed": "Override removed: the computed score applies again.",
}


def _styles(card: health_service.Card) -> list[BandStyle]:
    return [BandStyle(b.level, b.label, b.colour, b.min) for b in card.config.bands_ascending()]


def _band_styles(cards: list[health_service.Card]) -> dict[str, BandStyle]:
    """Every risk level's look; where scorecards disagree the default one's (listed last)."""
    out: dict[str, BandStyle] = {}
    for card in reversed(cards):
        for style in _styles(card):
            out.setdefault(style.level, style)
    return out


def _signed(value: float | None) -> str:
    if value is None:
        return "—"
    return "±0" if value == 0 else f"{value:+.1f}".replace("-", "\u2212")


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


def _components(
    row: HealthScore, card: health_service.Card, bands: list[BandStyle]
) -> list[dict[str, Any]]:
    """Component rows in the scorecard's order: score and weight share, or 'no data'."""
    labels: dict[str, str] = {c.key: c.label for c in card.config.components}
    present = row.components or {}
    total = sum(float(c["weight"]) for c in present.values() if c.get("weight"))
    keys = [k for k in labels if k in present or k in row.missing]
    keys += [k for k in [*present, *row.missing] if k not in keys]
    out = []
    for key in keys:
        data = present.get(key)
        label = labels.get(key, key.replace("_", " ").capitalize())
        if data is None:
            out.append({"key": key, "label": label, "missing": True})
            continue
        score = float(data["score"])
        weight = data.get("weight")
        band = band_of(score, bands)
        out.append(
            {
                "key": key,
                "label": label,
                "missing": False,
                "score": score,
                "share": round(100 * float(weight) / total) if weight and total else None,
                "colour": band.colour if band else "#6d8fe8",
            }
        )
    return out


def _trend(
    db: DB, account_id: uuid.UUID, *, now: datetime, bands: list[BandStyle]
) -> dict[str, Any]:
    since = now - timedelta(days=HEALTH_DAYS)
    rows = health_service.history(db, account_id, since=since, until=now)
    styles = {b.level: b for b in bands}

    def title(r: HealthScore) -> str:
        if r.score is None:
            return f"{r.scored_on:%d %b %Y}: no score"
        level = styles.get(r.risk_level or "")
        return f"{r.scored_on:%d %b %Y}: {r.score:g}" + (f" ({level.label})" if level else "")

    scored = [r for r in rows if r.score is not None]
    if scored:
        first, last = scored[0], scored[-1]
        description = (
            f"Health score over the last {HEALTH_DAYS} days: {len(scored)} daily "
            f"score{'' if len(scored) == 1 else 's'}, from {first.score:g} on "
            f"{first.scored_on:%d %b %Y} to {last.score:g} on {last.scored_on:%d %b %Y}, "
            f"lowest {min(r.score for r in scored if r.score is not None):g}"
        )
    else:
        description = f"Health score over the last {HEALTH_DAYS} days: no scores"
    chart = score_trend(
        [(r.scored_on, r.score, title(r)) for r in rows],
        since=since.date(),
        until=now.date(),
        bands=bands,
        description=description,
    )
    return {"chart": chart, "points": len(scored)}


def _override_form(now: datetime, **values: str) -> dict[str, str]:
    return {
        "score": "",
        "risk_level": "",
        "reason": "",
        "expires": (now + timedelta(days=OVERRIDE_DAYS)).date().isoformat(),
        **values,
    }


def _health_panel(
    db: DB,
    account_id: uuid.UUID,
    *,
    now: datetime,
    form: dict[str, str] | None = None,
    error: str | None = None,
    error_field: str | None = None,
) -> dict[str, Any]:
    cards = health_service.active_cards(db, now=now)
    default = next((c for c in cards if c.config.default), cards[-1])
    styles = _band_styles(cards)
    view = health_service.health_view(db, account_id, at=now)
    override = view.override if view else health_service.active_override(db, account_id, at=now)
    panel: dict[str, Any] = {
        "scored": view is not None,
        "styles": styles,
        "override": override,
        "override_style": None,
        "override_levels": _styles(default),
        "form": form or _override_form(now),
        "error": error,
        "error_field": error_field,
        "min_expiry": now.date().isoformat(),
        "days": HEALTH_DAYS,
    }
    if override is not None:
        level = override.risk_level
        if level is None and override.score is not None:
            level = view.effective_risk if view else default.config.level_of(override.score)
        panel["override_style"] = styles.get(level or "")
    if view is None:
        return panel
    row = view.row
    card = next((c for c in cards if c.key == row.scorecard_key), default)
    bands = _styles(card)
    band = styles.get(row.risk_level or "")
    panel.update(
        row=row,
        band=band,
        gauge=gauge(row.score, bands, caption=band.label if band else "not scored"),
        delta_7=_signed(row.delta_7),
        delta_30=_signed(row.delta_30),
        components=_components(row, card, bands),
        trend=_trend(db, account_id, now=now, bands=bands),
        effective_score=view.effective_score,
        effective_style=styles.get(view.effective_risk or ""),
    )
    return panel


def _at_risk_levels(levels: list[str]) -> tuple[str, ...]:
    chosen = tuple(level for level in levels if level in AT_RISK)
    # A scorecard with levels of its own: its lower half is "at risk".
    return chosen or tuple(levels[: max(1, len(levels) // 2)])


def _risk_list(db: DB, levels: tuple[str, ...]) -> tuple[list[dict[str, Any]], int]:
    """The live (active or trial) accounts at these levels with the most MRR, and how many
    there are."""
    found = []
    total = 0
    for status in ("active", "trial"):
        filters = accounts_service.AccountFilters(risk=levels, status=status)
        found += accounts_service.list_accounts(
            db, filters, sort="mrr", descending=True, limit=RISK_LIST_SIZE
        ).items
        total += accounts_service.count_accounts(db, filters)
    found.sort(key=lambda a: (-a.mrr_base_cents, a.name_lower, str(a.id)))
    out = []
    for account in found[:RISK_LIST_SIZE]:
        latest = health_service.latest(db, account.id)
        factors = latest.factors if latest else []
        out.append({"account": account, "factor": factors[0]["text"] if factors else None})
    return out, total


def _distribution(db: DB) -> dict[str, Any]:
    data = health_service.distribution(db)
    scored = sum(v["accounts"] for v in data["levels"].values())
    mrr = sum(v["mrr_cents"] for v in data["levels"].values())
    levels = [
        {
            "level": level,
            "label": v["label"] or level,
            "colour": v["colour"],
            "accounts": v["accounts"],
            "mrr_cents": v["mrr_cents"],
            "share": round(100 * v["accounts"] / scored) if scored else 0,
            "mrr_share": round(100 * v["mrr_cents"] / mrr) if mrr else 0,
        }
        for level, v in data["levels"].items()
    ]
    return {"levels": levels, "scored": scored, "unscored": data["unscored"], "histogram": data}


@router.get("/")
def portfolio(request: Request, db: DB, state: State, actor: PageActor) -> HTMLResponse:
    now = state.clock.now()
    summary = accounts_service.portfolio_summary(db)
    cards = health_service.active_cards(db, now=now)
    default = next((c for c in cards if c.config.default), cards[-1])
    bands = _styles(default)
    distribution = _distribution(db)
    histogram = distribution.pop("histogram")["histogram"]
    bins = []
    for i, n in enumerate(histogram):
        low, high = i * 10, 100 if i == 9 else i * 10 + 9
        bins.append((f"{low}", n, f"Score {low} to {high}: {n:,} account{'' if n == 1 else 's'}"))
    chart = bar_chart(
        bins, description="Accounts per health score, in steps of 10", width=400, height=160
    )
    colours = [(band_of(i * 10 + 5, bands) or bands[0]).colour for i in range(10)]
    at_risk = _at_risk_levels(health_service.risk_levels(db))
    risk_list, at_risk_total = _risk_list(db, at_risk)
    styles = _band_styles(cards)
    return render(
        request,
        "portfolio.html",
        state,
        actor,
        "portfolio",
        summary=summary,
        distribution=distribution,
        histogram=chart,
        histogram_colours=colours,
        at_risk=[styles[level] for level in at_risk if level in styles],
        at_risk_link="/accounts?"
        + urlencode({"risk": ",".join(at_risk), "sort": "mrr", "order": "desc"}),
        at_risk_total=at_risk_total,
        risk_list=risk_list,
        styles=styles,
        churn=churn_panels.portfolio_panel(db),
    )


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
        "risk_options": _risk_options(levels, _band_styles(cards), filters.risk),
        "styles": _band_styles(cards),
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
    notice = HEALTH_NOTICES.get(done) or churn_panels.NOTICES.get(done)
    return _account_page(request, db, state, actor, account_id, notice=notice)


def _account_page(
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
        "health": _health_panel(db, account.id, now=now, **health),
        "churn": churn_panels.account_panel(
            db, account.id, now=now, edges=state.settings.churn_bands, error=churn_error
        ),
        "notice": notice,
        "usage": _usage_chart(
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


def _require_writer(actor: Actor, what: str) -> None:
    if not actor.has_scope("write"):
        raise Forbidden(f"viewers cannot {what}")


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
        return _parse_moment(value, "expires_at")
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
    _require_writer(actor, "override health scores")
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
        return _account_page(
            request,
            db,
            state,
            actor,
            account_id,
            status_code=422,
            form=_override_form(now, **form),
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
    _require_writer(actor, "remove overrides")
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
    _require_writer(actor, "rescore accounts")
    accounts_service.get_account(db, account_id)
    now = state.clock.now()
    health_service.rescore(db, as_of=now, now=now, account_ids=[account_id])
    latest = health_service.latest(db, account_id)
    done = "rescored" if latest is not None and latest.as_of == now else "not_scored"
    return RedirectResponse(f"/accounts/{account_id}?done={done}#health", status_code=303)


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
