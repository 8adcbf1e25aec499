"""Outbound webhooks end to end: outbox -> fan-out -> signed HTTP requests to a real receiver.

The receiver is a real HTTP server on 127.0.0.1; the sender uses its real httpx client.
Time only moves when a test moves the FixedClock (past a retry delay, past a lease).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.clock import FixedClock
from tenure.db import make_session_factory
from tenure.hub import service as hub_service
from tenure.hub.events import AlertFired, DomainEvent, EventIngested, HealthChanged
from tenure.hub.models import Outbox
from tenure.kit.actor import Actor
from tenure.webhooks import service as webhooks_service
from tenure.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tenure.webhooks.schemas import EndpointCreate, EndpointUpdate
from tenure.webhooks.sender import Result, WebhookSender
from tenure.worker.runtime import build_dispatcher
from tests.receivers import run_async

ACTOR = Actor.system("tests")
LEASE = timedelta(minutes=5)

# The receiver.

Reply = int | tuple[int, str]


@dataclass(frozen=True)
class Request:
    """One request as the receiver saw it (header names lower-cased)."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    @property
    def events(self) -> int:
        """The `events` count of an event.ingested payload: the tests' marker of an event."""
        count: int = self.json["data"]["events"]
        return count


class Receiver:
    """A real HTTP server on 127.0.0.1 that records every request and answers as told:
    from a script of replies (then 200), or from a function of the request."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.responder: Callable[[Request], Reply] | None = None
        self.delay = 0.0
        self._script: list[Reply] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = Request(
                    self.path,
                    {name.lower(): value for name, value in self.headers.items()},
                    self.rfile.read(length),
                )
                status, text = receiver._answer(request)
                payload = text.encode()
                self.send_response(status)
                self.send_header("content-type", "text/plain; charset=utf-8")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)

    def url(self, path: str = "/hook") -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order; 200 after them."""
        with self._lock:
            self._script.extend(replies)

    def at(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _answer(self, request: Request) -> tuple[int, str]:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            self.requests.append(request)
            if self.responder is not None:
                reply = self.responder(request)
            elif self._script:
                reply = self._script.pop(0)
            else:
                reply = 200
        if isinstance(reply, tuple):
            return reply
        return reply, "ok" if reply < 300 else f"status {reply}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


# Standard Webhooks, written from https://www.standardwebhooks.com/ (not tenure's signing).


def signatures(headers: Mapping[str, str]) -> list[str]:
    return headers["webhook-signature"].split(" ")


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """True when one of the v1 signatures is HMAC-SHA256 of `id.timestamp.body` under the
    base64-decoded key of the `whsec_` secret."""
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret[len("whsec_") :])
    signed = b".".join(
        [headers["webhook-id"].encode(), headers["webhook-timestamp"].encode(), body]
    )
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    for signature in signatures(headers):
        version, _, value = signature.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return True
    return False


# Driving the worker's webhook path by hand.


def send_round(sender: WebhookSender) -> int:
    """One sender round with its own real HTTP client; the number of attempts made."""

    async def run() -> int:
        async with sender.client() as client:
            return await sender.run_once(client)

    return run_async(run())


def ingested(account: uuid.UUID, n: int, at: datetime) -> tuple[uuid.UUID, DomainEvent]:
    """An account's event, marked by its `events` count n."""
    return account, EventIngested(account_id=account, events=n, first_at=at, last_at=at)


def alert(message: str) -> tuple[None, DomainEvent]:
    """An event about no account."""
    return None, AlertFired(
        alert_id=uuid.uuid4(), rule="tests.rule", severity="info", message=message
    )


class Harness:
    """The worker's webhook path, one step at a time: publish, fan out, send a round."""

    def __init__(self, engine: Engine, clock: FixedClock) -> None:
        self.engine = engine
        self.clock = clock
        self.sessions: sessionmaker[Session] = make_session_factory(engine)
        self.dispatcher = build_dispatcher()
        self.sender = self.new_sender()

    def new_sender(self, *, allow_private: bool = True, **options: Any) -> WebhookSender:
        """A sender with its own session factory, like another worker process."""
        options.setdefault("lease", LEASE)
        return WebhookSender(
            make_session_factory(self.engine),
            clock=self.clock,
            allow_private=allow_private,
            **options,
        )

    def round(self) -> int:
        return send_round(self.sender)

    def endpoint(self, url: str, *event_types: str) -> uuid.UUID:
        with self.sessions() as session, session.begin():
            endpoint = webhooks_service.create_endpoint(
                session,
                EndpointCreate(url=url, event_types=list(event_types)),
                actor=ACTOR,
                now=self.clock.now(),
                allow_private=True,
            )
            return endpoint.id

    def update(self, endpoint_id: uuid.UUID, **changes: Any) -> None:
        with self.sessions() as session, session.begin():
            webhooks_service.update_endpoint(
                session,
                endpoint_id,
                EndpointUpdate(**changes),
                actor=ACTOR,
                now=self.clock.now(),
                allow_private=True,
            )

    def publish(self, *events: tuple[uuid.UUID | None, DomainEvent]) -> list[int]:
        """Publish in one transaction, then fan out as the worker's dispatcher does."""
        with self.sessions() as session, session.begin():
            ids = [
                hub_service.publish(session, event, account_id=account, now=self.clock.now())
                for account, event in events
            ]
        self.fan_out()
        return ids

    def fan_out(self) -> None:
        self.dispatcher.dispatch_once(self.sessions, now=self.clock.now())

    def get_endpoint(self, endpoint_id: uuid.UUID) -> WebhookEndpoint:
        with self.sessions() as session:
            return webhooks_service.get_endpoint(session, endpoint_id)

    def deliveries(self, endpoint_id: uuid.UUID | None = None) -> list[WebhookDelivery]:
        """Deliveries in event order."""
        query = select(WebhookDelivery).order_by(WebhookDelivery.outbox_id)
        if endpoint_id is not None:
            query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
        with self.sessions() as session:
            return list(session.scalars(query))

    def delivery(self, delivery_id: uuid.UUID) -> WebhookDelivery:
        with self.sessions() as session:
            return webhooks_service.get_delivery(session, delivery_id)

    def attempts(self, delivery_id: uuid.UUID) -> list[WebhookAttempt]:
        """The delivery log, newest first."""
        with self.sessions() as session:
            return webhooks_service.delivery_log(session, delivery_id)

    def alerts(self) -> list[dict[str, Any]]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(Outbox.payload)
                    .where(Outbox.event_type == AlertFired.TYPE)
                    .order_by(Outbox.id)
                )
            )

    def until_retry(self, delivery_id: uuid.UUID) -> None:
        """Move the clock to when the delivery's next attempt is due."""
        due = self.delivery(delivery_id).next_attempt_at
        assert due > self.clock.now()
        self.clock.set(due)


@pytest.fixture
def hub(engine: Engine, clock: FixedClock) -> Harness:
    return Harness(engine, clock)


def wid(delivery: WebhookDelivery) -> str:
    return webhooks_service.webhook_id(delivery.id)


class TestRetries:
    def test_a_failing_delivery_is_retried_with_the_same_webhook_id_until_it_succeeds(
        self, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        hub.endpoint(receiver.url())
        hub.publish(ingested(uuid.uuid4(), 1, clock.now()))
        [delivery] = hub.deliveries()
        receiver.script(500, 500, 200)

        assert hub.round() == 1
        first_wait = hub.delivery(delivery.id).next_attempt_at - clock.now()
        # Not due yet: nothing is sent again before the retry delay.
        assert hub.round() == 0
        assert len(receiver.requests) == 1

        hub.until_retry(delivery.id)
        assert hub.round() == 1
        second_wait = hub.delivery(delivery.id).next_attempt_at - clock.now()
        assert second_wait > first_wait > timedelta(0)
        after_failures = hub.delivery(delivery.id)
        assert (after_failures.status, after_failures.attempts) == ("pending", 2)
        assert after_failures.last_status_code == 500

        hub.until_retry(delivery.id)
        assert hub.round() == 1

        assert [r.webhook_id for r in receiver.requests] == [wid(delivery)] * 3
        assert len({r.body for r in receiver.requests}) == 1
        done = hub.delivery(delivery.id)
        assert (done.status, done.attempts, done.last_status_code) == ("delivered", 3, 200)
        assert done.delivered_at == clock.now()
        assert [a.status_code for a in hub.attempts(delivery.id)] == [200, 500, 500]

        # Delivered means done: later rounds never send it again.
        clock.advance(timedelta(days=1))
        assert hub.round() == 0
        assert len(receiver.requests) == 3

    def test_a_delivery_that_never_succeeds_gives_up_after_about_three_days(
        self, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        hub.sender = hub.new_sender(disable_after=timedelta(days=30))
        hub.endpoint(receiver.url())
        hub.publish(ingested(uuid.uuid4(), 1, clock.now()))
        [delivery] = hub.deliveries()
        receiver.responder = lambda _request: 503
        started = clock.now()

        for _ in range(webhooks_service.MAX_ATTEMPTS):
            assert hub.round() == 1
            state = hub.delivery(delivery.id)
            if state.status != "pending":
                break
            clock.set(state.next_attempt_at)

        failed = hub.delivery(delivery.id)
        assert (failed.status, failed.attempts) == ("failed", webhooks_service.MAX_ATTEMPTS)
        assert len(receiver.requests) == webhooks_service.MAX_ATTEMPTS
        assert {r.webhook_id for r in receiver.requests} == {wid(delivery)}
        # A receiver that is down over a long weekend still gets the event.
        assert timedelta(days=2, hours=12) <= clock.now() - started <= timedelta(days=4)

        clock.advance(timedelta(days=7))
        assert hub.round() == 0
        assert len(receiver.requests) == webhooks_service.MAX_ATTEMPTS

    def test_an_unreachable_endpoint_is_retried_and_a_fixed_url_receives_the_same_message(
        self, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        # A port nobody listens on.
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            dead_url = f"http://127.0.0.1:{unused.getsockname()[1]}/hook"
        endpoint_id = hub.endpoint(dead_url)
        hub.publish(ingested(uuid.uuid4(), 1, clock.now()))
        [delivery] = hub.deliveries()

        assert hub.round() == 1
        [attempt] = hub.attempts(delivery.id)
        assert attempt.status_code is None
        assert attempt.error is not None
        assert "connect" in attempt.error
        assert hub.delivery(delivery.id).status == "pending"

        hub.update(endpoint_id, url=receiver.url("/fixed"))
        hub.until_retry(delivery.id)
        assert hub.round() == 1
        assert [(r.path, r.webhook_id) for r in receiver.requests] == [("/fixed", wid(delivery))]
        assert hub.delivery(delivery.id).status == "delivered"


class TestMessage:
    def test_the_signature_verifies_with_an_independent_standard_webhooks_verifier(
        self, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        endpoint_id = hub.endpoint(receiver.url())
        secret = hub.get_endpoint(endpoint_id).secret
        hub.publish(ingested(uuid.uuid4(), 1, clock.now()))
        hub.round()

        [request] = receiver.requests
        assert request.headers["content-type"] == "application/json"
        assert request.webhook_id.startswith("msg_")
        assert verify(secret, request.headers, request.body)
        # The timestamp is the send time, in seconds: receivers reject stale messages.
        sent_at = int(request.headers["webhook-timestamp"])
        assert abs(sent_at - clock.now().timestamp()) <= 300
        # The verifier really checks: a changed body, id, timestamp or key fails.
        assert not verify(secret, request.headers, request.body + b" ")
        assert not verify(secret, {**request.headers, "webhook-id": "msg_other"}, request.body)
        assert not verify(
            secret, {**request.headers, "webhook-timestamp": str(sent_at + 1)}, request.body
        )
        other = hub.get_endpoint(hub.endpoint(receiver.url("/other"))).secret
        assert not verify(other, request.headers, request.body)

    def test_the_body_is_type_timestamp_and_the_event_data(
        self, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        hub.endpoint(receiver.url())
        account = uuid.uuid4()
        occurred = clock.now()
        hub.publish(ingested(account, 7, occurred))
        clock.advance(timedelta(minutes=3))
        hub.round()

        [request] = receiver.requests
        body = request.json
        assert set(body) == {"type", "timestamp", "data"}
        assert body["type"] == "event.ingested"
        assert datetime.fromisoformat(body["timestamp"]) == occurred
        assert body["data"] == {
            "account_id": str(account),
            "events": 7,
            "first_at": occurred.isoformat().replace("+00:00", "Z"),
            "last_at": occurred.isoformat().replace("+00:00", "Z"),
        }


class TestOrder:
    def test_events_of_one_account_arrive_in_publication_order(
        self, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        hub.endpoint(receiver.url())
        first, second = uuid.uuid4(), uuid.uuid4()
        hub.publish(*(ingested(first if n % 2 else second, n, clock.now()) for n in range(1, 9)))
        hub.publish(ingested(first, 9, clock.now()), ingested(second, 10, clock.now()))

        assert hub.round() == 10
        by_account: dict[str, list[int]] = {}
        for request in receiver.requests:
            by_account.setdefault(request.json["data"]["account_id"], []).append(request.events)
        assert by_account == {str(first): [1, 3, 5, 7, 9], str(second): [2, 4, 6, 8, 10]}

    def test_an_account_waits_behind_its_failing_event_while_other_accounts_go_on(
        self, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        hub.endpoint(receiver.url())
        stuck, other = uuid.uuid4(), uuid.uuid4()
        failures = {1: 2}  # event 1 fails twice

        def answer(request: Request) -> int:
            left = failures.get(request.events, 0)
            if left:
                failures[request.events] = left - 1
                return 500
            return 200

        receiver.responder = answer
        hub.publish(
            ingested(stuck, 1, clock.now()),
            ingested(stuck, 2, clock.now()),
            ingested(other, 3, clock.now()),
            ingested(stuck, 4, clock.now()),
        )
        first = hub.deliveries()[0]

        hub.round()
        assert sorted(r.events for r in receiver.requests) == [1, 3]
        # While event 1 waits for its retry, the other account's new events still go out.
        hub.publish(ingested(other, 5, clock.now()), ingested(stuck, 6, clock.now()))
        hub.round()
        assert sorted(r.events for r in receiver.requests) == [1, 3, 5]

        hub.until_retry(first.id)
        hub.round()  # event 1 fails again: 2, 4 and 6 keep waiting
        assert sorted(r.events for r in receiver.requests) == [1, 1, 3, 5]

        hub.until_retry(first.id)
        hub.round()
        stuck_order = [
            r.events for r in receiver.requests if r.json["data"]["account_id"] == str(stuck)
        ]
        assert stuck_order == [1, 1, 1, 2, 4, 6]
        assert {d.status for d in hub.deliveries()} == {"delivered"}


class TestDisabling:
    def test_410_gone_disables_the_endpoint_and_raises_an_alert(
        self, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        endpoint_id = hub.endpoint(receiver.url())
        account = uuid.uuid4()
        hub.publish(ingested(account, 1, clock.now()), ingested(account, 2, clock.now()))
        receiver.script(410)

        hub.round()

        endpoint = hub.get_endpoint(endpoint_id)
        assert endpoint.enabled is False
        assert endpoint.disabled_reason is not None
        assert "410" in endpoint.disabled_reason
        gone, waiting = hub.deliveries(endpoint_id)
        assert (gone.status, gone.attempts, gone.last_status_code) == ("failed", 1, 410)
        assert waiting.status == "pending"
        [fired] = hub.alerts()
        assert fired["rule"] == "webhook.endpoint_disabled"
        assert fired["severity"] == "warning"
        assert receiver.url() in fired["message"]

        # No further attempts: not the pending one, not new events.
        clock.advance(timedelta(days=1))
        hub.publish(ingested(account, 3, clock.now()))
        assert hub.round() == 0
        assert [r.events for r in receiver.requests] == [1]
        assert len(hub.deliveries(endpoint_id)) == 2

    def test_an_endpoint_failing_longer_than_disable_after_is_disabled_with_an_alert(
        self, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        hub.sender = hub.new_sender(disable_after=timedelta(hours=1))
        endpoint_id = hub.endpoint(receiver.url())
        receiver.responder = lambda _request: 500
        hub.publish(ingested(uuid.uuid4(), 1, clock.now()))
        [delivery] = hub.deliveries()
        started = clock.now()

        hub.round()
        hub.until_retry(delivery.id)
        hub.round()
        # Failing for seconds only: still enabled, still retried.
        assert hub.get_endpoint(endpoint_id).enabled is True
        assert hub.get_endpoint(endpoint_id).failing_since == started
        assert hub.alerts() == []

        clock.advance(timedelta(hours=1))
        hub.round()

        endpoint = hub.get_endpoint(endpoint_id)
        assert endpoint.enabled is False
        assert endpoint.disabled_reason is not None
        assert "every attempt failed since" in endpoint.disabled_reason
        assert "HTTP 500" in endpoint.disabled_reason
        [fired] = hub.alerts()
        assert fired["rule"] == "webhook.endpoint_disabled"
        assert "was disabled" in fired["message"]

        sent = len(receiver.requests)
        clock.advance(timedelta(days=1))
        hub.publish(ingested(uuid.uuid4(), 2, clock.now()))
        assert hub.round() == 0
        assert len(receiver.requests) == sent == 3

    def test_a_success_restarts_the_failure_clock(
        self, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        hub.sender = hub.new_sender(disable_after=timedelta(hours=1))
        endpoint_id = hub.endpoint(receiver.url())
        receiver.script(500, 200, 500)
        hub.publish(ingested(uuid.uuid4(), 1, clock.now()))
        [delivery] = hub.deliveries()
        hub.round()
        hub.until_retry(delivery.id)
        hub.round()
        assert hub.get_endpoint(endpoint_id).failing_since is None

        clock.advance(timedelta(hours=2))
        hub.publish(ingested(uuid.uuid4(), 2, clock.now()))
        hub.round()

        endpoint = hub.get_endpoint(endpoint_id)
        assert endpoint.enabled is True
        assert endpoint.failing_since == clock.now()
        assert hub.alerts() == []


class TestFanOut:
    def test_an_endpoint_gets_only_the_event_types_it_asked_for(
        self, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        health_only = hub.endpoint(receiver.url("/health"), "health.changed")
        everything = hub.endpoint(receiver.url("/all"))
        account = uuid.uuid4()
        hub.publish(
            ingested(account, 1, clock.now()),
            (
                account,
                HealthChanged(
                    account_id=account,
                    as_of=clock.now(),
                    score=41.5,
                    risk_level="at_risk",
                    scorecard_version="v1",
                ),
            ),
            alert("disk full"),
        )

        hub.round()

        assert [r.json["type"] for r in receiver.at("/health")] == ["health.changed"]
        assert sorted(r.json["type"] for r in receiver.at("/all")) == [
            "alert.fired",
            "event.ingested",
            "health.changed",
        ]
        assert [d.event_type for d in hub.deliveries(health_only)] == ["health.changed"]
        assert len(hub.deliveries(everything)) == 3

    def test_a_disabled_endpoint_gets_no_new_deliveries(
        self, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        paused = hub.endpoint(receiver.url("/paused"))
        active = hub.endpoint(receiver.url("/active"))
        hub.update(paused, enabled=False)

        hub.publish(ingested(uuid.uuid4(), 1, clock.now()))
        hub.round()
        assert hub.deliveries(paused) == []
        assert [r.events for r in receiver.at("/active")] == [1]

        # Enabled again: new events flow; what happened meanwhile is not backfilled.
        hub.update(paused, enabled=True)
        hub.publish(ingested(uuid.uuid4(), 2, clock.now()))
        hub.round()
        assert [r.events for r in receiver.at("/paused")] == [2]
        assert len(hub.deliveries(active)) == 2

    def test_an_event_whose_transaction_rolled_back_is_never_sent(
        self, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        hub.endpoint(receiver.url())
        with hub.sessions() as session, session.begin():
            account, event = ingested(uuid.uuid4(), 1, clock.now())
            hub_service.publish(session, event, account_id=account, now=clock.now())
            session.rollback()
        hub.fan_out()

        assert hub.round() == 0
        assert hub.deliveries() == []
        assert receiver.requests == []


class TestSenders:
    def test_two_senders_at_once_send_every_delivery_exactly_once_and_in_order(
        self, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        hub.endpoint(receiver.url())
        accounts = [uuid.uuid4() for _ in range(5)]
        events = [ingested(accounts[n % 5], n, clock.now()) for n in range(1, 31)]
        hub.publish(*events, *(alert(f"alert {n}") for n in range(6)))
        expected = sorted(wid(d) for d in hub.deliveries())
        assert len(expected) == 36
        receiver.delay = 0.002  # widens the window in which both senders are busy

        senders = [hub.new_sender(batch=4), hub.new_sender(batch=4)]
        start = threading.Barrier(len(senders))
        errors: list[BaseException] = []

        def pending() -> bool:
            return any(d.status == "pending" for d in hub.deliveries())

        def work(sender: WebhookSender) -> None:
            async def rounds() -> None:
                async with sender.client() as client:
                    for _ in range(500):
                        await sender.run_once(client)
                        if not pending():
                            return

            try:
                start.wait(10)
                run_async(rounds())
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(s,)) for s in senders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

        assert errors == []
        received = [r.webhook_id for r in receiver.requests]
        assert sorted(received) == expected  # each delivery exactly once
        assert {(d.status, d.attempts) for d in hub.deliveries()} == {("delivered", 1)}
        for account in accounts:
            order = [
                r.events
                for r in receiver.requests
                if r.json["type"] == "event.ingested"
                and r.json["data"]["account_id"] == str(account)
            ]
            assert order == sorted(order)
            assert len(order) == 6

    def test_a_crashed_senders_claim_lapses_and_another_sender_sends_the_same_message(
        self, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        class CrashingSender(WebhookSender):
            """Sends, then dies before recording anything (a killed worker)."""

            def _record(self, results: list[Result], released: list[uuid.UUID]) -> None:
                raise RuntimeError("worker killed")

        hub.endpoint(receiver.url())
        account = uuid.uuid4()
        hub.publish(ingested(account, 1, clock.now()))
        [delivery] = hub.deliveries()
        crashing = CrashingSender(
            make_session_factory(hub.engine), clock=clock, allow_private=True, lease=LEASE
        )

        with pytest.raises(RuntimeError, match="worker killed"):
            send_round(crashing)
        assert [r.webhook_id for r in receiver.requests] == [wid(delivery)]
        # A later event of the account must not overtake the one in doubt.
        hub.publish(ingested(account, 2, clock.now()))

        # While the claim may still be alive, nobody else sends.
        clock.advance(LEASE - timedelta(seconds=1))
        assert hub.round() == 0
        assert len(receiver.requests) == 1

        clock.advance(timedelta(seconds=1))
        assert hub.round() == 2
        first, second = hub.deliveries()
        assert [(r.webhook_id, r.events) for r in receiver.requests] == [
            (wid(first), 1),
            (wid(first), 1),
            (wid(second), 2),
        ]
        assert first.id == delivery.id
        assert (first.status, first.attempts) == ("delivered", 1)
        assert second.status == "delivered"


class TestSendTimeGuard:
    def test_a_private_destination_is_not_sent_to_and_the_attempt_says_why(
        self, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        # Accepted when configured (or resolving to a public address then); checked again
        # at every send, after DNS resolution.
        hub.sender = hub.new_sender(allow_private=False)
        hub.endpoint(receiver.url())
        hub.publish(ingested(uuid.uuid4(), 1, clock.now()))
        [delivery] = hub.deliveries()

        assert hub.round() == 1

        assert receiver.requests == []
        [attempt] = hub.attempts(delivery.id)
        assert attempt.status_code is None
        assert attempt.error is not None
        assert "127.0.0.1 resolves to 127.0.0.1, a loopback address" in attempt.error
        refused = hub.delivery(delivery.id)
        assert refused.status == "pending"
        assert refused.last_error == attempt.error
