"""Publishing domain events to the outbox and managing dead deliveries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tenure.hub import repository as repo
from tenure.hub.events import DomainEvent, dump_event
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
    return repo.add_outbox(
        session,
        Outbox(
            event_type=event.TYPE,
            version=event.VERSION,
            account_id=account_id,
            payload=dump_event(event),
            occurred_at=occurred_at or now,
            created_at=now,
        ),
    )


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
