"""Plain words for a prediction's top contributions (LightGBM's SHAP values, log-odds):
what the feature measured, how that compares with the training population, and whether it
raises or lowers the risk. Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

TOP = 5

# How each feature reads in a sentence: a label and how its value is written.
_COUNT, _DAYS, _RATIO, _SCORE, _MONEY, _PCT = "count", "days", "ratio", "score", "money", "pct"
_PCT_SHARE = "share"
LABELS: dict[str, tuple[str, str]] = {
    "events_7": ("Events in the last 7 days", _COUNT),
    "events_30": ("Events in the last 30 days", _COUNT),
    "events_90": ("Events in the last 90 days", _COUNT),
    "sessions_7": ("Sessions in the last 7 days", _COUNT),
    "sessions_30": ("Sessions in the last 30 days", _COUNT),
    "sessions_90": ("Sessions in the last 90 days", _COUNT),
    "active_days_7": ("Active days in the last 7", _COUNT),
    "active_days_30": ("Active days in the last 30", _COUNT),
    "active_days_90": ("Active days in the last 90", _COUNT),
    "active_ratio_7_30": ("Activity this week against the month", _RATIO),
    "active_ratio_30_90": ("Activity this month against the quarter", _RATIO),
    "events_slope_90": ("Change in events against the two months before", _PCT),
    "activity_trend": ("Activity against the previous month, season-adjusted", _RATIO),
    "activity_trend_flat": ("Activity against the previous month", _RATIO),
    "sessions_vs_last_year": ("Sessions against the same month last year", _RATIO),
    "engagement_seasonal": ("Activity against what the season leads to expect", _RATIO),
    "feature_breadth_30": ("Key features used in the last 30 days", _COUNT),
    "feature_breadth_90": ("Key features used in the last 90 days", _COUNT),
    "days_since_seen": ("Days since last seen", _DAYS),
    "tenure_days": ("Days as a customer", _DAYS),
    "mrr": ("MRR", _MONEY),
    "mrr_change_90": ("MRR change over 90 days", _PCT),
    "annual_billing": ("Billed yearly", _COUNT),
    "days_to_renewal": ("Days until the renewal", _DAYS),
    "key_features_adopted": ("Key features adopted", _COUNT),
    "onboarding_progress": ("Key features adopted during onboarding", _PCT_SHARE),
    "failed_payments_90": ("Failed payments in 90 days", _COUNT),
    "downgrades_90": ("Downgrades in 90 days", _COUNT),
    "open_tickets": ("Open support tickets", _COUNT),
    "aging_tickets": ("Tickets open for more than 10 days", _COUNT),
    "escalated_tickets": ("Escalated tickets", _COUNT),
    "support_sentiment": ("Support sentiment", _RATIO),
    "tickets_30": ("Support tickets in 30 days", _COUNT),
    "tickets_90": ("Support tickets in 90 days", _COUNT),
    "negative_tickets_90": ("Unhappy support tickets in 90 days", _COUNT),
    "cancellation_requests_90": ("Cancellation requests in 90 days", _COUNT),
    "complaints_90": ("Complaints in 90 days", _COUNT),
    "bugs_90": ("Bug reports in 90 days", _COUNT),
    "nps": ("NPS (recent answers weigh more)", _SCORE),
    "csat": ("CSAT (recent answers weigh more)", _SCORE),
    "latest_nps": ("Latest NPS answer", _SCORE),
    "latest_nps_age": ("Days since the latest NPS answer", _DAYS),
    "season_ahead_churn": ("Cancellations among peers in the coming months", _PCT),
    "health_score": ("Health score", _SCORE),
}
MISSING: dict[str, str] = {
    "nps": "No NPS answer in the last year",
    "csat": "No CSAT answer in the last year",
    "latest_nps": "No NPS answer in the last year",
    "latest_nps_age": "No NPS answer in the last year",
    "support_sentiment": "No support interaction with a sentiment",
    "sessions_vs_last_year": "No activity a year ago to compare with",
    "health_score": "No health score",
    "plan": "No plan recorded",
    "category": "No category recorded",
    "annual_billing": "No billing interval recorded",
    "days_to_renewal": "No paid term started",
    "onboarding_progress": "Onboarding progress unknown: signed up before the data began",
}


def label(feature: str) -> str:
    if feature in LABELS:
        return LABELS[feature][0]
    if feature.startswith("health_"):
        return f"Health component '{feature[len('health_') :]}'"
    return feature.replace("_", " ").capitalize()


def _format(feature: str, value: float) -> str:
    kind = LABELS.get(feature, ("", _SCORE))[1]
    if kind == _PCT:
        return f"{value * 100:+.0f}%"
    if kind == _PCT_SHARE:
        return f"{value * 100:.0f}%"
    if kind == _RATIO:
        return f"{value:.2f}"
    if kind == _MONEY:
        return f"{value:,.0f}"
    if kind in (_COUNT, _DAYS) or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.1f}"


def sentence(
    feature: str,
    value: float,
    contribution: float,
    *,
    median: float | None,
    codes: Mapping[str, Sequence[str]],
) -> str:
    direction = "raises" if contribution > 0 else "lowers"
    if not math.isfinite(value):
        what = MISSING.get(feature, f"{label(feature)}: unknown")
        return f"{what} ({direction} the risk)"
    if feature == "annual_billing":
        return f"Billed {'yearly' if value == 1.0 else 'monthly'} ({direction} the risk)"
    if feature in codes:
        names = codes[feature]
        code = int(value)
        name = names[code] if 0 <= code < len(names) else "another value"
        return f"{feature.capitalize()} '{name}' {direction} the risk"
    shown = f"{label(feature)}: {_format(feature, value)}"
    if median is not None and math.isfinite(median) and value != median:
        side = "above" if value > median else "below"
        shown += f", {side} the usual {_format(feature, median)}"
    return f"{shown} ({direction} the risk)"


def factors(
    X: npt.NDArray[np.float64],
    contributions: npt.NDArray[np.float64],
    *,
    features: Sequence[str],
    reference: Mapping[str, Any],
    codes: Mapping[str, Sequence[str]],
    top: int = TOP,
) -> list[list[dict[str, Any]]]:
    """Per row: the `top` features with the largest |contribution| (the last column of
    `contributions`, the bias, is not a feature), with their sentence."""
    n, width = X.shape
    share = np.abs(contributions[:, :width])
    order = np.argsort(-share, axis=1, kind="stable")[:, :top]
    medians = [reference.get(f, {}).get("median") for f in features]
    out: list[list[dict[str, Any]]] = []
    for i in range(n):
        row: list[dict[str, Any]] = []
        for j in order[i].tolist():
            c = float(contributions[i, j])
            if c == 0.0:
                continue
            value = float(X[i, j])
            row.append(
                {
                    "feature": features[j],
                    "value": value if math.isfinite(value) else None,
                    "contribution": round(c, 4),
                    "text": sentence(features[j], value, c, median=medians[j], codes=codes),
                }
            )
        out.append(row)
    return out
