"""Support interactions and surveys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from tenure.support import repository as repo


def bulk_insert_interactions(session: Session, columns: Mapping[str, Sequence[Any]]) -> int:
    """Insert support interactions given as columns (bulk loads)."""
    return repo.insert_interactions(session, columns)


def bulk_insert_surveys(session: Session, columns: Mapping[str, Sequence[Any]]) -> int:
    """Insert survey responses given as columns (bulk loads)."""
    return repo.insert_surveys(session, columns)
