"""Account ids as the database's own text, for reads of many rows.

A bulk read that returns a UUID column pays for one `uuid.UUID` per row (and, with an IN
list, for binding every id). Selecting `key_text(column)` instead returns the id as the
text the database keeps (SQLite: 32 hex digits; PostgreSQL: the canonical form), which a
dict built once with `key_of` maps back to a row.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, String, cast
from sqlalchemy.orm import Session


def key_text(column: Any) -> ColumnElement[str]:
    """The column's value as text, as stored (no conversion to uuid.UUID on the way out)."""
    return cast(column, String)


def key_of(session: Session) -> Callable[[uuid.UUID], str]:
    """The function turning a UUID into the text `key_text` returns on this engine."""
    if session.get_bind().dialect.name == "postgresql":
        return str
    return _hex


def _hex(value: uuid.UUID) -> str:
    return value.hex
