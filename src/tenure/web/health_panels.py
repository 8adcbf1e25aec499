"""What the dashboard shows of health: the risk levels' look (band styles) that the
portfolio, the accounts list and the churn pages colour scores with, and the account
page's health panel (gauge, components, trend, override form). Clients of the health
service: no SQL here."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from tenure.health import service as health_service
from tenure.health.models import HealthScore
from tenure.web.charts import BandStyle, band_of, gauge, score_trend

HEALTH_DAYS = 90
OVERRIDE_DAYS = 30
# Messages after a POST-redirect-GET on the account page: the query names one of these.
NOTICES = {
    "rescored": "Rescored now: the panel shows the new score.",
    "not_scored": (
        "Not scored: the account has churned or has not started, so it keeps its last score."
    ),
    "override": "Override saved: lists and the portfolio show it until it expires.",
    "override_removed": "Override removed: the computed score applies again.",
}


def card_styles(card: health_service.Card) -> list[BandStyle]:
    """One scorecard's risk levels, lowest first."""
    return [BandStyle(b.level, b.label, b.colour, b.min) for b in card.config.bands_ascending()]


def band_styles(cards: list[health_service.Card]) -> dict[str, BandStyle]:
    """Every risk level's look; where scorecards disagree the default one's (listed last)."""
    out: dict[str, BandStyle] = {}
    for card in reversed(cards):
        for style in card_styles(card):
            out.setdefault(style.level, style)
    return out


def _signed(value: float | None) -> str:
    if value is None:
        return "—"
    return "±0" if value == 0 else f"{value:+.1f}".replace("-", "\u2212")


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
    db: Session, account_id: uuid.UUID, *, now: datetime, bands: list[BandStyle]
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


def override_form(now: datetime, **values: str) -> dict[str, str]:
    """The override form's fields: empty, expiring in OVERRIDE_DAYS, unless given."""
    return {
        "score": "",
        "risk_level": "",
        "reason": "",
        "expires": (now + timedelta(days=OVERRIDE_DAYS)).date().isoformat(),
        **values,
    }


def health_panel(
    db: Session,
    account_id: uuid.UUID,
    *,
    now: datetime,
    form: dict[str, str] | None = None,
    error: str | None = None,
    error_field: str | None = None,
) -> dict[str, Any]:
    """The account's latest score with its components, trend and override, or the override
    form alone when it has never been scored."""
    cards = health_service.active_cards(db, now=now)
    default = next((c for c in cards if c.config.default), cards[-1])
    styles = band_styles(cards)
    view = health_service.health_view(db, account_id, at=now)
    override = view.override if view else health_service.active_override(db, account_id, at=now)
    panel: dict[str, Any] = {
        "scored": view is not None,
        "styles": styles,
        "override": override,
        "override_style": None,
        "override_levels": card_styles(default),
        "form": form or override_form(now),
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
    bands = card_styles(card)
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
