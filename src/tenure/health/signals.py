"""The signals a scorecard can use: what each measures, its window, and how to say it.

Signals are computed for many accounts at once (`SignalFrame`: one numpy array per signal,
NaN where the account has no data for it) by `tenure.health.loader` from the rollups and
the other domains' tables, always as of an explicit time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SignalSpec:
    name: str
    label: str
    meaning: str
    # Seasonal baseline this signal is compared with (ratio_to_expected), if any.
    baseline: str | None = None
    # The component a scorecard usually puts it in (documentation, defaults).
    component: str = ""


SIGNALS: dict[str, SignalSpec] = {
    s.name: s
    for s in (
        SignalSpec(
            "active_days_30",
            "Active days",
            "days with any product activity in the last 30 days",
            baseline="active_days",
            component="engagement",
        ),
        SignalSpec(
            "sessions_30",
            "Sessions",
            "working sessions (catalogue session events) in the last 30 days",
            baseline="sessions",
            component="engagement",
        ),
        SignalSpec(
            "activity_trend",
            "Activity trend",
            "active days in the last 30 days relative to the 30 before, corrected for the "
            "season when the baseline is on (1 = steady)",
            component="engagement",
        ),
        SignalSpec(
            "sessions_vs_last_year",
            "Sessions vs last year",
            "sessions in the last 30 days relative to the same 30 days a year earlier",
            component="engagement",
        ),
        SignalSpec(
            "feature_breadth_30",
            "Key features (30 days)",
            "how many of the catalogue's key features were used in the last 30 days",
            component="adoption",
        ),
        SignalSpec(
            "feature_breadth_90",
            "Key features (90 days)",
            "how many of the catalogue's key features were used in the last 90 days",
            component="adoption",
        ),
        SignalSpec(
            "nps",
            "NPS",
            "NPS answers (0-10) of the last 365 days, weighted by recency (half-life 90 days)",
            component="satisfaction",
        ),
        SignalSpec(
            "csat",
            "CSAT",
            "CSAT answers (1-5) of the last 365 days, weighted by recency (half-life 90 days)",
            component="satisfaction",
        ),
        SignalSpec(
            "support_sentiment",
            "Support sentiment",
            "mean sentiment (-1 to 1) of support interactions opened in the last 90 days",
            component="satisfaction",
        ),
        SignalSpec(
            "open_tickets",
            "Open tickets",
            "support tickets open at the time of scoring",
            component="support",
        ),
        SignalSpec(
            "aging_tickets",
            "Aging tickets",
            "tickets open for more than 10 days",
            component="support",
        ),
        SignalSpec(
            "escalated_tickets",
            "Escalated tickets",
            "open tickets that were escalated",
            component="support",
        ),
        SignalSpec(
            "mrr_change_90",
            "MRR change",
            "relative change of MRR over the last 90 days (-0.2 = down 20%)",
            component="commercial",
        ),
        SignalSpec(
            "failed_payments_90",
            "Failed payments",
            "failed payments in the last 90 days",
            component="commercial",
        ),
        SignalSpec(
            "downgrades_90",
            "Downgrades",
            "downgrades (contractions) in the last 90 days",
            component="commercial",
        ),
        SignalSpec(
            "season_ahead_churn",
            "Season ahead",
            "share of similar accounts (category, hemisphere) that cancelled in the coming two "
            "calendar months in past years: the seasonal risk ahead (needs the seasonal baseline)",
            component="season",
        ),
        SignalSpec(
            "days_since_seen",
            "Days since seen",
            "days since anyone from the account was last active (capped at 365)",
            component="recency",
        ),
    )
}


@dataclass
class SignalFrame:
    """Signals of `n` accounts as of one time; row i is `account_ids[i]`."""

    account_ids: list[uuid.UUID]
    values: dict[str, Floats]
    # What the seasonal baseline expects, per baseline signal ("active_days", "sessions").
    expected: dict[str, Floats] = field(default_factory=dict)
    # Details the explanations quote (latest NPS answer and its day, ...).
    extras: dict[str, Floats] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.account_ids)

    def get(self, name: str) -> Floats:
        return self.values.get(name, np.full(self.n, np.nan))

    def take(self, index: npt.NDArray[np.intp]) -> SignalFrame:
        """The rows at `index` (a segment's accounts)."""
        return SignalFrame(
            [self.account_ids[i] for i in index.tolist()],
            {k: v[index] for k, v in self.values.items()},
            {k: v[index] for k, v in self.expected.items()},
            {k: v[index] for k, v in self.extras.items()},
        )
