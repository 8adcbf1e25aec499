"""What the account page and the portfolio show of churn: the account's "Churn risk" panel
and the portfolio's top of the at-risk list. Clients of the churn service: no SQL here.

Kept apart from tenure.web.churn (the pages) so that the account page and the portfolio
(tenure.web.accounts, tenure.web.portfolio) can use these without an import cycle: the
churn pages import tenure.web.accounts' account_page().
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from tenure.churn import service as churn_service
from tenure.churn.models import ChurnPrediction
from tenure.web.charts import BandStyle, LineChart, score_trend

HISTORY = 90
TREND_DAYS = 90
PORTFOLIO_TOP = 10
# The churn bands' look; their edges come from the settings (TENURE_CHURN_BANDS).
LOOKS = {
    "low": ("Low", "#039855"),
    "medium": ("Medium", "#ca8504"),
    "high": ("High", "#dc6803"),
    "critical": ("Critical", "#b42318"),
}
# Messages after a POST-redirect-GET on the account page: the query names one of these.
NOTICES = {"predicted": "Predicted now: the churn panel shows the new prediction."}


def band_styles(edges: Sequence[float]) -> list[BandStyle]:
    """The four churn bands on a 0-100 (percent) scale, lowest first."""
    starts = [0.0, *(100 * float(e) for e in edges)]
    return [
        BandStyle(level, LOOKS[level][0], LOOKS[level][1], start)
        for level, start in zip(churn_service.LEVELS, starts, strict=True)
    ]


def percent(p: float | None) -> str:
    return "—" if p is None else f"{100 * p:.1f}%"


def _trend(history: list[ChurnPrediction], *, now: datetime, edges: Sequence[float]) -> LineChart:
    points = sorted(history, key=lambda r: r.as_of)
    since = min(points[0].as_of.date(), (now - timedelta(days=TREND_DAYS)).date())
    first, last = points[0], points[-1]
    description = (
        f"Churn probability, {len(points)} prediction{'' if len(points) == 1 else 's'}: "
        f"{percent(first.probability)} on {first.as_of:%d %b %Y}"
        + (
            f" to {percent(last.probability)} on {last.as_of:%d %b %Y}, highest "
            f"{percent(max(r.probability for r in points))}"
            if len(points) > 1
            else ""
        )
    )
    return score_trend(
        [
            (
                r.as_of.date(),
                100 * r.probability,
                f"{r.as_of:%d %b %Y}: {percent(r.probability)} ({LOOKS[r.risk_level][0]})"
                if r.risk_level in LOOKS
                else f"{r.as_of:%d %b %Y}: {percent(r.probability)}",
            )
            for r in points
        ],
        since=since,
        until=max(now.date(), last.as_of.date()),
        bands=band_styles(edges),
        description=description,
        width=600,
        height=150,
    )


def account_panel(
    db: Session,
    account_id: uuid.UUID,
    *,
    now: datetime,
    edges: Sequence[float],
    error: str | None = None,
    notice: str | None = None,
) -> dict[str, Any]:
    """The account's latest prediction with its factors and history, or why there is none."""
    active = churn_service.active_model(db)
    panel: dict[str, Any] = {
        "prediction": None,
        "active_version": active.version if active else None,
        "error": error,
        "notice": notice,
    }
    history = churn_service.prediction_history(db, account_id, limit=HISTORY)
    if not history:
        return panel
    latest = history[0]
    if not latest.factors:
        # A portfolio run explains low-risk accounts when they are first looked at.
        try:
            churn_service.explain_later(db, latest)
        except churn_service.ModelUnusable as exc:
            panel["error"] = panel["error"] or exc.detail
    model = churn_service.model_by_id(db, latest.model_id)
    panel.update(
        prediction=latest,
        percent=percent(latest.probability),
        band=LOOKS.get(latest.risk_level, (latest.risk_level, "#5f6b7a"))[0],
        model_version=model.version,
        model_status=model.status,
        factors=[
            {"text": f["text"], "raises": float(f.get("contribution") or 0) > 0}
            for f in latest.factors
        ],
        trend=_trend(history, now=now, edges=edges),
        points=len(history),
    )
    return panel


def portfolio_panel(db: Session) -> dict[str, Any]:
    """The live accounts with the most MRR at risk, and how many have a prediction."""
    rows, total = churn_service.at_risk(db, limit=PORTFOLIO_TOP)
    active = churn_service.active_model(db)
    return {
        "rows": rows,
        "total": total,
        "active_version": active.version if active else None,
        "has_models": active is not None or bool(churn_service.models(db)),
    }
