"""Publishing domain events to the outbox and managing dead deliveries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from tenure.hub import live
from tenure.hub import repository as repo
from tenure.hub.events import DomainEvent, dump_event
from tenure.hub.live import LiveEvent
from tenure.hub.models import DeliveryStatus, HubDelivery, Outbox
from tenure.kit.errors import Conflict, NotFound


@dataclass(frozen=True)
class DeadLetter:
    """A delivery that failed every attempt: kept visible until replayed."""

    outbox_id: int
    subscriber: str
    event_type: str
    version: int
    account_id: uuid.UUID | None
    attempts: int
    last_error: str | None
    occurred_at: datetime
    updated_at: datetime


def publish(
    session: Session,
    event: DomainEvent,
    *,
    account_id: uuid.UUID | None,
    now: datetime,
    occurred_at: datetime | None = None,
) -> int:
    """Write the event to the outbox in the caller's transaction; returns its id.

    Delivered only if that transaction commits. Events of one account reach each
    subscriber in the order they were published.
    """
    payload = dump_event(event)
    occurred = occurred_at or now
    outbox_id = repo.add_outbox(
        session,
        Outbox(
            event_type=event.TYPE,
            version=event.VERSION,
            account_id=account_id,
            payload=payload,
            occurred_at=occurred,
            created_at=now,
        ),
    )
    live.remember(
        session, LiveEvent(outbox_id, event.TYPE, event.VERSION, account_id, occurred, payload)
    )
    return outbox_id


def publish_many(
    session: Session, events: list[tuple[DomainEvent, uuid.UUID | None]], *, now: datetime
) -> None:
    """Publish several events at once (one insert): bulk paths, e.g. a batch of accounts."""
    if not events:
        return
    rows: list[dict[str, Any]] = [
        {
            "event_type": event.TYPE,
            "version": event.VERSION,
            "account_id": account_id,
            "payload": dump_event(event),
            "occurred_at": now,
            "created_at": now,
        }
        for event, account_id in events
    ]
    ids = repo.insert_outbox_rows(session, rows)
    for row_id, row in zip(ids, rows, strict=True):
        live.remember(
            session,
            LiveEvent(
                row_id, row["event_type"], row["version"], row["account_id"], now, row["payload"]
            ),
        )


def live_backlog(
    session: Session,
    *,
    after: int,
    types: frozenset[str] | None,
    account_id: uuid.UUID | None,
    limit: int = 1000,
) -> list[LiveEvent]:
    """Events published after outbox id `after` (a reconnecting live client's catch-up)."""
    return [
        LiveEvent(r.id, r.event_type, r.version, r.account_id, r.occurred_at, r.payload)
        for r in repo.outbox_after(
            session, after=after, types=types, account_id=account_id, limit=limit
        )
    ]


def list_dead(
    session: Session, *, subscriber: str | None = None, limit: int = 100
) -> list[DeadLetter]:
    """Dead deliveries, oldest event first."""
    return [
        DeadLetter(
            outbox_id=delivery.outbox_id,
            subscriber=delivery.subscriber,
            event_type=outbox.event_type,
            version=outbox.version,
            account_id=outbox.account_id,
            attempts=delivery.attempts,
            last_error=delivery.last_error,
            occurred_at=outbox.occurred_at,
            updated_at=delivery.updated_at,
        )
        for delivery, outbox in repo.dead_deliveries(session, subscriber=subscriber, limit=limit)
    ]


def replay(session: Session, outbox_id: int, subscriber: str, *, now: datetime) -> None:
    """Send a dead delivery again from the first attempt (at the next dispatch)."""
    delivery = repo.lock_delivery(session, outbox_id, subscriber)
    if delivery is None:
        raise NotFound(f"no delivery of outbox row {outbox_id} to {subscriber!r}")
    if delivery.status != DeliveryStatus.dead.value:
        raise Conflict(
            f"delivery of outbox row {outbox_id} to {subscriber!r} is {delivery.status}, not dead"
        )
    delivery.status = DeliveryStatus.pending.value
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.updated_at = now
    session.flush()


def deliveries(session: Session, outbox_id: int) -> list[HubDelivery]:
    """Delivery state of one outbox row, per subscriber."""
    return repo.deliveries_of(session, outbox_id)


def payload_field(session: Session, outbox_ids: set[int], field: str) -> dict[int, Any]:
    """One top-level payload field of several outbox rows."""
    return {row_id: payload.get(field) for row_id, payload in repo.payloads(session, outbox_ids)}


def prune(session: Session, *, before: datetime, keep: Select[Any] | None = None) -> int:
    """Delete fanned-out outbox rows created before `before` with no pending or dead
    delivery (dead letters stay until replayed), except the ids `keep` selects (e.g. those
    webhook deliveries still wait for). Finished webhook deliveries go with them."""
    return repo.prune(session, before=before, keep=keep)
