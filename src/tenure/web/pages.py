"""What the dashboard pages share: rendering with the navigation, the signed-in user
(PageActor), CSRF tokens, permission checks, safe redirect targets, dates from forms and
the monthly usage chart. No routes and no SQL here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from tenure.auth.dependencies import SESSION_COOKIE, optional_actor
from tenure.deps import State
from tenure.ingest import service as ingest_service
from tenure.kit.actor import Actor
from tenure.kit.errors import Forbidden, InvalidInput, TenureError
from tenure.kit.security import constant_time_equals, sign
from tenure.web.charts import BarChart, bar_chart
from tenure.web.templating import templates

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
USAGE_MONTHS = 18


class LoginRequired(TenureError):
    status = 303
    title = "Login required"


def safe_next(target: str | None) -> str:
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


def require_writer(actor: Actor, what: str) -> None:
    if not actor.has_scope("write"):
        raise Forbidden(f"viewers cannot {what}")


def require_admin(actor: Actor) -> None:
    if not actor.has_scope("admin"):
        raise Forbidden("only administrators can open Settings")


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


def parse_moment(value: str, field: str) -> datetime:
    """A date or date-time from the form; without a zone it is UTC, like the pages show."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            f"{field} {value!r} is not a date or time (e.g. 2026-06-01 or 2026-06-01T09:30)",
            field=field,
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def usage_chart(usage: list[ingest_service.MonthUsage], what: str) -> BarChart:
    """Product events per month (the portfolio's seasonality, an account's usage)."""
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
