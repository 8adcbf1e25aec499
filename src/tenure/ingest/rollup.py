"""The usage_daily rollup, computed from event arrays (pure numpy, no database).

A day is the account's local calendar day when its timezone is known (a photographer's
Saturday is a Saturday in Sydney), else the UTC day. Metrics are the event names, plus
`$active_users` (distinct contacts active that day) and `$events` (all events).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

ACTIVE_USERS = "$active_users"
ALL_EVENTS = "$events"
_EPOCH = date(1970, 1, 1)
_DAY = 86_400


@dataclass(frozen=True)
class DailyCount:
    day: date
    metric: str
    count: int


def local_days(epochs: npt.NDArray[np.int64], timezone: str | None) -> npt.NDArray[np.int64]:
    """Day numbers (days since 1970-01-01) in the given timezone for UTC epoch seconds."""
    utc_days = epochs // _DAY
    if not timezone or epochs.size == 0:
        return utc_days
    zone = ZoneInfo(timezone)
    unique, inverse = np.unique(utc_days, return_inverse=True)
    noon = datetime(1970, 1, 1, 12, tzinfo=UTC)

    def offset(day: int) -> int:
        # The offset at noon UTC of that day: exact except in the hours around a DST switch.
        delta = (noon + timedelta(days=day)).astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta else 0

    offsets = np.array([offset(int(d)) for d in unique.tolist()], dtype=np.int64)
    return (epochs + offsets[inverse]) // _DAY


def daily_counts(
    epochs: npt.NDArray[np.int64],
    name_codes: npt.NDArray[np.integer],
    names: tuple[str, ...] | list[str],
    contact_codes: npt.NDArray[np.integer],
    timezone: str | None,
) -> list[DailyCount]:
    """Counts per (day, metric) for one account's events."""
    if epochs.size == 0:
        return []
    days = local_days(epochs.astype(np.int64), timezone)
    out: list[DailyCount] = []
    n_names = max(len(names), 1)
    keys = days * n_names + name_codes.astype(np.int64)
    uniq, counts = np.unique(keys, return_counts=True)
    for key, count in zip(uniq.tolist(), counts.tolist(), strict=True):
        d, code = divmod(key, n_names)
        out.append(DailyCount(_EPOCH + timedelta(days=d), names[code], count))
    day_uniq, day_counts = np.unique(days, return_counts=True)
    for d, count in zip(day_uniq.tolist(), day_counts.tolist(), strict=True):
        out.append(DailyCount(_EPOCH + timedelta(days=d), ALL_EVENTS, count))
    n_contacts = int(contact_codes.max()) + 1
    pairs = np.unique(days * n_contacts + contact_codes.astype(np.int64))
    active_day, active_n = np.unique(pairs // n_contacts, return_counts=True)
    for d, count in zip(active_day.tolist(), active_n.tolist(), strict=True):
        out.append(DailyCount(_EPOCH + timedelta(days=d), ACTIVE_USERS, count))
    return out
