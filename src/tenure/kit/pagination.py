"""Keyset (cursor) pagination: stable and fast at any depth, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from tenure.kit.errors import InvalidInput

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
    prev_cursor: str | None


def _encode(values: Sequence[Any], direction: str) -> str:
    def plain(v: Any) -> Any:
        if isinstance(v, datetime):
            return {"dt": v.isoformat()}
        if isinstance(v, uuid.UUID):
            return str(v)
        return v

    raw = json.dumps({"k": [plain(v) for v in values], "d": direction}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[list[Any], str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        values = [datetime.fromisoformat(v["dt"]) if isinstance(v, dict) else v for v in data["k"]]
        direction = data["d"]
        if direction not in ("next", "prev") or len(values) != 2:
            raise ValueError(direction)
        return values, direction
    except (ValueError, KeyError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise InvalidInput("cursor is not valid; use a cursor returned by this API") from exc


def paginate(
    session: Session,
    query: Select[T],
    *,
    sort_column: InstrumentedAttribute[Any],
    id_column: InstrumentedAttribute[uuid.UUID],
    descending: bool,
    cursor: str | None,
    limit: int,
) -> Page[T]:
    """Run `query` one page at a time, ordered by (sort_column, id)."""
    direction = "next"
    if cursor:
        (value, raw_id), direction = _decode(cursor)
        try:
            key_id = uuid.UUID(str(raw_id))
        except ValueError as exc:
            raise InvalidInput("cursor is not valid; use a cursor returned by this API") from exc
        # Moving forward on a descending sort, or backward on an ascending one, means "smaller".
        smaller = descending == (direction == "next")
        if smaller:
            cond = or_(sort_column < value, and_(sort_column == value, id_column < key_id))
        else:
            cond = or_(sort_column > value, and_(sort_column == value, id_column > key_id))
        query = query.where(cond)
    backwards = direction == "prev"
    order_desc = descending != backwards
    if order_desc:
        query = query.order_by(sort_column.desc(), id_column.desc())
    else:
        query = query.order_by(sort_column.asc(), id_column.asc())
    rows = list(session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()

    def key(row: Any) -> list[Any]:
        return [getattr(row, sort_column.key), getattr(row, id_column.key)]

    has_next = more if not backwards else True
    has_prev = (cursor is not None) if not backwards else more
    next_cursor = _encode(key(rows[-1]), "next") if rows and has_next else None
    prev_cursor = _encode(key(rows[0]), "prev") if rows and has_prev else None
    return Page(items=rows, next_cursor=next_cursor, prev_cursor=prev_cursor)
