"""The churn definition, the one that labels, reports and outcomes all use.

An account churns at time t when a `churn` subscription change happens at t and no
`reactivation` follows within the grace period (default 14 days, inclusive); or when the
account is marked churned (accounts.churned_at) with no churn change within the grace
period of that time. After a reactivation the account is alive again and may churn again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from tenure.accounts import service as accounts_service

DEFAULT_GRACE = timedelta(days=14)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

ChurnEvent = tuple[uuid.UUID, datetime]


def churns_from_changes(
    changes: Iterable[tuple[uuid.UUID, str, datetime]],
    marked: Iterable[tuple[uuid.UUID, datetime]],
    *,
    until: datetime,
    grace: timedelta = DEFAULT_GRACE,
) -> list[ChurnEvent]:
    """Pure: churn events from (account, kind, when) changes, oldest first, and marked
    churns (account, churned_at); only those final by `until` (see churn_events)."""
    by_account: dict[uuid.UUID, list[tuple[str, datetime]]] = {}
    for account_id, kind, at in changes:
        if kind in ("churn", "reactivation") and at < until:
            by_account.setdefault(account_id, []).append((kind, at))
    events: list[ChurnEvent] = []
    churn_times: dict[uuid.UUID, list[datetime]] = {}
    for account_id, rows in by_account.items():
        rows.sort(key=lambda r: r[1])
        churned = False
        for j, (kind, at) in enumerate(rows):
            if kind == "reactivation":
                churned = False
                continue
            churn_times.setdefault(account_id, []).append(at)
            if churned or at + grace > until:
                # Already gone (a repeated churn change), or not final yet.
                continue
            back = any(k == "reactivation" and at < t <= at + grace for k, t in rows[j + 1 :])
            if not back:
                events.append((account_id, at))
                churned = True
    for account_id, at in marked:
        if at is None or at > until:
            continue
        near = churn_times.get(account_id, [])
        if not any(abs(t - at) <= grace for t in near):
            events.append((account_id, at))
    events.sort(key=lambda e: (e[1], e[0].hex))
    return events


def churn_events(
    session: Session, *, until: datetime, grace: timedelta = DEFAULT_GRACE
) -> list[ChurnEvent]:
    """(account, churned_at) of every churn known by `until`, oldest first. A churn change at
    t is final only once t + grace <= until (a reactivation may still undo it before then);
    a marked churn counts from its churned_at. Reads nothing from `until` on, except the
    accounts' churned_at marks (which are only taken when churned_at <= until)."""
    changes = accounts_service.subscription_changes_between(session, since=EPOCH, until=until)
    marked = [(row[0], row[4]) for row in accounts_service.lifetimes(session) if row[4]]
    return churns_from_changes(
        ((a, kind, at) for a, kind, _, _, at in changes), marked, until=until, grace=grace
    )


def churned_state(
    changes: Iterable[tuple[uuid.UUID, str, datetime]], *, at: datetime
) -> set[uuid.UUID]:
    """Pure: the accounts whose latest churn/reactivation change before `at` is a churn
    (gone at `at`, as far as was known then)."""
    last: dict[uuid.UUID, tuple[datetime, str]] = {}
    for account_id, kind, when in changes:
        if kind not in ("churn", "reactivation") or when >= at:
            continue
        prev = last.get(account_id)
        if prev is None or when >= prev[0]:
            last[account_id] = (when, kind)
    return {a for a, (_, kind) in last.items() if kind == "churn"}


def labels(
    events: Sequence[ChurnEvent],
    account_ids: Sequence[uuid.UUID],
    snapshot: datetime,
    horizon: timedelta,
) -> npt.NDArray[np.int64]:
    """1 where the account churns in (snapshot, snapshot + horizon], else 0 (pure)."""
    end = snapshot + horizon
    churned = {a for a, at in events if snapshot < at <= end}
    return np.array([1 if a in churned else 0 for a in account_ids], dtype=np.int64)
