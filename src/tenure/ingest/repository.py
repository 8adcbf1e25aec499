"""Every query of the ingest domain."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from tenure.ingest.models import Event, UsageDaily
from tenure.kit.bulk import bulk_insert


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
