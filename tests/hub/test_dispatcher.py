from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.clock import FixedClock
from tenure.db import make_session_factory
from tenure.hub import service as hub
from tenure.hub.dispatcher import Dispatcher
from tenure.hub.events import AlertFired, DomainEvent, EventIngested, HealthChanged
from tenure.hub.models import DeliveryStatus, HubDelivery, Outbox
from tenure.kit.errors import Conflict, NotFound

Received = list[tuple[int, DomainEvent]]


class Ceiling(random.Random):
    """Jitter that always picks the top of the range: delays are exactly the backoff cap."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


def ingested(account_id: uuid.UUID, clock: FixedClock, events: int = 1) -> EventIngested:
    return EventIngested(
        account_id=account_id, events=events, first_at=clock.now(), last_at=clock.now()
    )


def publish(
    sessions: sessionmaker[Session],
    clock: FixedClock,
    *events: tuple[uuid.UUID | None, DomainEvent],
) -> list[int]:
    with sessions() as session, session.begin():
        return [hub.publish(session, e, account_id=a, now=clock.now()) for a, e in events]


def recorder(
    received: Received, fail: Callable[[int, DomainEvent], bool] = lambda _i, _e: False
) -> Callable[[Session, DomainEvent, int], None]:
    def handle(session: Session, event: DomainEvent, outbox_id: int) -> None:
        if fail(outbox_id, event):
            raise RuntimeError(f"cannot handle {outbox_id}")
        received.append((outbox_id, event))

    return handle


def status(sessions: sessionmaker[Session], outbox_id: int, subscriber: str) -> HubDelivery:
    with sessions() as session:
        delivery = session.get(HubDelivery, (outbox_id, subscriber))
        assert delivery is not None
        return delivery


def dead_letters(
    sessions: sessionmaker[Session], subscriber: str | None = None
) -> list[hub.DeadLetter]:
    with sessions() as session:
        return hub.list_dead(session, subscriber=subscriber)


class TestPublish:
    def test_rolled_back_publish_leaves_nothing_to_deliver(
        self, sessions: sessionmaker[Session], clock: FixedClock
    ) -> None:
        received: Received = []
        dispatcher = Dispatcher()
        dispatcher.subscribe("feed", [EventIngested], recorder(received))
        with sessions() as session, session.begin():
            outbox_id = hub.publish(
                session, ingested(uuid.uuid4(), clock), account_id=None, now=clock.now()
            )
            assert outbox_id > 0
            session.rollback()

        stats = dispatcher.dispatch_once(sessions, now=clock.now())

        assert (stats.fanned_out, stats.delivered) == (0, 0)
        assert received == []
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(Outbox)) == 0

    def test_the_stored_row_is_the_typed_event(
        self, sessions: sessionmaker[Session], clock: FixedClock
    ) -> None:
        account = uuid.uuid4()
        event = ingested(account, clock, events=7)
        first, second = publish(sessions, clock, (account, event), (account, event))
        assert second > first
        with sessions() as session:
            row = session.get(Outbox, first)
            assert row is not None
            assert (row.event_type, row.version, row.account_id) == ("event.ingested", 1, account)
            assert row.payload["events"] == 7
            assert row.created_at == clock.now()
            assert row.fanned_out_at is None


class TestDelivery:
    def test_each_subscriber_gets_each_committed_event_exactly_once(
        self, sessions: sessionmaker[Session], clock: FixedClock
    ) -> None:
        feed: Received = []
        alerts: Received = []
        dispatcher = Dispatcher()
        dispatcher.subscribe("feed", [EventIngested, HealthChanged], recorder(feed))
        dispatcher.subscribe("alerting", ["alert.fired"], recorder(alerts))
        a, b = uuid.uuid4(), uuid.uuid4()
        alert = AlertFired(alert_id=uuid.uuid4(), rule="lag", severity="warning", message="lag")
        events = [ingested(a, clock), ingested(b, clock)]
        ids = publish(sessions, clock, (a, events[0]), (b, events[1]))
        alert_id = publish(sessions, clock, (None, alert))[0]

        first = dispatcher.dispatch_once(sessions, now=clock.now())
        for _ in range(3):
            clock.advance(timedelta(minutes=5))
            again = dispatcher.dispatch_once(sessions, now=clock.now())
            assert (again.fanned_out, again.delivered) == (0, 0)

        assert (first.fanned_out, first.delivered) == (3, 3)
        assert [i for i, _ in feed] == ids
        assert [e for _, e in feed] == events
        assert alerts == [(alert_id, alert)]
        assert status(sessions, ids[0], "feed").status == DeliveryStatus.done
        assert status(sessions, alert_id, "alerting").attempts == 1
        with sessions() as session:
            # No delivery rows for subscribers that do not listen to the type.
            assert session.get(HubDelivery, (alert_id, "feed")) is None

    def test_events_of_one_account_arrive_in_order_and_a_failure_holds_only_that_account(
        self, sessions: sessionmaker[Session], clock: FixedClock
    ) -> None:
        received: Received = []
        broken: set[int] = set()
        dispatcher = Dispatcher(rng=Ceiling())
        dispatcher.subscribe("feed", [EventIngested], recorder(received, lambda i, _: i in broken))
        a, b = uuid.uuid4(), uuid.uuid4()
        a1, b1, a2, b2, a3 = publish(
            sessions,
            clock,
            (a, ingested(a, clock, 1)),
            (b, ingested(b, clock, 1)),
            (a, ingested(a, clock, 2)),
            (b, ingested(b, clock, 2)),
            (a, ingested(a, clock, 3)),
        )
        broken.add(a1)

        stats = dispatcher.dispatch_once(sessions, now=clock.now())
        assert (stats.delivered, stats.retried) == (2, 1)
        assert [i for i, _ in received] == [b1, b2]

        # Newer events of the held account wait too, even when published later.
        (a4,) = publish(sessions, clock, (a, ingested(a, clock, 4)))
        clock.advance(timedelta(seconds=5))
        stats = dispatcher.dispatch_once(sessions, now=clock.now())
        assert (stats.fanned_out, stats.delivered, stats.retried) == (1, 0, 0)

        broken.clear()
        clock.advance(timedelta(seconds=5))
        dispatcher.dispatch_once(sessions, now=clock.now())
        assert [i for i, _ in received] == [b1, b2, a1, a2, a3, a4]

    def test_a_handler_commits_its_writes_with_the_delivery_or_not_at_all(
        self, sessions: sessionmaker[Session], clock: FixedClock
    ) -> None:
        attempts: list[int] = []

        def escalate(session: Session, event: DomainEvent, outbox_id: int) -> None:
            assert isinstance(event, EventIngested)
            alert = AlertFired(
                alert_id=uuid.uuid5(uuid.NAMESPACE_URL, str(outbox_id)),
                rule="burst",
                severity="info",
                message=f"{event.events} events",
            )
            hub.publish(session, alert, account_id=event.account_id, now=clock.now())
            attempts.append(outbox_id)
            if len(attempts) == 1:
                raise RuntimeError("crash after writing")

        dispatcher = Dispatcher(rng=Ceiling())
        dispatcher.subscribe("escalate", [EventIngested], escalate)
        a = uuid.uuid4()
        (outbox_id,) = publish(sessions, clock, (a, ingested(a, clock, 500)))

        dispatcher.dispatch_once(sessions, now=clock.now())
        with sessions() as session:
            assert session.scalars(select(Outbox.event_type)).all() == ["event.ingested"]
        delivery = status(sessions, outbox_id, "escalate")
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        assert delivery.last_error == "RuntimeError: crash after writing"

        clock.advance(timedelta(minutes=1))
        dispatcher.dispatch_once(sessions, now=clock.now())
        with sessions() as session:
            assert session.scalars(select(Outbox.event_type).order_by(Outbox.id)).all() == [
                "event.ingested",
                "alert.fired",
            ]
        delivery = status(sessions, outbox_id, "escalate")
        assert (delivery.status, delivery.attempts, delivery.last_error) == ("done", 2, None)


class TestRetries:
    def test_a_failing_subscriber_backs_off_while_another_goes_on(
        self, sessions: sessionmaker[Session], clock: FixedClock
    ) -> None:
        healthy: Received = []
        flaky: Received = []
        dispatcher = Dispatcher(rng=Ceiling(), base_delay=timedelta(seconds=10), max_attempts=20)
        dispatcher.subscribe("healthy", [EventIngested], recorder(healthy))
        dispatcher.subscribe("flaky", [EventIngested], recorder(flaky, lambda _i, _e: True))
        a = uuid.uuid4()
        (first,) = publish(sessions, clock, (a, ingested(a, clock)))

        delays: list[timedelta] = []
        for _ in range(11):
            stats = dispatcher.dispatch_once(sessions, now=clock.now())
            assert stats.retried == 1
            delivery = status(sessions, first, "flaky")
            delay = delivery.next_attempt_at - clock.now()
            delays.append(delay)
            # Nothing happens before the retry is due.
            clock.advance(delay - timedelta(seconds=1))
            assert dispatcher.dispatch_once(sessions, now=clock.now()).retried == 0
            (later,) = publish(sessions, clock, (a, ingested(a, clock)))
            clock.advance(timedelta(seconds=1))

        assert [d.total_seconds() for d in delays] == [
            10,
            20,
            40,
            80,
            160,
            320,
            640,
            1280,
            2560,
            3600,
            3600,
        ]
        dispatcher.dispatch_once(sessions, now=clock.now())
        assert status(sessions, first, "flaky").attempts == 12
        # The healthy subscriber got the first event and every later one; the flaky one
        # none: its later events of the account wait behind the first.
        assert flaky == []
        assert len(healthy) == 1 + 11 and healthy[-1][0] == later

    def test_jitter_is_seeded_bounded_and_capped(self) -> None:
        one = Dispatcher(rng=random.Random(7))
        two = Dispatcher(rng=random.Random(7))
        first = [one.retry_delay(n) for n in range(1, 40)]
        assert first == [two.retry_delay(n) for n in range(1, 40)]
        for n, delay in enumerate(first, start=1):
            assert (
                timedelta(0)
                <= delay
                <= min(timedelta(hours=1), timedelta(seconds=10 * 2 ** (n - 1)))
            )
        assert len(set(first)) > 30


class TestDeadLetters:
    def test_dead_after_max_attempts_stops_blocking_and_replay_delivers(
        self, sessions: sessionmaker[Session], clock: FixedClock
    ) -> None:
        received: Received = []
        broken = True
        dispatcher = Dispatcher(max_attempts=3, rng=Ceiling())
        dispatcher.subscribe(
            "feed", [EventIngested], recorder(received, lambda _i, e: broken and e.events == 1)
        )
        a = uuid.uuid4()
        poison, after = publish(
            sessions, clock, (a, ingested(a, clock, 1)), (a, ingested(a, clock, 2))
        )

        outcomes = []
        for _ in range(3):
            stats = dispatcher.dispatch_once(sessions, now=clock.now())
            outcomes.append((stats.retried, stats.dead, stats.delivered))
            clock.advance(timedelta(hours=2))
        # The third failure kills the delivery and frees the account's next row at once.
        assert outcomes == [(1, 0, 0), (1, 0, 0), (0, 1, 1)]
        assert [i for i, _ in received] == [after]

        (dead,) = dead_letters(sessions)
        assert (dead.outbox_id, dead.subscriber, dead.event_type, dead.account_id) == (
            poison,
            "feed",
            "event.ingested",
            a,
        )
        assert dead.attempts == 3
        assert dead.last_error == f"RuntimeError: cannot handle {poison}"
        assert dispatcher.dispatch_once(sessions, now=clock.now()).delivered == 0

        broken = False
        with sessions() as session, session.begin():
            hub.replay(session, poison, "feed", now=clock.now())
        with sessions() as session:
            assert hub.list_dead(session) == []
            assert status(sessions, poison, "feed").attempts == 0
        assert dispatcher.dispatch_once(sessions, now=clock.now()).delivered == 1
        assert [i for i, _ in received] == [after, poison]
        assert status(sessions, poison, "feed").status == "done"

    def test_only_dead_deliveries_can_be_replayed(
        self, sessions: sessionmaker[Session], clock: FixedClock
    ) -> None:
        dispatcher = Dispatcher()
        dispatcher.subscribe("feed", [EventIngested], recorder([]))
        a = uuid.uuid4()
        (outbox_id,) = publish(sessions, clock, (a, ingested(a, clock)))
        dispatcher.dispatch_once(sessions, now=clock.now())
        with sessions() as session:
            with pytest.raises(Conflict):
                hub.replay(session, outbox_id, "feed", now=clock.now())
            with pytest.raises(NotFound):
                hub.replay(session, outbox_id, "nobody", now=clock.now())

    def test_an_unreadable_row_fails_like_a_handler_and_ends_dead(
        self, sessions: sessionmaker[Session], clock: FixedClock
    ) -> None:
        received: Received = []
        dispatcher = Dispatcher(max_attempts=2, rng=Ceiling())
        dispatcher.subscribe("feed", [EventIngested], recorder(received))
        with sessions() as session, session.begin():
            row = Outbox(
                event_type="event.ingested",
                version=1,
                account_id=None,
                payload={"events": "many"},
                occurred_at=clock.now(),
                created_at=clock.now(),
            )
            session.add(row)
        for _ in range(2):
            dispatcher.dispatch_once(sessions, now=clock.now())
            clock.advance(timedelta(hours=1))
        (dead,) = dead_letters(sessions, subscriber="feed")
        assert dead.last_error is not None and dead.last_error.startswith("UnknownEvent")
        assert received == []


def test_subscriptions_are_checked() -> None:
    dispatcher = Dispatcher()
    dispatcher.subscribe("feed", [EventIngested], recorder([]))
    with pytest.raises(ValueError, match="already registered"):
        dispatcher.subscribe("feed", [HealthChanged], recorder([]))
    with pytest.raises(ValueError, match="unknown event types: nope"):
        dispatcher.subscribe("other", ["nope"], recorder([]))
    with pytest.raises(ValueError, match="at least one"):
        dispatcher.subscribe("other", [], recorder([]))


def test_a_row_committed_after_a_newer_one_is_still_delivered(
    sessions: sessionmaker[Session], clock: FixedClock, database_url: str
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time: ids always commit in order")
    received: Received = []
    dispatcher = Dispatcher()
    dispatcher.subscribe("feed", [EventIngested], recorder(received))
    a, b = uuid.uuid4(), uuid.uuid4()
    with sessions() as slow, slow.begin():
        early = hub.publish(slow, ingested(a, clock), account_id=a, now=clock.now())
        (late,) = publish(sessions, clock, (b, ingested(b, clock)))
        assert late > early
        dispatcher.dispatch_once(sessions, now=clock.now())
        assert [i for i, _ in received] == [late]
    dispatcher.dispatch_once(sessions, now=clock.now())
    assert [i for i, _ in received] == [late, early]
