"""The live feed: committed domain events pushed to SSE clients as they happen.

`publish()` remembers each outbox row on its session; when that session commits, the rows
go to the session factory's feed (`LiveFeed.attach`). A feed fans events out to the SSE
streams of this process. With Redis, `RedisLiveFeed` publishes on a channel instead and
every API process listens to it, so an event published by a worker process reaches the
clients of every API process. Delivery is best effort: a client that falls behind, or
reconnects, catches up from the outbox with `Last-Event-ID`.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from tenure.logging import get_logger

log = get_logger("tenure.live")

FEED_KEY = "tenure.live.feed"
PENDING_KEY = "tenure.live.pending"
SAVEPOINTS_KEY = "tenure.live.savepoints"
CHANNEL = "tenure:live"


@dataclass(frozen=True)
class LiveEvent:
    id: int
    type: str
    version: int
    account_id: uuid.UUID | None
    occurred_at: datetime
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "version": self.version,
            "account_id": str(self.account_id) if self.account_id else None,
            "occurred_at": self.occurred_at.isoformat(),
            "data": self.data,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> LiveEvent:
        return cls(
            id=int(value["id"]),
            type=str(value["type"]),
            version=int(value["version"]),
            account_id=uuid.UUID(value["account_id"]) if value.get("account_id") else None,
            occurred_at=datetime.fromisoformat(value["occurred_at"]),
            data=value["data"],
        )


@dataclass(eq=False)
class Listener:
    """One SSE stream's mailbox, fed from any thread."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[LiveEvent]
    types: frozenset[str] | None = None
    account_id: uuid.UUID | None = None
    # Set when the queue overflowed: the stream ends and the client resumes from the outbox.
    lagged: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, item: LiveEvent) -> bool:
        if self.types is not None and item.type not in self.types:
            return False
        return self.account_id is None or item.account_id == self.account_id

    def offer(self, item: LiveEvent) -> None:
        """Runs on the listener's loop."""
        if self.lagged.is_set():
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.lagged.set()


class LiveFeed:
    """In-process fan-out (single machine)."""

    def __init__(self, queue_size: int = 2000) -> None:
        self.queue_size = queue_size
        self._listeners: set[Listener] = set()
        self._lock = threading.Lock()

    def attach(self, sessions: sessionmaker[Session]) -> None:
        """Events committed by sessions of this factory go to this feed."""
        sessions.kw.setdefault("info", {})[FEED_KEY] = self

    def listen(
        self, *, types: Collection[str] | None = None, account_id: uuid.UUID | None = None
    ) -> Listener:
        listener = Listener(
            loop=asyncio.get_running_loop(),
            queue=asyncio.Queue(self.queue_size),
            types=frozenset(types) if types else None,
            account_id=account_id,
        )
        with self._lock:
            self._listeners.add(listener)
        return listener

    def forget(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.discard(listener)

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    def fan_out(self, items: list[LiveEvent]) -> None:
        """Hand events to this process's listeners (thread-safe)."""
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            wanted = [item for item in items if listener.wants(item)]
            for item in wanted:
                try:
                    listener.loop.call_soon_threadsafe(listener.offer, item)
                except RuntimeError:  # its loop is closed: the stream is gone
                    self.forget(listener)
                    break

    def publish(self, items: list[LiveEvent]) -> None:
        """Announce committed events (called after commit)."""
        self.fan_out(items)

    def start(self) -> None:
        """Nothing to start in process."""

    def stop(self) -> None:
        """Nothing to stop in process."""


class RedisLiveFeed(LiveFeed):
    """Fan-out across processes through Redis pub/sub."""

    def __init__(self, redis_url: str, *, queue_size: int = 2000, channel: str = CHANNEL) -> None:
        import redis

        super().__init__(queue_size)
        self.channel = channel
        self._redis = redis.Redis.from_url(redis_url)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._subscribed = threading.Event()

    def publish(self, items: list[LiveEvent]) -> None:
        try:
            self._redis.publish(self.channel, orjson.dumps([i.to_json() for i in items]))
        except Exception as exc:  # the events are committed: a live push is best effort
            log.warning("live.redis_publish_failed", error=str(exc), events=len(items))

    def start(self) -> None:
        """Listen to the channel in a thread (API processes; workers only publish)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tenure-live-redis", daemon=True)
        self._thread.start()
        self._subscribed.wait(5)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call,unused-ignore]
                pubsub.subscribe(self.channel)
                self._subscribed.set()
                try:
                    while not self._stop.is_set():
                        message = pubsub.get_message(timeout=0.5)
                        if message and message.get("type") == "message":
                            raw = orjson.loads(message["data"])
                            self.fan_out([LiveEvent.from_json(v) for v in raw])
                finally:
                    pubsub.close()
            except Exception as exc:
                log.warning("live.redis_listen_failed", error=str(exc))
                self._stop.wait(1)


_default = LiveFeed()


def default_feed() -> LiveFeed:
    """The feed of sessions whose factory has none attached (CLI, scripts)."""
    return _default


def remember(session: Session, item: LiveEvent) -> None:
    """Announce `item` when (and only if) the session's transaction commits."""
    session.info.setdefault(PENDING_KEY, []).append(item)


@event.listens_for(Session, "after_transaction_create")
def _after_transaction_create(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        # What a savepoint's rollback must drop: the events remembered after this point.
        marks = session.info.setdefault(SAVEPOINTS_KEY, {})
        marks[transaction] = len(session.info.get(PENDING_KEY, ()))


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        session.info.get(SAVEPOINTS_KEY, {}).pop(transaction, None)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released: the outer transaction may still roll back
    items: list[LiveEvent] | None = session.info.pop(PENDING_KEY, None)
    if items:
        feed: LiveFeed = session.info.get(FEED_KEY) or _default
        feed.publish(items)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    savepoint = session.get_nested_transaction()
    mark = session.info.get(SAVEPOINTS_KEY, {}).pop(savepoint, None)
    if mark is None:
        session.info.pop(PENDING_KEY, None)  # the whole transaction
    else:
        # Only the savepoint: events remembered before it still commit with the transaction.
        del session.info.get(PENDING_KEY, [])[mark:]
