"""Every query of the ingest domain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tenure.ingest.models import Event, UsageDaily
from tenure.kit.bulk import bulk_insert


def insert_events(session: Session, columns: Mapping[str, Sequence[Any]]) -> int:
    return bulk_insert(session, Event, columns)


def insert_usage(session: Session, columns: Mapping[str, Sequence[Any]]) -> int:
    return bulk_insert(session, UsageDaily, columns)


def count_events(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Event)) or 0
