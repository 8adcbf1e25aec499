"""Columnar bulk inserts: COPY on PostgreSQL, one executemany on SQLite.

For loads of millions of rows (simulator, imports) the ORM's per-row bookkeeping costs more
than the database itself. Values are converted with each column type's own bind processor,
so what lands is exactly what the ORM would have written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import JSON, Table
from sqlalchemy.orm import Session


def _json_fast(process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    if process is None:
        return None

    def run(value: Any) -> Any:
        # Most JSON cells are empty: skip the encoder for them.
        if value == {}:
            return "{}"
        if value == []:
            return "[]"
        return process(value)

    return run


def bulk_insert(session: Session, model: type[Any], columns: Mapping[str, Sequence[Any]]) -> int:
    """Insert rows of a mapped class given as equal-length columns; returns the row count."""
    table: Table = model.__table__
    names = list(columns)
    if not names:
        return 0
    n = len(columns[names[0]])
    if n == 0:
        return 0
    if any(len(columns[c]) != n for c in names):
        raise ValueError("bulk_insert columns have different lengths")
    conn = session.connection()
    dialect = conn.dialect
    if dialect.name == "postgresql":
        cols = []
        for name in names:
            values = columns[name]
            column_type = table.c[name].type
            if isinstance(column_type, JSON) or "JSON" in type(column_type).__name__.upper():
                values = [None if v is None else Jsonb(v) for v in values]
            cols.append(values)
        raw = conn.connection.driver_connection
        if raw is None:
            raise RuntimeError("no driver connection for COPY")
        quoted = ", ".join(f'"{c}"' for c in names)
        statement = f'COPY "{table.name}" ({quoted}) FROM STDIN'
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in zip(*cols, strict=True):
                copy.write_row(row)
        return n
    cols = []
    # Callers pass the same list for columns that hold the same values: convert it once.
    converted: dict[tuple[int, str], list[Any]] = {}
    for name in names:
        column_type = table.c[name].type
        values = columns[name]
        key = (id(values), type(column_type).__name__)
        if key not in converted:
            process: Callable[[Any], Any] | None = column_type._cached_bind_processor(dialect)
            if isinstance(column_type, JSON):
                process = _json_fast(process)
            converted[key] = [process(v) for v in values] if process else list(values)
        cols.append(converted[key])
    placeholders = ", ".join("?" for _ in names)
    quoted = ", ".join(f'"{c}"' for c in names)
    conn.exec_driver_sql(
        f'INSERT INTO "{table.name}" ({quoted}) VALUES ({placeholders})',  # noqa: S608
        list(zip(*cols, strict=True)),
    )
    return n
