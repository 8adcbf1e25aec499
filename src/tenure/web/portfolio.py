"""The portfolio page (MRR summary, health distribution, the at-risk lists of health and
churn) and its lazily loaded seasonality fragment. Clients of the domain services: no SQL
here."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tenure.accounts import service as accounts_service
from tenure.deps import DB, State
from tenure.health import service as health_service
from tenure.ingest import service as ingest_service
from tenure.web import churn_panels
from tenure.web.charts import band_of, bar_chart
from tenure.web.health_panels import band_styles, card_styles
from tenure.web.pages import USAGE_MONTHS, PageActor, render, usage_chart

router = APIRouter(include_in_schema=False)

RISK_LIST_SIZE = 20
AT_RISK = ("critical", "high")


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
    bands = card_styles(default)
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
    styles = band_styles(cards)
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


@router.get("/fragments/seasonality")
def seasonality(request: Request, db: DB, state: State, actor: PageActor) -> HTMLResponse:
    """Portfolio activity per month and hemisphere: the wedding seasons, loaded lazily."""
    today = state.clock.now().date()
    charts = [
        (
            hemisphere,
            usage_chart(
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
