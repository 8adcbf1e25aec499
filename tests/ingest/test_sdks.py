"""The tracking API driven by the real client libraries our customers use.

segment-analytics-python (`segment.analytics.Client`) and rudder-sdk-python
(`rudderstack.analytics`) send to a real uvicorn serving Tenure on a loopback port, on each
database backend. The server runs on the system clock: the SDKs stamp events with the real
time, and the server's clamp of future events and its skew correction use its own clock.

Between the SDK and Tenure sits `Tap`, a small ASGI middleware that records every /v1/
request (headers, raw body, status and body of the answer) and can answer the next batch
POSTs with 500, before Tenure sees them or after Tenure committed them.

SDK behaviour these tests rely on (read from their sources, versions pinned in pyproject):
- Both queue calls and upload them from a consumer thread, in batches of at most
  `upload_size` calls collected for at most `upload_interval` seconds, to `{host}/v1/batch`.
  `flush()` blocks until every queued call has been answered (or given up on); `on_error`
  is called once per batch that is finally given up on, never for a failure that a retry
  repaired. `sync_mode=True` posts each call on its own, without retries, and raises.
- Segment retries a 5xx at once, then after 0.5 s, 1 s, ... and sends `X-Retry-Count`.
  RudderStack retries through `backoff.expo` with full jitter (the first wait is up to 1 s,
  not configurable): its 500 case keeps to one retry.
- Segment gzips only when asked (`gzip=True`); RudderStack gzips by default.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pytest
import rudderstack.analytics as rudder_analytics
import uvicorn
from rudderstack.analytics import Client as RudderClient
from rudderstack.analytics.request import APIError as RudderAPIError
from segment.analytics import Client as SegmentClient
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenure.accounts.models import Account, Contact
from tenure.app import create_app
from tenure.clock import SystemClock
from tenure.config import Settings
from tenure.ingest import pipeline
from tenure.ingest.models import Event, UsageDaily
from tenure.ingest.rollup import ACTIVE_USERS, ALL_EVENTS
from tests.factories.auth import make_api_key

SDKS = ("segment", "rudderstack")
UPLOAD_INTERVAL = 0.05  # seconds a consumer collects calls into one batch
FLUSH_TIMEOUT = 15.0
ACTIVITY = ("track", "page", "screen")
ACCOUNT_TRAITS: dict[str, Any] = {
    "name": "Bloom & Wild Florals",
    "plan": "professional",
    "mrr": 79,
    "category": "florist",
    "country": "GB",
}
CONTACT_TRAITS: dict[str, Any] = {
    "email": "ava@bloom.example",
    "name": "Ava Stone",
    "role": "owner",
}


# --- the server --------------------------------------------------------------------------


@dataclass
class Seen:
    """One request to /v1/ as it reached the server, and the answer the SDK got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    status: int | None = None
    answer: bytes = b""
    hidden_status: int | None = None  # Tenure's own answer, when the Tap replaced it

    def payload(self) -> Any:
        raw = self.body
        if self.headers.get("content-encoding", "").lower() == "gzip":
            raw = gzip.decompress(raw)
        return json.loads(raw)

    def messages(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = self.payload()["batch"]
        return batch

    def message_ids(self) -> list[str]:
        return [m["messageId"] for m in self.messages()]


class Tap:
    """ASGI middleware: records /v1/ requests; fails the next `fail` batch POSTs with 500.

    With `after_commit`, a failed request still reaches Tenure (which stores the batch) and
    only its answer is replaced: the SDK sees a 500 for data that was committed.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[Seen] = []
        self.fail = 0
        self.after_commit = False

    def fail_next(self, count: int = 1, *, after_commit: bool = False) -> None:
        self.fail, self.after_commit = count, after_commit

    def batches(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST" and s.path.rstrip("/") == "/v1/batch"]

    def statuses(self) -> list[int | None]:
        return [s.status for s in self.batches()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        seen = Seen(
            method=scope["method"],
            path=scope["path"],
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
        )
        self.seen.append(seen)

        async def tapped_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":  # recorded before the app can answer
                seen.body += message.get("body", b"")
            return message

        async def tapped_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen.status = message["status"]
            elif message["type"] == "http.response.body":
                seen.answer += message.get("body", b"")
            await send(message)

        async def swallow(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen.hidden_status = message["status"]

        is_batch = seen.method == "POST" and seen.path.rstrip("/") == "/v1/batch"
        if not (is_batch and self.fail > 0):
            await self.app(scope, tapped_receive, tapped_send)
            return
        self.fail -= 1
        if self.after_commit:
            await self.app(scope, tapped_receive, swallow)
        else:
            while (await tapped_receive()).get("more_body", False):
                pass
        body = json.dumps({"code": "test_failure", "message": "forced by the test"}).encode()
        await tapped_send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await tapped_send({"type": "http.response.body", "body": body})


@dataclass
class Live:
    url: str
    write_key: str
    tap: Tap


@pytest.fixture
def live(settings: Settings, engine: Engine, db: Session) -> Iterator[Live]:
    """Tenure (system clock) behind a Tap, served by uvicorn on a free loopback port."""
    clock = SystemClock()
    key = make_api_key(db, now=clock.now(), scopes=["ingest"], name="sdk tests")
    db.commit()
    tap = Tap(create_app(settings, clock=clock, engine=engine))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound here, so no other process can take the port first
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(tap, log_level="warning", timeout_keep_alive=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield Live(f"http://127.0.0.1:{port}", key, tap)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


# --- the SDKs ----------------------------------------------------------------------------


class TrackingClient(Protocol):
    """The calls both SDK clients share (RudderStack's is a fork of analytics-python)."""

    def track(self, **kwargs: Any) -> tuple[bool, dict[str, Any]]: ...
    def identify(self, **kwargs: Any) -> tuple[bool, dict[str, Any]]: ...
    def group(self, **kwargs: Any) -> tuple[bool, dict[str, Any]]: ...
    def page(self, **kwargs: Any) -> tuple[bool, dict[str, Any]]: ...
    def flush(self) -> None: ...
    def join(self) -> None: ...


def flush_within(flush: Callable[[], None], name: str, timeout: float = FLUSH_TIMEOUT) -> None:
    """Call an SDK's flush(), failing instead of hanging when it never returns."""
    flushing = threading.Thread(target=flush, daemon=True)
    flushing.start()
    flushing.join(timeout)
    assert not flushing.is_alive(), f"{name}: flush() still waiting after {timeout}s"


Errors = list[tuple[Exception, list[dict[str, Any]]]]


@dataclass
class Sdk:
    name: str
    client: TrackingClient
    sync: bool
    errors: Errors

    def send(self, call: str, **kwargs: Any) -> str:
        """Make one call; the message id the SDK queued (or posted) it under."""
        ok, message = getattr(self.client, call)(**kwargs)
        assert ok, f"{self.name} did not queue {message}"
        return str(message["messageId"])

    def wait(self) -> None:
        """Block until everything queued was answered or given up on."""
        if not self.sync:
            flush_within(self.client.flush, self.name)

    def drain(self) -> None:
        """wait(), and fail loudly if the SDK gave up on anything."""
        self.wait()
        assert self.errors == [], f"{self.name} gave up on batches: {self.errors}"


SdkFactory = Callable[..., Sdk]


@pytest.fixture(params=SDKS)
def sdk_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def sdk(sdk_name: str, live: Live) -> Iterator[SdkFactory]:
    """Factory: a client of the SDK under test pointed at `live`, gzip on, errors collected."""
    made: list[Sdk] = []

    def make(*, sync: bool = False, max_retries: int = 2) -> Sdk:
        options: dict[str, Any] = {
            "write_key": live.write_key,
            "host": live.url,
            "gzip": True,
            "sync_mode": sync,
            "max_retries": max_retries,
            "timeout": 5,
            "upload_interval": UPLOAD_INTERVAL,
            "upload_size": 100,
        }
        errors: Errors = []
        options["on_error"] = lambda error, batch: errors.append((error, batch))
        client: TrackingClient
        if sdk_name == "segment":
            client = SegmentClient(**options, max_total_backoff_duration=10)
        else:
            client = RudderClient(**options)
        result = Sdk(sdk_name, client, sync, errors)
        made.append(result)
        return result

    yield make
    for each in made:
        if not each.sync:  # join() iterates the consumers, which are None in sync mode
            each.client.join()


# --- reading the database ----------------------------------------------------------------


def stored_ids(db: Session) -> Counter[str]:
    """How many times each message id is stored."""
    db.rollback()
    return Counter(db.scalars(select(Event.message_id)).all())


def usage_table(db: Session) -> dict[tuple[str, date], int]:
    db.rollback()
    rows = db.execute(select(UsageDaily.metric, UsageDaily.day, UsageDaily.count))
    return {(metric, day): count for metric, day, count in rows.all()}


def usage(db: Session, metric: str) -> dict[date, int]:
    return {day: n for (m, day), n in usage_table(db).items() if m == metric}


def usage_from_events(db: Session, timezone: str = "UTC") -> dict[tuple[str, date], int]:
    """What usage_daily must hold, recomputed independently from the stored events."""
    db.rollback()
    zone = ZoneInfo(timezone)
    counts: Counter[tuple[str, date]] = Counter()
    active: set[tuple[date, Any]] = set()
    events = db.scalars(select(Event).where(Event.type.in_(ACTIVITY))).all()
    for event in events:
        assert event.account_id is not None, f"{event.message_id} was not linked to its account"
        day = event.timestamp.astimezone(zone).date()
        metric = {"page": "$page", "screen": "$screen"}.get(event.type, event.name or "$unnamed")
        counts[(metric, day)] += 1
        counts[(ALL_EVENTS, day)] += 1
        if event.contact_id is not None:
            active.add((day, event.contact_id))
    for day, _ in active:
        counts[(ACTIVE_USERS, day)] += 1
    return dict(counts)


def total(db: Session, metric: str) -> int:
    return sum(usage(db, metric).values())


def a_customer_session(s: Sdk, *, group_traits: dict[str, Any] | None = None) -> list[str]:
    """group + identify + page + three tracks of user u1 in account acc_1; their ids."""
    traits = {**ACCOUNT_TRAITS, **(group_traits or {})}
    return [
        s.send("group", user_id="u1", group_id="acc_1", traits=traits),
        # Segment sends these traits at the root; RudderStack moves them to context.traits.
        s.send("identify", user_id="u1", traits=CONTACT_TRAITS),
        s.send("page", user_id="u1", name="Dashboard"),
        s.send("track", user_id="u1", event="login"),
        s.send("track", user_id="u1", event="login", properties={"second": True}),
        s.send("track", user_id="u1", event="gallery_delivered", properties={"photos": 120}),
    ]


# --- the tests ---------------------------------------------------------------------------


def test_gzip_batch_of_calls_is_stored_and_rolled_up(
    sdk: SdkFactory, live: Live, db: Session
) -> None:
    s = sdk()
    ids = a_customer_session(s)
    s.drain()

    requests = live.tap.batches()
    assert requests, "the SDK sent nothing"
    assert all(r.status == 200 for r in requests), [(r.status, r.payload()) for r in requests]
    assert all(r.headers.get("content-encoding") == "gzip" for r in requests)
    assert [i for r in requests for i in r.message_ids()] == ids
    assert stored_ids(db) == Counter(ids)

    account = db.scalars(select(Account)).one()
    assert (account.external_id, account.name, account.plan, account.mrr_cents) == (
        "acc_1",
        "Bloom & Wild Florals",
        "professional",
        7900,
    )
    contact = db.scalars(select(Contact)).one()
    assert (contact.external_id, contact.email, contact.name, contact.role) == (
        "u1",
        "ava@bloom.example",
        "Ava Stone",
        "owner",
    )
    assert contact.account_id == account.id

    assert (total(db, ALL_EVENTS), total(db, "login"), total(db, "$page")) == (4, 2, 1)
    assert total(db, "gallery_delivered") == 1
    assert total(db, ACTIVE_USERS) == len(usage(db, ALL_EVENTS))  # one user, once per day
    assert usage_table(db) == usage_from_events(db)


@pytest.mark.parametrize("after_commit", [False, True], ids=["lost-request", "lost-answer"])
def test_a_500_is_retried_by_the_sdk_and_stored_once(
    sdk: SdkFactory, live: Live, db: Session, after_commit: bool
) -> None:
    # lost-request: the 500 comes before Tenure saw the batch; lost-answer: Tenure committed
    # it and the answer was lost, so the retry is all duplicates.
    live.tap.fail_next(1, after_commit=after_commit)
    s = sdk(max_retries=1)  # one retry: RudderStack's backoff (up to 1 s) cannot be shortened
    ids = a_customer_session(s)
    s.drain()  # asserts on_error was never called: the retry repaired the failure

    assert live.tap.statuses()[:2] == [500, 200] and set(live.tap.statuses()[2:]) <= {200}
    failed, retried, *_ = live.tap.batches()
    assert failed.hidden_status == (200 if after_commit else None)
    assert retried.message_ids() == failed.message_ids()  # the SDK resent the same batch
    if s.name == "segment":
        assert retried.headers.get("x-retry-count") == "1"
    assert stored_ids(db) == Counter(ids)  # every message exactly once
    assert (total(db, ALL_EVENTS), total(db, "login"), total(db, ACTIVE_USERS)) == (4, 2, 1)
    assert usage_table(db) == usage_from_events(db)


def test_resent_message_ids_are_stored_and_counted_once(
    sdk: SdkFactory, live: Live, db: Session
) -> None:
    s = sdk()

    def calls() -> list[str]:
        # The SDK stamps each send with a new timestamp and sentAt; only the ids repeat.
        return [
            s.send("group", user_id="u1", group_id="acc_1", traits=ACCOUNT_TRAITS, message_id="g1"),
            s.send("identify", user_id="u1", traits=CONTACT_TRAITS, message_id="i1"),
            s.send("track", user_id="u1", event="login", message_id="t1"),
            s.send("track", user_id="u1", event="export", message_id="t2"),
        ]

    first = calls()
    s.drain()
    after_first = usage_table(db)
    assert sum(n for (m, _), n in after_first.items() if m == ALL_EVENTS) == 2

    second = [*calls(), s.send("track", user_id="u1", event="login", message_id="t3")]
    second.append(s.send("track", user_id="u1", event="login", message_id="t3"))  # twice in a row
    s.drain()

    assert first == ["g1", "i1", "t1", "t2"] and second == [*first, "t3", "t3"]
    assert len(live.tap.batches()) >= 2 and set(live.tap.statuses()) == {200}
    assert stored_ids(db) == Counter(["g1", "i1", "t1", "t2", "t3"])
    assert (total(db, ALL_EVENTS), total(db, "login"), total(db, "export")) == (3, 2, 1)
    assert total(db, ACTIVE_USERS) == len(usage(db, ALL_EVENTS))  # one user, once per day
    assert usage_table(db) == usage_from_events(db)


def test_late_event_updates_the_accounts_local_day(
    sdk: SdkFactory, live: Live, db: Session
) -> None:
    zone = "Pacific/Kiritimati"  # UTC+14: at 11:00-12:00 UTC it is already tomorrow there
    s = sdk()
    now = datetime.now(UTC)
    late = (now - timedelta(days=3)).replace(hour=12, minute=0, second=0, microsecond=0)
    local_day = late.astimezone(ZoneInfo(zone)).date()
    assert local_day == late.date() + timedelta(days=1)

    ids = a_customer_session(s, group_traits={"timezone": zone})
    ids.append(
        s.send(
            "track",
            user_id="u1",
            event="invoice_sent",
            timestamp=late - timedelta(hours=1),
            message_id="early",
        )
    )
    s.drain()
    assert usage(db, "invoice_sent") == {local_day: 1}
    assert usage(db, ALL_EVENTS)[local_day] == 1

    # Sent last, three days late.
    ids.append(
        s.send("track", user_id="u1", event="invoice_sent", timestamp=late, message_id="late")
    )
    s.drain()

    assert stored_ids(db) == Counter(ids)
    event = db.scalars(select(Event).where(Event.message_id == "late")).one()
    # Only corrected by the tiny skew between the SDK's sentAt and the server's clock.
    assert abs(event.timestamp - late) < timedelta(seconds=5)
    assert event.flags == []
    account = db.scalars(select(Account)).one()
    assert account.timezone == zone and account.rescore_requested_at is not None
    assert event.account_id == account.id

    assert usage(db, "invoice_sent") == {local_day: 2}
    days = usage(db, ALL_EVENTS)
    assert days[local_day] == 2 and late.date() not in days
    assert sum(days.values()) == 6
    assert usage(db, ACTIVE_USERS)[local_day] == 1
    assert usage_table(db) == usage_from_events(db, zone)


def test_identify_traits_under_context_traits_fill_the_contact(
    sdk: SdkFactory, live: Live, db: Session
) -> None:
    s = sdk(sync=True)  # one request per call, errors raised: the other path through the SDK
    if s.name == "segment":
        s.send("identify", user_id="u7", traits={}, context={"traits": CONTACT_TRAITS})
    else:
        # RudderStack always moves `traits` to context.traits, overwriting any
        # context={"traits": ...} passed in (with {} when `traits` is empty).
        s.send("identify", user_id="u7", traits=CONTACT_TRAITS)
    s.send("group", user_id="u7", group_id="acc_7", traits={"name": "Harbourview Venue"})
    s.drain()

    (identify,) = live.tap.batches()[0].messages()
    assert identify["context"]["traits"] == CONTACT_TRAITS
    assert not identify.get("traits")
    assert live.tap.statuses() == [200, 200]

    db.rollback()
    contact = db.scalars(select(Contact)).one()
    assert (contact.external_id, contact.email, contact.name, contact.role) == (
        "u7",
        "ava@bloom.example",
        "Ava Stone",
        "owner",
    )
    assert contact.account_id == db.scalars(select(Account.id)).one()


def test_oversized_message_fails_loudly(sdk: SdkFactory, live: Live, db: Session) -> None:
    """Tenure refuses messages over 32 KB, and with them their whole batch (documented).

    Segment enforces the same 32 KB limit before queueing; RudderStack allows 4 MB per
    message, so its batch reaches Tenure, which answers 400 invalid_batch: not retried,
    reported to on_error, and the valid neighbours in the batch are not stored either.
    """
    s = sdk()
    blob = {"notes": "x" * 40_000}
    if s.name == "segment":
        with pytest.raises(RuntimeError, match="exceeds"):
            s.client.track(user_id="u1", event="export", properties=blob)
        return
    ok_id = s.send("track", user_id="u1", event="login")
    big_id = s.send("track", user_id="u1", event="export", properties=blob)
    s.wait()

    refused = [r for r in live.tap.batches() if r.status != 200]
    assert [r.status for r in refused] == [400]  # a 400 is final: no retry
    assert big_id in refused[0].message_ids()
    (error, batch), *others = s.errors
    assert others == [] and [m["messageId"] for m in batch] == refused[0].message_ids()
    assert getattr(error, "status", None) == 400
    assert getattr(error, "code", None) == "invalid_batch" and "32 KB" in str(error)
    accepted = [i for r in live.tap.batches() if r.status == 200 for i in r.message_ids()]
    assert stored_ids(db) == Counter(accepted)
    # Almost always both calls share the batch, and the valid one is lost with it.
    assert (ok_id in refused[0].message_ids()) == (ok_id not in accepted)


def test_rudderstack_module_api_with_data_plane_url(
    live: Live, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The set-up our docs show: module-level write_key and dataPlaneUrl, SDK defaults."""
    errors: Errors = []
    monkeypatch.setattr(rudder_analytics, "default_client", None)
    monkeypatch.setattr(rudder_analytics, "write_key", live.write_key)
    monkeypatch.setattr(rudder_analytics, "dataPlaneUrl", live.url)
    monkeypatch.setattr(rudder_analytics, "on_error", lambda e, batch: errors.append((e, batch)))
    rudder_analytics.group("u1", "acc_1", traits=ACCOUNT_TRAITS, message_id="g1")
    rudder_analytics.identify("u1", traits=CONTACT_TRAITS, message_id="i1")
    rudder_analytics.track("u1", "login", message_id="t1")
    try:
        flush_within(rudder_analytics.flush, "rudderstack")
    finally:
        rudder_analytics.join()

    assert errors == []
    assert all(r.headers.get("content-encoding") == "gzip" for r in live.tap.batches())
    assert stored_ids(db) == Counter(["g1", "i1", "t1"])
    assert db.scalars(select(Contact.email)).one() == "ava@bloom.example"
    assert total(db, "login") == 1


def test_unexpected_server_error_keeps_the_error_contract(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/ingestion.md: errors carry `code` and `message` as well; SDKs rely on it.

    A failure outside the validation path (here a database error while storing; a Redis
    outage in the rate limiter is another) reaches the app's generic handler instead.
    rudder-sdk-python reads `payload['code']` catching only ValueError, so the KeyError
    escapes: on_error gets KeyError('code'), with no status, and backoff treats the answer
    as a network failure (a 4xx without `code` would be retried like one too).
    """

    def database_down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("INSERT INTO events ...", {}, Exception("server closed"))

    monkeypatch.setattr(pipeline, "ingest", database_down)
    errors: Errors = []
    client = RudderClient(
        write_key=live.write_key,
        host=live.url,
        max_retries=0,
        upload_interval=UPLOAD_INTERVAL,
        on_error=lambda error, batch: errors.append((error, batch)),
    )
    client.track(user_id="u1", event="login", message_id="t1")
    flush_within(client.flush, "rudderstack")
    client.join()

    (answer,) = live.tap.batches()
    assert answer.status == 500
    assert {"code", "message"} <= json.loads(answer.answer).keys(), answer.answer
    ((error, _),) = errors
    assert isinstance(error, RudderAPIError) and error.status == 500
