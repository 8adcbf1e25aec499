"""The simulator's configuration and the plain records it yields.

Record field names are the column names of the product tables (accounts, contacts, events,
subscription_changes, support_interactions, survey_responses), with references to other
records by external id (`account_external_id`, `contact_external_id`) because database ids
do not exist yet. The hidden truth lives in `AccountTruth`, never in a record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

PROFILES: tuple[str, ...] = ("wedding",)
MAX_ACCOUNTS = 1_000_000
MAX_MONTHS = 120


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What to simulate. The period is the `months` calendar months that end at `end`."""

    accounts: int = 2000
    months: int = 18
    seed: int = 0
    end: date = date(2026, 11, 1)
    profile: str = "wedding"
    # Relative reduction of the churn hazard after an intervention (0 = no effect).
    treatment_effect: float = 0.0
    # Account external id -> day of the intervention; the hazard is reduced from that day on.
    treated: Mapping[str, date] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _is_int(self.accounts) or not 1 <= self.accounts <= MAX_ACCOUNTS:
            raise ValueError(
                f"accounts must be an integer in 1..{MAX_ACCOUNTS:,}, got {self.accounts!r}"
            )
        if not _is_int(self.months) or not 1 <= self.months <= MAX_MONTHS:
            raise ValueError(f"months must be an integer in 1..{MAX_MONTHS}, got {self.months!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if isinstance(self.end, datetime) or not isinstance(self.end, date):
            raise ValueError(f"end must be a date (not a datetime), got {self.end!r}")
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {self.profile!r}")
        effect = self.treatment_effect
        if isinstance(effect, bool) or not isinstance(effect, int | float) or not 0 <= effect <= 1:
            raise ValueError(f"treatment_effect must be a number in 0..1, got {effect!r}")
        for key, day in self.treated.items():
            if not isinstance(key, str) or isinstance(day, datetime) or not isinstance(day, date):
                raise ValueError(f"treated must map external ids to dates, got {key!r}: {day!r}")

    @property
    def start(self) -> date:
        """First day of the period (inclusive); `end` is exclusive."""
        total = self.end.year * 12 + self.end.month - 1 - self.months
        return date(total // 12, total % 12 + 1, min(self.end.day, 28))

    @property
    def start_at(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)

    @property
    def end_at(self) -> datetime:
        return datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(slots=True)
class AccountRecord:
    external_id: str
    name: str
    category: str
    plan: str
    mrr_cents: int
    currency: str
    country: str
    hemisphere: str
    timezone: str
    signup_at: datetime
    status: str
    churned_at: datetime | None
    churn_reason: str | None
    parent_external_id: str | None
    tags: list[str]
    traits: dict[str, Any]


@dataclass(slots=True)
class ContactRecord:
    external_id: str
    account_external_id: str
    email: str
    name: str
    phone: str
    role: str
    timezone: str
    consents: dict[str, bool]
    traits: dict[str, Any]
    # When the user was added to the account (the owner: at signup).
    created_at: datetime
    last_seen_at: datetime | None


@dataclass(slots=True)
class EventRecord:
    message_id: str
    type: str
    name: str
    user_external_id: str
    group_external_id: str
    properties: dict[str, Any]
    context: dict[str, Any]
    timestamp: datetime


@dataclass(slots=True)
class SubscriptionRecord:
    external_id: str
    account_external_id: str
    kind: str
    mrr_before_cents: int
    mrr_after_cents: int
    currency: str
    plan: str
    reason: str | None
    occurred_at: datetime


@dataclass(slots=True)
class SupportRecord:
    external_id: str
    account_external_id: str
    contact_external_id: str | None
    type: str
    channel: str
    status: str
    priority: str
    sentiment: float | None
    outcome: str | None
    escalated: bool
    subject: str
    assignee: str | None
    opened_at: datetime
    resolved_at: datetime | None
    follow_up_at: datetime | None


@dataclass(slots=True)
class SurveyRecord:
    external_id: str
    account_external_id: str
    contact_external_id: str | None
    kind: str
    score: int
    comment: str | None
    responded_at: datetime


# Turns an event's (value, option, epoch seconds, currency) into its properties.
PropertyBuilder = Callable[[int, int, int, str], dict[str, Any]]


class EventBlock:
    """One account's track events, stored as columns and turned into records on demand.

    Columnar storage keeps millions of events cheap to generate and to write; iterating
    yields `EventRecord`s in timestamp order. The arrays are public for fast analysis:
    `timestamps` (int64 epoch seconds, UTC), `name_codes` (index into `names`),
    `contact_index` (index into `user_ids`).
    """

    __slots__ = (
        "_builders",
        "account_index",
        "contact_index",
        "currency",
        "group_id",
        "name_codes",
        "names",
        "options",
        "timestamps",
        "user_ids",
        "values",
    )

    def __init__(
        self,
        *,
        account_index: int,
        group_id: str,
        currency: str,
        user_ids: tuple[str, ...],
        names: tuple[str, ...],
        timestamps: npt.NDArray[np.int64],
        name_codes: npt.NDArray[np.int16],
        contact_index: npt.NDArray[np.int16],
        values: npt.NDArray[np.int64],
        options: npt.NDArray[np.int16],
        builders: tuple[PropertyBuilder | None, ...],
    ) -> None:
        self.account_index = account_index
        self.group_id = group_id
        self.currency = currency
        self.user_ids = user_ids
        self.names = names
        self.timestamps = timestamps
        self.name_codes = name_codes
        self.contact_index = contact_index
        self.values = values
        self.options = options
        self._builders = builders

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])

    def message_id(self, k: int) -> str:
        return f"sim_{self.account_index + 1:06d}_{k:06d}"

    def properties(self, k: int) -> dict[str, Any]:
        code = int(self.name_codes[k])
        builder = self._builders[code]
        if builder is None:
            return {}
        return builder(
            int(self.values[k]), int(self.options[k]), int(self.timestamps[k]), self.currency
        )

    def __iter__(self) -> Iterator[EventRecord]:
        names = self.names
        users = self.user_ids
        group = self.group_id
        ts = self.timestamps.tolist()
        codes = self.name_codes.tolist()
        contacts = self.contact_index.tolist()
        for k in range(len(ts)):
            yield EventRecord(
                message_id=self.message_id(k),
                type="track",
                name=names[codes[k]],
                user_external_id=users[contacts[k]],
                group_external_id=group,
                properties=self.properties(k),
                context={"groupId": group},
                timestamp=datetime.fromtimestamp(ts[k], UTC),
            )


@dataclass(frozen=True, slots=True)
class ChurnTruth:
    churned_at: datetime
    cause: str
    # False when nothing in the data could have announced it (the business closed).
    foreseeable: bool
    # Days of fading activity before the churn (0 = none).
    wind_down_days: int
    reactivated_at: datetime | None


@dataclass(slots=True)
class AccountTruth:
    """The hidden state behind one account: for tests and benchmarks, never for the database."""

    external_id: str
    fit: float
    price_sensitivity: float
    onboarding_days: int
    onboarding_completed: bool
    treated_on: date | None
    # Values at the first day of every simulated month.
    month_starts: list[date]
    health: list[float]
    # Monthly churn probability on that day if subscribed (after any treatment).
    hazard: list[float]
    churns: list[ChurnTruth]

    def hazard_on(self, day: date) -> float:
        """The monthly churn probability in force on `day` (that of its month's first day)."""
        current = 0.0
        for start, hazard in zip(self.month_starts, self.hazard, strict=True):
            if start > day:
                break
            current = hazard
        return current

    def churns_between(self, start: datetime, end: datetime) -> bool:
        """True when the account churns in [start, end)."""
        return any(start <= c.churned_at < end for c in self.churns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "external_id": self.external_id,
            "fit": round(self.fit, 4),
            "price_sensitivity": round(self.price_sensitivity, 4),
            "onboarding_days": self.onboarding_days,
            "onboarding_completed": self.onboarding_completed,
            "treated_on": self.treated_on.isoformat() if self.treated_on else None,
            "month_starts": [d.isoformat() for d in self.month_starts],
            "health": [round(h, 4) for h in self.health],
            "hazard": [round(h, 5) for h in self.hazard],
            "churns": [
                {
                    "churned_at": iso(c.churned_at),
                    "cause": c.cause,
                    "foreseeable": c.foreseeable,
                    "wind_down_days": c.wind_down_days,
                    "reactivated_at": iso(c.reactivated_at) if c.reactivated_at else None,
                }
                for c in self.churns
            ],
        }


@dataclass(slots=True)
class AccountBundle:
    """Everything about one account. `truth` is hidden state, not product data."""

    index: int
    account: AccountRecord
    contacts: list[ContactRecord]
    events: EventBlock
    subscriptions: list[SubscriptionRecord]
    support: list[SupportRecord]
    surveys: list[SurveyRecord]
    truth: AccountTruth


def iso(at: datetime) -> str:
    """ISO-8601 in UTC with a Z suffix, second precision."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_from_epoch(seconds: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
