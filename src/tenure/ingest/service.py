"""Ingestion services. The tracking API and imports (ingestion issue) build on these."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from tenure.ingest import repository as repo


def bulk_insert_events(session: Session, columns: Mapping[str, Sequence[Any]]) -> int:
    """Insert new raw events given as columns (no deduplication: loads into an empty source)."""
    return repo.insert_events(session, columns)


def bulk_insert_usage(session: Session, columns: Mapping[str, Sequence[Any]]) -> int:
    """Insert usage_daily rows, given as columns, for keys not present yet."""
    return repo.insert_usage(session, columns)


def count_events(session: Session) -> int:
    return repo.count_events(session)
