"""Columnar bulk inserts: COPY on PostgreSQL, one executemany on SQLite.

For loads of millions of rows (simulator, imports) the ORM's per-row bookkeeping costs more
than the database itself. Values are converted with each column type's own bind processor,
so what lands is exactly what the ORM would have written.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from itertools import chain
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
    if conn.dialect.name == "postgresql":
        _pg_copy(conn, table, table.name, columns, Jsonb)
        return n
    names, rows, placeholder = _converted(session, model, columns)
    quoted = ", ".join(f'"{c}"' for c in names)
    conn.exec_driver_sql(
        f'INSERT INTO "{table.name}" ({quoted}) VALUES ({", ".join(placeholder for _ in names)})',  # noqa: S608
        rows,
    )
    return n


def _is_json(column_type: Any) -> bool:
    return isinstance(column_type, JSON) or "JSON" in type(column_type).__name__.upper()


def _pg_copy(
    conn: Any,
    table: Table,
    target: str,
    columns: Mapping[str, Sequence[Any]],
    json_value: Callable[[Any], Any],
) -> None:
    """COPY the columns into `target` (the table or a temporary copy of its columns), JSON
    values passed through `json_value` (None stays NULL)."""
    names = list(columns)
    cols = [
        [None if v is None else json_value(v) for v in columns[name]]
        if _is_json(table.c[name].type)
        else columns[name]
        for name in names
    ]
    raw = conn.connection.driver_connection
    if raw is None:
        raise RuntimeError("no driver connection for COPY")
    quoted = ", ".join(f'"{c}"' for c in names)
    with raw.cursor() as cursor, cursor.copy(f'COPY "{target}" ({quoted}) FROM STDIN') as copy:
        for row in zip(*cols, strict=True):
            copy.write_row(row)


def _each_once(process: Callable[[Any], Any], values: Sequence[Any]) -> list[Any]:
    """`process` applied to every value, but once per distinct value: a batch repeats the
    same account ids, days and receive times on many rows.

    Values are told apart by identity (the same object always converts alike), and plain
    dates by value (equal dates have equal fields, whatever the object)."""
    # A list holds every value alive while their ids serve as keys (iterating a numpy
    # array, for one, makes a new object per element each time).
    values = values if type(values) is list else list(values)
    keys: list[Any] = values if set(map(type, values)) == {date} else list(map(id, values))
    distinct = dict(zip(keys, values, strict=True))
    if len(distinct) == len(keys):
        return [process(v) for v in values]
    done = {k: process(v) for k, v in distinct.items()}
    return [done[k] for k in keys]


def sqlite_insert_ids(
    session: Session, model: type[Any], columns: Mapping[str, Sequence[Any]]
) -> list[int]:
    """SQLite: insert rows (a rowid-keyed table without AUTOINCREMENT) with multi-row
    INSERTs and return their rowids in the order given. Each row of a statement gets the
    largest rowid + 1 while the statement holds the write lock, so a statement's rows have
    consecutive rowids in VALUES order and its last rowid gives them all (SQLAlchemy
    sends one INSERT per row for an ordered RETURNING on SQLite)."""
    names, rows, ph = _converted(session, model, columns)
    if not rows:
        return []
    table: Table = model.__table__
    quoted = ", ".join(f'"{c}"' for c in names)
    one = "(" + ", ".join(ph for _ in names) + ")"
    per_statement = max(1, 30000 // len(names))
    conn = session.connection()
    ids: list[int] = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = f'INSERT INTO "{table.name}" ({quoted}) VALUES ' + ", ".join(one for _ in chunk)  # noqa: S608
        last = conn.exec_driver_sql(sql, tuple(v for row in chunk for v in row)).lastrowid
        if last is None:
            raise RuntimeError(f"no rowid after inserting into {table.name}")
        ids += range(int(last) - len(chunk) + 1, int(last) + 1)
    return ids


def _converted(
    session: Session, model: type[Any], columns: Mapping[str, Sequence[Any]]
) -> tuple[list[str], list[tuple[Any, ...]], str]:
    """Column names, rows converted for the driver, and the driver's placeholder."""
    table: Table = model.__table__
    conn = session.connection()
    dialect = conn.dialect
    names = list(columns)
    cols: list[list[Any]] = []
    # Callers pass the same list for columns that hold the same values: convert it once.
    converted: dict[tuple[int, str], list[Any]] = {}
    for name in names:
        column_type = table.c[name].type
        values = columns[name]
        if dialect.name == "postgresql":
            if isinstance(column_type, JSON):
                values = [None if v is None else Jsonb(v) for v in values]
            cols.append(list(values))
            continue
        key = (id(values), type(column_type).__name__)
        if key not in converted:
            process: Callable[[Any], Any] | None = column_type._cached_bind_processor(dialect)
            if isinstance(column_type, JSON):
                process = _json_fast(process)
                converted[key] = [process(v) for v in values] if process else list(values)
            else:
                converted[key] = _each_once(process, values) if process else list(values)
        cols.append(converted[key])
    placeholder = "%s" if dialect.name == "postgresql" else "?"
    return names, list(zip(*cols, strict=True)), placeholder


def insert_ignoring_conflicts(
    session: Session, model: type[Any], columns: Mapping[str, Sequence[Any]], keys: Sequence[str]
) -> int:
    """INSERT ... ON CONFLICT (keys) DO NOTHING, as one driver-level executemany; returns the
    number of rows inserted."""
    if session.connection().dialect.name == "postgresql":
        if columns and len(next(iter(columns.values()))):
            result = _pg_unnest_insert(
                session, model, columns, f"ON CONFLICT ({', '.join(keys)}) DO NOTHING"
            )
            return int(result.rowcount)
        return 0
    names, rows, ph = _converted(session, model, columns)
    if not rows:
        return 0
    table: Table = model.__table__
    quoted = ", ".join(f'"{c}"' for c in names)
    sql = (
        f'INSERT INTO "{table.name}" ({quoted}) VALUES ({", ".join(ph for _ in names)}) '  # noqa: S608
        f"ON CONFLICT ({', '.join(keys)}) DO NOTHING"
    )
    return int(session.connection().exec_driver_sql(sql, rows).rowcount)


def add_to_counts(
    session: Session,
    model: type[Any],
    columns: Mapping[str, Sequence[Any]],
    keys: Sequence[str],
    counter: str,
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET counter = counter + new, as one executemany."""
    table_name = model.__table__.name
    merge_rows(
        session,
        model,
        columns,
        keys,
        f'"{counter}" = "{table_name}"."{counter}" + excluded."{counter}"',
    )


def merge_rows(
    session: Session,
    model: type[Any],
    columns: Mapping[str, Sequence[Any]],
    keys: Sequence[str],
    set_clause: str,
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET <set_clause> (which may use `excluded`),
    as one executemany (unnest on PostgreSQL)."""
    if session.connection().dialect.name == "postgresql":
        n = len(next(iter(columns.values()))) if columns else 0
        if n >= COPY_FROM:
            # Large: COPY (formatted by the driver's C code) beats arrays of text, whose
            # elements are escaped one by one in Python.
            temp = pg_copy_temp(session, model, columns)
            quoted = ", ".join(f'"{c}"' for c in columns)
            session.connection().exec_driver_sql(
                f'INSERT INTO "{model.__table__.name}" ({quoted}) '  # noqa: S608
                f'SELECT {quoted} FROM "{temp}" '
                f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {set_clause}"
            )
            pg_drop_temp(session, temp)
        elif n:
            _pg_unnest_insert(
                session,
                model,
                columns,
                f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {set_clause}",
            )
        return
    names, rows, ph = _converted(session, model, columns)
    if not rows:
        return
    table: Table = model.__table__
    quoted = ", ".join(f'"{c}"' for c in names)
    sql = (
        f'INSERT INTO "{table.name}" ({quoted}) VALUES ({", ".join(ph for _ in names)}) '  # noqa: S608
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {set_clause}"
    )
    session.connection().exec_driver_sql(sql, rows)


# From this many rows, PostgreSQL merges go through COPY and a temporary table.
COPY_FROM = 5000


def pg_copy_temp(session: Session, model: type[Any], columns: Mapping[str, Sequence[Any]]) -> str:
    """PostgreSQL: COPY the rows into a new temporary table shaped like the model's (these
    columns only); returns its name. Drop it with `pg_drop_temp` once read."""
    table: Table = model.__table__
    conn = session.connection()
    names = list(columns)
    temp = f"_bulk_{table.name}"
    quoted = ", ".join(f'"{c}"' for c in names)
    conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{temp}"')
    conn.exec_driver_sql(
        f'CREATE TEMPORARY TABLE "{temp}" ON COMMIT DROP AS '  # noqa: S608
        f'SELECT {quoted} FROM "{table.name}" WITH NO DATA'
    )
    # JSON as text from the engine's own serializer (COPY's text format: the server parses
    # it into the column's type), not psycopg's default encoder.
    dumps: Callable[[Any], str] = getattr(conn.dialect, "_json_serializer", None) or _dumps
    _pg_copy(conn, table, temp, columns, dumps)
    return temp


def _dumps(value: Any) -> str:
    return json.dumps(value)


def pg_drop_temp(session: Session, temp: str) -> None:
    session.connection().exec_driver_sql(f'DROP TABLE IF EXISTS "{temp}"')


def update_by_key(
    session: Session, model: type[Any], columns: Mapping[str, Sequence[Any]], key: str
) -> None:
    """UPDATE rows of the model's table identified by `key`, setting the other columns
    given: one driver-level executemany (the columns' own bind processing), or on PostgreSQL from
    COPY_FROM rows a COPY into a temporary table and one UPDATE ... FROM."""
    names = [c for c in columns if c != key]
    n = len(columns[key]) if key in columns else 0
    if n == 0 or not names:
        return
    table: Table = model.__table__
    conn = session.connection()
    if conn.dialect.name == "postgresql" and n >= COPY_FROM:
        temp = pg_copy_temp(session, model, columns)
        sets = ", ".join(f'"{c}" = t."{c}"' for c in names)
        conn.exec_driver_sql(
            f'UPDATE "{table.name}" AS m SET {sets} FROM "{temp}" AS t '  # noqa: S608
            f'WHERE m."{key}" = t."{key}"'
        )
        pg_drop_temp(session, temp)
        return
    # The key last: the driver's parameters in the statement's order.
    ordered = {c: columns[c] for c in names}
    ordered[key] = columns[key]
    _, rows, ph = _converted(session, model, ordered)
    sets = ", ".join(f'"{c}" = {ph}' for c in names)
    conn.exec_driver_sql(
        f'UPDATE "{table.name}" SET {sets} WHERE "{key}" = {ph}',  # noqa: S608
        rows,
    )


def placeholder(session: Session) -> str:
    return "%s" if session.connection().dialect.name == "postgresql" else "?"


def driver_rows(
    session: Session, model: type[Any], columns: Mapping[str, Sequence[Any]]
) -> list[tuple[Any, ...]]:
    """Rows converted the way the driver expects them, for raw executemany statements."""
    return _converted(session, model, columns)[1]


def insert_returning(
    session: Session,
    model: type[Any],
    columns: Mapping[str, Sequence[Any]],
    keys: Sequence[str],
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """Multi-row INSERT ... ON CONFLICT (keys) DO NOTHING RETURNING: which rows were new.

    Returns, for each row actually inserted, the original (unconverted) values of the
    `returning` columns. A few large statements instead of one per row.
    """
    if session.connection().dialect.name == "postgresql":
        if not columns or not len(next(iter(columns.values()))):
            return []
        result = _pg_unnest_insert(
            session,
            model,
            columns,
            f"ON CONFLICT ({', '.join(keys)}) DO NOTHING "
            f"RETURNING {', '.join(chr(34) + r + chr(34) for r in returning)}",
        )
        return [tuple(row) for row in result]
    names, rows, ph = _converted(session, model, columns)
    if not rows:
        return []
    table: Table = model.__table__
    # Driver value -> original value, per returned column that conversion changed.
    back: list[dict[Any, Any] | None] = []
    for r in returning:
        p = names.index(r)
        driver = [row[p] for row in rows]
        same = all(map(operator.is_, driver, columns[r]))
        back.append(None if same else dict(zip(driver, columns[r], strict=True)))
    quoted = ", ".join(f'"{c}"' for c in names)
    one = "(" + ", ".join(ph for _ in names) + ")"
    per_statement = max(1, 30000 // len(names))
    found: list[tuple[Any, ...]] = []
    conn = session.connection()
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = (
            f'INSERT INTO "{table.name}" ({quoted}) VALUES {", ".join(one for _ in chunk)} '  # noqa: S608
            f"ON CONFLICT ({', '.join(keys)}) DO NOTHING "
            f"RETURNING {', '.join(chr(34) + r + chr(34) for r in returning)}"
        )
        params = tuple(chain.from_iterable(chunk))
        out = conn.exec_driver_sql(sql, params).fetchall()
        if out:
            # Column by column: one C-level pass each instead of Python work per row.
            cols = [
                list(values) if b is None else list(map(b.__getitem__, values))
                for values, b in zip(zip(*out, strict=True), back, strict=True)
            ]
            found.extend(zip(*cols, strict=True))
    return found


def _pg_unnest_insert(
    session: Session, model: type[Any], columns: Mapping[str, Sequence[Any]], tail: str
) -> Any:
    """PostgreSQL: one short, cacheable statement whatever the row count: the rows travel as
    one array per column (`INSERT ... SELECT * FROM unnest(...)`)."""
    table: Table = model.__table__
    conn = session.connection()
    dialect = conn.dialect
    names = list(columns)
    params: list[Any] = []
    casts: list[str] = []
    for name in names:
        column_type = table.c[name].type
        values = list(columns[name])
        if isinstance(column_type, JSON):
            values = [None if v is None else Jsonb(v) for v in values]
            sql_type = "JSONB"
        else:
            sql_type = column_type.compile(dialect=dialect)
        params.append(values)
        casts.append(f"%s::{sql_type}[]")
    quoted = ", ".join(f'"{c}"' for c in names)
    sql = (
        f'INSERT INTO "{table.name}" ({quoted}) SELECT * FROM unnest({", ".join(casts)}) '  # noqa: S608
        + tail
    )
    return conn.exec_driver_sql(sql, tuple(params))
