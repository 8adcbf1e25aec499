"""Delivers outbox rows to in-process subscribers: at least once, in order per account.

Each `dispatch_once` first fans new outbox rows out into one delivery row per subscriber of
their type, then runs every subscriber's due deliveries, each in its own transaction that
also marks the delivery done. A failing delivery is retried with exponential backoff and
full jitter; while it waits, later rows of the same account wait behind it for that
subscriber only. After `max_attempts` it is dead: visible, replayable, no longer blocking.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tenure.db import write_lock
from tenure.hub import repository as repo
from tenure.hub.events import EVENT_TYPES, DomainEvent, parse_event
from tenure.hub.models import DeliveryStatus, Outbox
from tenure.logging import get_logger

log = get_logger("tenure.hub")

Handler = Callable[[Session, DomainEvent, int], None]
"""handler(session, event, outbox_id): runs in the delivery's transaction; must not commit."""

FanOutHook = Callable[[Session, list[tuple[int, str, uuid.UUID | None]], datetime], None]
"""hook(session, [(outbox_id, event_type, account_id)], now): runs in the fan-out transaction
for every new outbox row (e.g. to create webhook deliveries); must not commit."""

MAX_ERROR = 1000


@dataclass(frozen=True)
class Subscription:
    name: str
    event_types: frozenset[str]
    handler: Handler


@dataclass
class DispatchStats:
    fanned_out: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0


class _Outcome(Enum):
    done = "done"
    skipped = "skipped"
    retry = "retry"
    dead = "dead"


class Dispatcher:
    """The in-process subscribers and the loop that feeds them."""

    def __init__(
        self,
        *,
        max_attempts: int = 8,
        base_delay: timedelta = timedelta(seconds=10),
        max_delay: timedelta = timedelta(hours=1),
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        # Jitter only spreads retries out: no need for a cryptographic source.
        self._rng = rng or random.Random()  # noqa: S311
        self._subscriptions: dict[str, Subscription] = {}
        self._fan_out_hooks: list[FanOutHook] = []

    def on_fan_out(self, hook: FanOutHook) -> None:
        """Run `hook` on each batch of new outbox rows, in the transaction that claims them."""
        self._fan_out_hooks.append(hook)

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subscriptions.values())

    def subscribe(
        self,
        name: str,
        event_types: Iterable[type[DomainEvent] | str],
        handler: Handler,
    ) -> None:
        """Deliver events of these types to `handler` under the durable name `name`."""
        if not name or len(name) > 128:
            raise ValueError("a subscriber name has 1 to 128 characters")
        if name in self._subscriptions:
            raise ValueError(f"subscriber {name!r} is already registered")
        types = frozenset(t if isinstance(t, str) else t.TYPE for t in event_types)
        unknown = sorted(types - EVENT_TYPES.keys())
        if unknown:
            raise ValueError(f"unknown event types: {', '.join(unknown)}")
        if not types:
            raise ValueError("a subscriber needs at least one event type")
        self._subscriptions[name] = Subscription(name, types, handler)

    def retry_delay(self, attempts: int) -> timedelta:
        """Full jitter: uniform in [0, min(max_delay, base_delay * 2^(attempts-1)))."""
        ceiling = min(
            self.max_delay.total_seconds(),
            self.base_delay.total_seconds() * 2 ** min(attempts - 1, 62),
        )
        return timedelta(seconds=self._rng.uniform(0, ceiling))

    def dispatch_once(
        self, sessions: sessionmaker[Session], *, now: datetime, limit: int = 500
    ) -> DispatchStats:
        """Fan out up to `limit` new outbox rows, then run up to `limit` due deliveries per
        subscriber. Safe to run concurrently in several workers."""
        stats = DispatchStats(fanned_out=self._fan_out(sessions, now=now, limit=limit))
        parsed: dict[int, DomainEvent | Exception] = {}
        for subscription in self._subscriptions.values():
            with sessions() as session:
                rows = repo.due_deliveries(session, subscription.name, now=now, limit=limit)
            failed_accounts: set[uuid.UUID] = set()
            for row in rows:
                if row.account_id is not None and row.account_id in failed_accounts:
                    continue
                outcome = self._deliver(sessions, subscription, row, parsed, now=now)
                if outcome is _Outcome.done:
                    stats.delivered += 1
                elif outcome is _Outcome.retry:
                    stats.retried += 1
                elif outcome is _Outcome.dead:
                    stats.dead += 1
                if outcome is _Outcome.retry and row.account_id is not None:
                    failed_accounts.add(row.account_id)
        return stats

    def _fan_out(self, sessions: sessionmaker[Session], *, now: datetime, limit: int) -> int:
        with sessions() as session, session.begin():
            write_lock(session)
            claimed = repo.claim_unfanned(session, limit=limit)
            deliveries: list[dict[str, Any]] = [
                {
                    "outbox_id": outbox_id,
                    "subscriber": subscription.name,
                    "account_id": account_id,
                    "status": DeliveryStatus.pending.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "updated_at": now,
                }
                for outbox_id, event_type, account_id in claimed
                for subscription in self._subscriptions.values()
                if event_type in subscription.event_types
            ]
            repo.insert_deliveries(session, deliveries)
            for hook in self._fan_out_hooks:
                hook(session, claimed, now)
            repo.mark_fanned_out(session, [outbox_id for outbox_id, _, _ in claimed], now=now)
        return len(claimed)

    def _deliver(
        self,
        sessions: sessionmaker[Session],
        subscription: Subscription,
        row: Outbox,
        parsed: dict[int, DomainEvent | Exception],
        *,
        now: datetime,
    ) -> _Outcome:
        try:
            with sessions() as session, session.begin():
                write_lock(session)
                if repo.lock_due_delivery(session, row.id, subscription.name, now=now) is None:
                    return _Outcome.skipped
                event = self._event(row, parsed)
                subscription.handler(session, event, row.id)
                repo.mark_done(session, row.id, subscription.name, now=now)
            return _Outcome.done
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
        return self._record_failure(sessions, subscription.name, row.id, error, now=now)

    @staticmethod
    def _event(row: Outbox, parsed: dict[int, DomainEvent | Exception]) -> DomainEvent:
        if row.id not in parsed:
            try:
                parsed[row.id] = parse_event(row.event_type, row.version, row.payload)
            except Exception as exc:
                parsed[row.id] = exc
        event = parsed[row.id]
        if isinstance(event, Exception):
            raise event
        return event

    def _record_failure(
        self,
        sessions: sessionmaker[Session],
        subscriber: str,
        outbox_id: int,
        error: str,
        *,
        now: datetime,
    ) -> _Outcome:
        with sessions() as session, session.begin():
            write_lock(session)
            delivery = repo.lock_delivery(session, outbox_id, subscriber)
            if delivery is None or delivery.status != DeliveryStatus.pending.value:
                return _Outcome.skipped
            attempts = delivery.attempts + 1
            delivery.attempts = attempts
            delivery.last_error = error
            delivery.updated_at = now
            if attempts >= self.max_attempts:
                delivery.status = DeliveryStatus.dead.value
                outcome = _Outcome.dead
            else:
                delivery.next_attempt_at = now + self.retry_delay(attempts)
                outcome = _Outcome.retry
        log.warning(
            "hub.delivery_failed",
            subscriber=subscriber,
            outbox_id=outbox_id,
            attempts=attempts,
            dead=outcome is _Outcome.dead,
            error=error,
        )
        return outcome
