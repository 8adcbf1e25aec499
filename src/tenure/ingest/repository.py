"""Every query of the ingest domain."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, Table, bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session

from tenure.ingest.models import ActiveDay, Event, UsageDaily
from tenure.ingest.rollup import ALL_EVENTS as ALL_EVENTS_METRIC
from tenure.kit.bulk import add_to_counts, bulk_insert, insert_returning

ACTIVITY_TYPES = ("track", "page", "screen")


def insert_events(session: Session, columns: Mapping[str, Sequence[Any]]) -> int:
    return bulk_insert(session, Event, columns)


def insert_usage(session: Session, columns: Mapping[str, Sequence[Any]]) -> int:
    return bulk_insert(session, UsageDaily, columns)


def count_events(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Event)) or 0


def daily_totals(
    session: Session,
    *,
    metric: str,
    since: date,
    until: date,
    account_id: uuid.UUID | None = None,
    account_ids: Select[Any] | None = None,
) -> list[tuple[date, int, int]]:
    """(day, sum of counts, number of accounts with a row) per day in [since, until)."""
    query = select(UsageDaily.day, func.sum(UsageDaily.count), func.count()).where(
        UsageDaily.metric == metric, UsageDaily.day >= since, UsageDaily.day < until
    )
    if account_id is not None:
        query = query.where(UsageDaily.account_id == account_id)
    if account_ids is not None:
        query = query.where(UsageDaily.account_id.in_(account_ids))
    rows = session.execute(query.group_by(UsageDaily.day))
    return [(day, int(total or 0), int(n)) for day, total, n in rows]


def insert_new_events(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert events whose (source, message_id) is new; returns the message ids stored.

    ON CONFLICT DO NOTHING RETURNING: a duplicate already stored, in the same batch, or
    arriving concurrently in another request is skipped, on both engines.
    """
    if not rows:
        return set()
    rows = sorted(rows, key=lambda r: (r["source"], r["message_id"]))
    stored = insert_returning(
        session,
        Event,
        {k: [r[k] for r in rows] for k in rows[0]},
        ["source", "message_id"],
        ["message_id"],
    )
    return {message_id for (message_id,) in stored}


def add_usage(session: Session, rows: list[dict[str, Any]]) -> None:
    """Add counts to usage_daily rows, creating them when missing."""
    if rows:
        # One order for every writer: two batches touching the same rows never deadlock.
        rows = sorted(rows, key=lambda r: (str(r["account_id"]), r["day"], r["metric"]))
        add_to_counts(
            session,
            UsageDaily,
            {k: [r[k] for r in rows] for k in rows[0]},
            ["account_id", "day", "metric"],
            "count",
        )


def insert_active_days(
    session: Session, rows: list[dict[str, Any]]
) -> list[tuple[uuid.UUID, date]]:
    """Record (account, day, contact) activity; returns (account, day) of the new ones."""
    if not rows:
        return []
    rows = sorted(rows, key=lambda r: (str(r["account_id"]), r["day"], str(r["contact_id"])))
    stored = insert_returning(
        session,
        ActiveDay,
        {k: [r[k] for r in rows] for k in rows[0]},
        ["account_id", "day", "contact_id"],
        ["account_id", "day", "contact_id"],
    )
    return [(a, d) for a, d, _ in stored]


def waiting_events(
    session: Session,
    *,
    group_ids: Collection[str] = (),
    user_ids: Collection[str] = (),
    anonymous_ids: Collection[str] = (),
) -> list[Any]:
    """Rows of events still waiting for their account or contact (Core, no ORM objects)."""
    conditions = []
    if group_ids:
        conditions.append(Event.account_id.is_(None) & Event.group_external_id.in_(group_ids))
    if user_ids:
        conditions.append(Event.contact_id.is_(None) & Event.user_external_id.in_(user_ids))
    if anonymous_ids:
        conditions.append(Event.contact_id.is_(None) & Event.anonymous_id.in_(anonymous_ids))
    if not conditions:
        return []
    query = select(
        Event.id,
        Event.account_id,
        Event.contact_id,
        Event.user_external_id,
        Event.anonymous_id,
        Event.group_external_id,
        Event.type,
        Event.name,
        Event.timestamp,
    ).where(or_(*conditions))
    return list(session.execute(query))


def link_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Executemany of {"eid", "aid", "cid"}: set account and contact of waiting events."""
    if rows:
        table: Table = Event.__table__  # type: ignore[assignment]
        session.execute(
            update(table)
            .where(table.c.id == bindparam("eid"))
            .values(account_id=bindparam("aid"), contact_id=bindparam("cid")),
            rows,
        )


def _ids_filter(query: Any, account_ids: Collection[uuid.UUID] | None) -> Any:
    if account_ids is not None:
        query = query.where(UsageDaily.account_id.in_(list(account_ids)))
    return query


def usage_signals(
    session: Session,
    *,
    day: date,
    account_ids: Collection[uuid.UUID] | None,
    session_events: Sequence[str],
    feature_of: Mapping[str, int],
) -> list[tuple[Any, ...]]:
    """Per account, over the 90 days up to `day` (inclusive): active days in the last 30
    and in the 30 before, sessions in the last 30, distinct key features in 30 and 90
    days, last active day. One grouped scan; the database does the counting."""
    d30 = day - timedelta(days=30)
    d60 = day - timedelta(days=60)
    d90 = day - timedelta(days=90)
    metric, when = UsageDaily.metric, UsageDaily.day
    is_all = metric == ALL_EVENTS_METRIC
    feature = case(*[(metric == name, index) for name, index in feature_of.items()], else_=None)
    query = select(
        UsageDaily.account_id,
        func.sum(case((is_all & (when > d30), 1), else_=0)),
        func.sum(case((is_all & (when > d60) & (when <= d30), 1), else_=0)),
        func.sum(
            case((metric.in_(list(session_events)) & (when > d30), UsageDaily.count), else_=0)
        ),
        func.count(func.distinct(case((when > d30, feature), else_=None))),
        func.count(func.distinct(feature)),
        func.max(case((is_all, when), else_=None)),
    ).where(
        when > d90,
        when <= day,
        metric.in_([ALL_EVENTS_METRIC, *session_events, *feature_of]),
    )
    query = _ids_filter(query, account_ids).group_by(UsageDaily.account_id)
    return [tuple(row) for row in session.execute(query)]


def sessions_between(
    session: Session,
    *,
    start: date,
    end: date,
    account_ids: Collection[uuid.UUID] | None,
    session_events: Sequence[str],
) -> list[tuple[uuid.UUID, int]]:
    """Sessions per account with a day in (start, end]."""
    query: Any = select(UsageDaily.account_id, func.sum(UsageDaily.count)).where(
        UsageDaily.day > start, UsageDaily.day <= end, UsageDaily.metric.in_(list(session_events))
    )
    query = _ids_filter(query, account_ids).group_by(UsageDaily.account_id)
    return [(row[0], int(row[1] or 0)) for row in session.execute(query)]


def last_active_days(
    session: Session, *, since: date, until: date, account_ids: Collection[uuid.UUID] | None
) -> list[tuple[uuid.UUID, date]]:
    """Last day with any event in (since, until] per account."""
    query: Any = select(UsageDaily.account_id, func.max(UsageDaily.day)).where(
        UsageDaily.metric == ALL_EVENTS_METRIC, UsageDaily.day > since, UsageDaily.day <= until
    )
    query = _ids_filter(query, account_ids).group_by(UsageDaily.account_id)
    return [(row[0], row[1]) for row in session.execute(query)]


def monthly_activity(
    session: Session, *, since: date, until: date, session_events: Sequence[str]
) -> list[tuple[uuid.UUID, str, int, int]]:
    """(account, 'YYYY-MM', active days, sessions) per account and month in [since, until)."""
    if session.get_bind().dialect.name == "postgresql":
        month = func.to_char(UsageDaily.day, "YYYY-MM")
    else:
        month = func.substr(UsageDaily.day, 1, 7)
    metric = UsageDaily.metric
    query = (
        select(
            UsageDaily.account_id,
            month,
            func.sum(case((metric == ALL_EVENTS_METRIC, 1), else_=0)),
            func.sum(case((metric.in_(list(session_events)), UsageDaily.count), else_=0)),
        )
        .where(
            UsageDaily.day >= since,
            UsageDaily.day < until,
            metric.in_([ALL_EVENTS_METRIC, *session_events]),
        )
        .group_by(UsageDaily.account_id, month)
    )
    return [(a, str(m), int(d or 0), int(s or 0)) for a, m, d, s in session.execute(query)]


def first_usage_day(session: Session) -> date | None:
    return session.scalar(
        select(func.min(UsageDaily.day)).where(UsageDaily.metric == ALL_EVENTS_METRIC)
    )
