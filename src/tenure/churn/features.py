"""The churn feature catalogue, defined once: name, meaning, window. Pure assembly from
arrays; dataset.py reads the data (the health frame and score at the snapshot, usage
windows, billing history), all of it from before the snapshot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

USAGE_WINDOWS = (7, 30, 90)
ONBOARDING_DAYS = 60


@dataclass(frozen=True)
class Feature:
    name: str
    meaning: str
    window: str  # "7d", "30d", "90d", "365d", "snapshot", "all" (since signup), "onboarding"


def _usage() -> list[Feature]:
    out: list[Feature] = []
    for w in USAGE_WINDOWS:
        out += [
            Feature(f"events_{w}", f"Events in the {w} days before the snapshot", f"{w}d"),
            Feature(f"sessions_{w}", f"Sessions in the {w} days before the snapshot", f"{w}d"),
            Feature(f"active_days_{w}", f"Days with any event in the last {w} days", f"{w}d"),
        ]
    return out


FEATURES: list[Feature] = [
    *_usage(),
    Feature(
        "active_ratio_7_30",
        "Daily activity rate of the last 7 days over that of the last 30 (smoothed)",
        "30d",
    ),
    Feature(
        "active_ratio_30_90",
        "Daily activity rate of the last 30 days over that of the last 90 (smoothed)",
        "90d",
    ),
    Feature(
        "events_slope_90",
        "Events of the last 30 days minus the monthly mean of the 60 before, over that mean",
        "90d",
    ),
    Feature(
        "activity_trend",
        "Active days of the last 30 over the 30 before, adjusted for the season",
        "60d",
    ),
    Feature("activity_trend_flat", "Active days of the last 30 over the 30 before", "60d"),
    Feature(
        "sessions_vs_last_year",
        "Sessions of the last 30 days over the same window a year before",
        "395d",
    ),
    Feature(
        "engagement_seasonal",
        "Active days in 30 over what the seasonal baseline expects for the segment and month",
        "30d",
    ),
    Feature("feature_breadth_30", "Distinct key features used in the last 30 days", "30d"),
    Feature("feature_breadth_90", "Distinct key features used in the last 90 days", "90d"),
    Feature("days_since_seen", "Days since the last active day (capped at 365)", "365d"),
    Feature("tenure_days", "Days since signup", "snapshot"),
    Feature(
        "key_features_adopted",
        "Key features used at least once since signup (each first use is an adoption milestone)",
        "all",
    ),
    Feature(
        "onboarding_progress",
        "Share of the key features adopted within the onboarding window (the first "
        f"{ONBOARDING_DAYS} days after signup; NaN when the signup predates the data)",
        "onboarding",
    ),
    Feature("plan", "Plan, as a code into the dataset's plan list (NaN: none)", "snapshot"),
    Feature(
        "category", "Category, as a code into the dataset's category list (NaN: none)", "snapshot"
    ),
    Feature("mrr", "MRR in the reporting currency (major units) after the last change", "snapshot"),
    Feature("mrr_change_90", "Relative MRR change over the last 90 days", "90d"),
    Feature(
        "annual_billing",
        "1 when the account pays yearly, 0 monthly (its billing_interval trait; NaN: unknown)",
        "snapshot",
    ),
    Feature(
        "days_to_renewal",
        "Days until the paid term ends: yearly or monthly terms from the latest start or "
        "reactivation (monthly when the interval is unknown)",
        "snapshot",
    ),
    Feature("failed_payments_90", "Failed payments in the last 90 days", "90d"),
    Feature("downgrades_90", "Contractions in the last 90 days", "90d"),
    Feature("open_tickets", "Support tickets open at the snapshot", "snapshot"),
    Feature("aging_tickets", "Open tickets older than 10 days", "snapshot"),
    Feature("escalated_tickets", "Open escalated tickets", "snapshot"),
    Feature("support_sentiment", "Mean sentiment of support interactions", "90d"),
    Feature("tickets_30", "Support interactions opened in the last 30 days", "30d"),
    Feature("tickets_90", "Support interactions opened in the last 90 days", "90d"),
    Feature(
        "negative_tickets_90", "Interactions of the last 90 days with negative sentiment", "90d"
    ),
    Feature("cancellation_requests_90", "Cancellation requests in the last 90 days", "90d"),
    Feature("complaints_90", "Complaints in the last 90 days", "90d"),
    Feature("bugs_90", "Bug reports in the last 90 days", "90d"),
    Feature("nps", "NPS answers of the last year, weighted with a 90-day half-life", "365d"),
    Feature("csat", "CSAT answers of the last year, weighted with a 90-day half-life", "365d"),
    Feature("latest_nps", "The latest NPS answer of the last year", "365d"),
    Feature("latest_nps_age", "Days since the latest NPS answer", "365d"),
    Feature(
        "season_ahead_churn", "How often peers cancelled in the next two calendar months", "365d"
    ),
    Feature("health_score", "Health score at the snapshot (0-100)", "snapshot"),
]


def health_feature(component: str) -> Feature:
    """The feature of one health component (its 0-100 score at the snapshot)."""
    return Feature(
        f"health_{component}", f"Health component '{component}' at the snapshot", "snapshot"
    )


def catalogue(components: Sequence[str]) -> list[Feature]:
    """Every feature, the health components last (in the given order)."""
    return [*FEATURES, *(health_feature(c) for c in components)]


YEARLY = frozenset({"annual", "annually", "yearly", "year", "12 months"})
MONTHLY = frozenset({"monthly", "month", "1 month"})
YEAR_DAYS = 365.0
MONTH_DAYS = 365.25 / 12


def annual_flag(interval: str | None) -> float:
    """1.0 for a yearly billing interval, 0.0 for a monthly one, NaN when unknown."""
    word = (interval or "").strip().lower()
    if word in YEARLY:
        return 1.0
    if word in MONTHLY:
        return 0.0
    return float("nan")


def days_to_renewal(elapsed_days: Floats, annual: Floats) -> Floats:
    """Days until the current paid term ends, for a term begun `elapsed_days` ago (NaN:
    none begun): yearly terms where `annual` is 1, monthly ones otherwise."""
    term = np.where(annual == 1.0, YEAR_DAYS, MONTH_DAYS)
    return np.asarray(term - np.mod(elapsed_days, term), dtype=np.float64)


def adoption(
    firsts: Floats, signup: Floats, *, today: float, data_start: float, n_key: int
) -> dict[str, Floats]:
    """Key features adopted by `today` and the onboarding progress, from `firsts` (n x k:
    the day ordinal each key feature was first used, NaN: never) and the signup days."""
    seen = np.nan_to_num(firsts, nan=np.inf)
    adopted = (seen <= today).sum(axis=1).astype(np.float64)
    window_end = np.minimum(signup + ONBOARDING_DAYS, today)
    early = (seen <= window_end[:, None]).sum(axis=1) / max(n_key, 1)
    progress = np.where(signup >= data_start, early, np.nan)
    return {"key_features_adopted": adopted, "onboarding_progress": progress}


@dataclass
class Codes:
    """Integer codes of categorical values, in order of first appearance: codes given at an
    earlier snapshot never move when later data brings new values."""

    values: list[str]

    def encode(self, items: Sequence[str | None]) -> Floats:
        index = {v: i for i, v in enumerate(self.values)}
        out = np.full(len(items), np.nan)
        for i, item in enumerate(items):
            if item is None:
                continue
            if item not in index:
                index[item] = len(self.values)
                self.values.append(item)
            out[i] = index[item]
        return out


def _ratio(a: Floats, wa: float, b: Floats, wb: float) -> Floats:
    return (a / wa + 1.0 / 30.0) / (b / wb + 1.0 / 30.0)


def derived(usage: Mapping[str, Floats], expected_active_30: Floats) -> dict[str, Floats]:
    """Ratios and slopes between the usage windows, and engagement against the season."""
    events_30, events_90 = usage["events_30"], usage["events_90"]
    earlier = (events_90 - events_30) / 2.0
    return {
        "active_ratio_7_30": _ratio(usage["active_days_7"], 7, usage["active_days_30"], 30),
        "active_ratio_30_90": _ratio(usage["active_days_30"], 30, usage["active_days_90"], 90),
        "events_slope_90": (events_30 - earlier) / (earlier + 1.0),
        "engagement_seasonal": usage["active_days_30"] / np.maximum(expected_active_30, 0.5),
    }


def matrix(columns: Mapping[str, Floats], features: Sequence[Feature], n: int) -> Floats:
    """The n x f float64 matrix of the features, in catalogue order."""
    out = np.empty((n, len(features)), dtype=np.float64)
    for j, feature in enumerate(features):
        out[:, j] = columns[feature.name]
    return out
