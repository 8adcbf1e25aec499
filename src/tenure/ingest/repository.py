"""Every query of the ingest domain."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select, Table, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from tenure.ingest.models import ActiveDay, Event, UsageDaily
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
