"""Every query of the hub."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    delete,
    exists,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from tenure.hub.models import DeliveryStatus, HubDelivery, Outbox
from tenure.kit import bulk

# Literal rather than bound: both engines match a partial index's WHERE only against
# literal terms of the query.
_PENDING: ColumnElement[Any] = literal_column("'pending'")
_DEAD: ColumnElement[Any] = literal_column("'dead'")


def add_outbox(session: Session, row: Outbox) -> int:
    session.add(row)
    session.flush()
    return row.id


def insert_outbox_rows(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert outbox rows given as dicts (Core: no ORM object per row); their ids, in the
    order of `rows` (the order of publication)."""
    session.flush()  # rows published earlier in the transaction keep the lower ids
    table: Table = Outbox.__table__  # type: ignore[assignment]
    conn = session.connection()
    if conn.dialect.name == "postgresql" and len(rows) >= bulk.COPY_FROM:
        # Many rows: ids drawn from the sequence in one query, rows COPied with them.
        ids = [
            int(row_id)
            for (row_id,) in conn.exec_driver_sql(
                "SELECT nextval(pg_get_serial_sequence('outbox', 'id')) "
                "FROM generate_series(1, %(n)s) ORDER BY 1",
                {"n": len(rows)},
            )
        ]
        columns: dict[str, list[Any]] = {"id": ids}
        for name in rows[0]:
            columns[name] = [r[name] for r in rows]
        bulk.bulk_insert(session, Outbox, columns)
        return ids
    if conn.dialect.name == "sqlite" and rows and all(r.keys() == rows[0].keys() for r in rows):
        # One multi-row INSERT, ids from the last rowid (one INSERT per row otherwise).
        return bulk.sqlite_insert_ids(
            session, Outbox, {name: [r[name] for r in rows] for name in rows[0]}
        )
    result = session.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), list(rows)
    )
    return [row_id for (row_id,) in result]


def outbox_after(
    session: Session,
    *,
    after: int,
    types: frozenset[str] | None,
    account_id: uuid.UUID | None,
    limit: int,
) -> list[Outbox]:
    query = select(Outbox).where(Outbox.id > after).order_by(Outbox.id).limit(limit)
    if types:
        query = query.where(Outbox.event_type.in_(types))
    if account_id is not None:
        query = query.where(Outbox.account_id == account_id)
    return list(session.scalars(query))


def payloads(session: Session, ids: set[int]) -> list[tuple[int, dict[str, Any]]]:
    return [
        (row_id, payload)
        for row_id, payload in session.execute(
            select(Outbox.id, Outbox.payload).where(Outbox.id.in_(ids))
        )
    ]


def claim_unfanned(session: Session, *, limit: int) -> list[tuple[int, str, uuid.UUID | None]]:
    """(id, event_type, account_id) of outbox rows not fanned out yet, oldest first, locked."""
    query = (
        select(Outbox.id, Outbox.event_type, Outbox.account_id)
        .where(Outbox.fanned_out_at.is_(None))
        .order_by(Outbox.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [
        (row_id, event_type, account_id)
        for row_id, event_type, account_id in session.execute(query)
    ]


def insert_deliveries(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(HubDelivery), list(rows))


def mark_fanned_out(session: Session, ids: Sequence[int], *, now: datetime) -> None:
    if ids:
        session.execute(
            update(Outbox)
            .where(Outbox.id.in_(ids))
            .values(fanned_out_at=now)
            .execution_options(synchronize_session=False)
        )


def _earlier_pending(*, now: datetime | None = None) -> ColumnElement[bool]:
    """An earlier pending delivery of the same account to the same subscriber exists
    (only those waiting for a retry when `now` is given)."""
    blocker = aliased(HubDelivery)
    conditions: list[ColumnElement[bool]] = [
        blocker.subscriber == HubDelivery.subscriber,
        blocker.status == _PENDING,
        blocker.account_id == HubDelivery.account_id,
        blocker.outbox_id < HubDelivery.outbox_id,
    ]
    if now is not None:
        conditions.append(blocker.next_attempt_at > now)
    return exists().where(*conditions)


def due_deliveries(session: Session, subscriber: str, *, now: datetime, limit: int) -> list[Outbox]:
    """Outbox rows due for the subscriber, in order, skipping accounts whose earlier row
    waits for a retry. Rows without an account are not ordered against each other."""
    query = (
        select(Outbox)
        .join(HubDelivery, HubDelivery.outbox_id == Outbox.id)
        .where(
            HubDelivery.subscriber == subscriber,
            HubDelivery.status == _PENDING,
            HubDelivery.next_attempt_at <= now,
            ~_earlier_pending(now=now),
        )
        .order_by(HubDelivery.outbox_id)
        .limit(limit)
    )
    return list(session.scalars(query))


def lock_due_delivery(
    session: Session, outbox_id: int, subscriber: str, *, now: datetime
) -> HubDelivery | None:
    """The delivery, locked, if it is still pending, due and first in line for its account;
    None when another dispatcher holds it, has done it, or an earlier row must go first."""
    return session.scalar(
        select(HubDelivery)
        .where(
            HubDelivery.outbox_id == outbox_id,
            HubDelivery.subscriber == subscriber,
            HubDelivery.status == _PENDING,
            HubDelivery.next_attempt_at <= now,
            ~_earlier_pending(),
        )
        .with_for_update(skip_locked=True)
    )


def lock_delivery(session: Session, outbox_id: int, subscriber: str) -> HubDelivery | None:
    return session.scalar(
        select(HubDelivery)
        .where(HubDelivery.outbox_id == outbox_id, HubDelivery.subscriber == subscriber)
        .with_for_update()
    )


def mark_done(session: Session, outbox_id: int, subscriber: str, *, now: datetime) -> None:
    session.execute(
        update(HubDelivery)
        .where(HubDelivery.outbox_id == outbox_id, HubDelivery.subscriber == subscriber)
        .values(
            status=DeliveryStatus.done.value,
            attempts=HubDelivery.attempts + 1,
            last_error=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def dead_deliveries(
    session: Session, *, subscriber: str | None, limit: int
) -> list[tuple[HubDelivery, Outbox]]:
    query = (
        select(HubDelivery, Outbox)
        .join(Outbox, Outbox.id == HubDelivery.outbox_id)
        .where(HubDelivery.status == _DEAD)
        .order_by(HubDelivery.outbox_id, HubDelivery.subscriber)
        .limit(limit)
    )
    if subscriber is not None:
        query = query.where(HubDelivery.subscriber == subscriber)
    return [(delivery, outbox) for delivery, outbox in session.execute(query)]


def deliveries_of(session: Session, outbox_id: int) -> list[HubDelivery]:
    return list(
        session.scalars(
            select(HubDelivery)
            .where(HubDelivery.outbox_id == outbox_id)
            .order_by(HubDelivery.subscriber)
        )
    )


def prune(session: Session, *, before: datetime, keep: Select[Any] | None = None) -> int:
    unfinished = exists().where(
        HubDelivery.outbox_id == Outbox.id, HubDelivery.status != DeliveryStatus.done.value
    )
    conditions = [Outbox.created_at < before, Outbox.fanned_out_at.is_not(None), ~unfinished]
    if keep is not None:
        conditions.append(Outbox.id.not_in(keep))
    result = session.execute(
        delete(Outbox).where(*conditions).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
