"""Ingestion services. The tracking API and imports (ingestion issue) build on these."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from tenure.ingest import repository as repo
from tenure.ingest.rollup import ALL_EVENTS


def bulk_insert_events(session: Session, columns: Mapping[str, Sequence[Any]]) -> int:
    """Insert new raw events given as columns (no deduplication: loads into an empty source)."""
    return repo.insert_events(session, columns)


def bulk_insert_usage(session: Session, columns: Mapping[str, Sequence[Any]]) -> int:
    """Insert usage_daily rows, given as columns, for keys not present yet (a bulk load),
    and fold them into usage_days and usage_firsts."""
    count = repo.insert_usage(session, columns)
    names = list(columns)
    repo.fold_usage_summaries(
        session, [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    )
    return count


def count_events(session: Session) -> int:
    return repo.count_events(session)


@dataclass(frozen=True)
class MonthUsage:
    month: date  # first day of the month
    events: int
    active_days: int  # account-days with any event


def _month_start(day: date, back: int = 0) -> date:
    total = day.year * 12 + day.month - 1 - back
    return date(total // 12, total % 12 + 1, 1)


def monthly_usage(
    session: Session,
    *,
    until: date,
    months: int,
    account_id: uuid.UUID | None = None,
    account_ids: Select[Any] | None = None,
) -> list[MonthUsage]:
    """Events and active days per calendar month, oldest first, for the months up to `until`."""
    first = _month_start(until, months - 1)
    totals = {_month_start(first, -i): [0, 0] for i in range(months)}
    for day, total, accounts in repo.daily_totals(
        session,
        metric=ALL_EVENTS,
        since=first,
        until=until + timedelta(days=1),
        account_id=account_id,
        account_ids=account_ids,
    ):
        bucket = totals[_month_start(day)]
        bucket[0] += total
        bucket[1] += accounts
    return [MonthUsage(month, events, days) for month, (events, days) in totals.items()]


def usage_signals(
    session: Session,
    *,
    day: date,
    account_ids: Sequence[uuid.UUID] | Select[Any],
    n_features: int,
) -> list[tuple[Any, ...]]:
    """Usage aggregates for health scoring: (account id as text (`kit.keys`), active days
    last 30, active days the 30 before, sessions last 30, key features last 30, key
    features last 90, last active day) for the 90 days up to `day`, from usage_days.
    `account_ids`: ids, or a query of them (a whole portfolio: nothing bound)."""
    return repo.usage_signals(session, day=day, account_ids=account_ids, n_features=n_features)


def sessions_between(
    session: Session,
    *,
    start: date,
    end: date,
    account_ids: Sequence[uuid.UUID] | Select[Any],
) -> list[tuple[str, int]]:
    """Sessions per account (id as text) on days in (start, end]."""
    return repo.sessions_between(session, start=start, end=end, account_ids=account_ids)


def last_active_days(
    session: Session,
    *,
    since: date,
    until: date,
    account_ids: Sequence[uuid.UUID] | Select[Any],
) -> list[tuple[str, Any]]:
    """Last active day in (since, until] per account (id as text; a date, or ISO text)."""
    return repo.last_active_days(session, since=since, until=until, account_ids=account_ids)


def monthly_activity(
    session: Session, *, since: date, until: date, account_ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, str, int, int]]:
    """Active days and sessions per account and calendar month (the seasonal baseline)."""
    return repo.monthly_activity(session, since=since, until=until, account_ids=account_ids)


def rebuild_usage_days(session: Session) -> int:
    """Recompute the per-day usage summary from usage_daily with the current catalogue."""
    from tenure.ingest.catalogue import current_catalogue, feature_bits

    catalogue = current_catalogue()
    return repo.rebuild_usage_days(
        session, session_events=catalogue.activity.session_events, bits=feature_bits(catalogue)
    )


def rebuild_usage_firsts(session: Session) -> int:
    """Recompute the first day of each account's metrics from usage_daily."""
    return repo.rebuild_usage_firsts(session)


def first_days(
    session: Session, *, metrics: Mapping[str, str], account_ids: Sequence[uuid.UUID] | None
) -> list[tuple[str, str, Any]]:
    """(account id as text (`kit.keys`), group, first day: a date or ISO text) for each
    account and group of metrics (`metrics`: metric -> group): when the account first used
    any metric of the group. More than 5,000 (or no) `account_ids`: every account's rows."""
    return repo.first_days(session, metrics=metrics, account_ids=account_ids)


def first_usage_day(session: Session) -> date | None:
    """The first day any usage was recorded: history before it is unknown, not quiet."""
    return repo.first_usage_day(session)


def usage_windows(
    session: Session, *, day: date, windows: Sequence[int], account_ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, int, int, int, int]]:
    """(account, window, active days, events, sessions) over the `window` days up to `day`
    (inclusive), for each window; accounts without activity in a window are left out."""
    return repo.usage_windows(session, day=day, windows=windows, account_ids=account_ids)


def last_usage_day(session: Session) -> date | None:
    """The last day any usage was recorded (where the data ends)."""
    return repo.last_usage_day(session)
