"""The live feed: `GET /api/v1/live` streams committed domain events as Server-Sent Events.

httpx's ASGI transport buffers whole responses, so the feed is served by a real uvicorn on a
loopback port and read line by line with a small SSE parser. Nothing here waits for an event
*not* to arrive: an event that must not be delivered is followed by a marker event, and the
next event the client reads must be the marker.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.app import create_app
from tenure.clock import FixedClock
from tenure.config import Settings
from tenure.db import make_session_factory
from tenure.hub import service as hub_service
from tenure.hub.events import AccountUpdated, FieldChange, WebhookTest
from tenure.hub.live import CHANNEL, LiveFeed, RedisLiveFeed
from tenure.hub.models import Outbox
from tests.conftest import NOW
from tests.factories.accounts import make_account
from tests.factories.auth import make_api_key

# Generous, only so that a broken feed fails the test instead of hanging it.
READ_TIMEOUT = 10.0


# --- a real server ------------------------------------------------------------------------


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn in a thread on a free loopback port; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound here, so no other process can take the port first
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@dataclass
class Served:
    url: str
    app: FastAPI

    @property
    def sessions(self) -> sessionmaker[Session]:
        """Sessions of the served app: what they commit goes to its live feed."""
        return self.app.state.tenure.sessions  # type: ignore[no-any-return]


@pytest.fixture
def served(settings: Settings, clock: FixedClock, engine: Engine) -> Iterator[Served]:
    app = create_app(settings, clock=clock, engine=engine)
    assert type(app.state.tenure.live) is LiveFeed  # no Redis: in-process fan-out
    with serve(app) as url:
        yield Served(url, app)


@pytest.fixture
def reader(db: Session) -> str:
    key = make_api_key(db, now=NOW, scopes=["read"], name="live reader")
    db.commit()
    return key


@pytest.fixture
def writer(db: Session) -> str:
    key = make_api_key(db, now=NOW, scopes=["read", "write"], name="writer")
    db.commit()
    return key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# --- a small SSE client -------------------------------------------------------------------


@dataclass
class Sse:
    event: str
    id: str | None
    data: Any


class Stream:
    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.iter_lines()

    def next(self) -> Sse:
        """The next event (comments such as pings are skipped)."""
        fields: dict[str, str] = {}
        data: list[str] = []
        for line in self._lines:
            if line == "":
                if data or fields:
                    return Sse(
                        fields.get("event", "message"),
                        fields.get("id"),
                        json.loads("\n".join(data)),
                    )
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                fields[name] = value
        raise AssertionError("the stream ended")

    def ended(self) -> bool:
        """True when the server closed the stream with no further event."""
        return all(line == "" or line.startswith(":") for line in self._lines)

    def ready(self) -> None:
        item = self.next()
        assert (item.event, item.data) == ("ready", {"listening": True}), item

    def backlog(self) -> list[Sse]:
        """Events sent before `ready` (a resumed stream's catch-up)."""
        items: list[Sse] = []
        while (item := self.next()).event != "ready":
            items.append(item)
        return items


@contextmanager
def listen(
    url: str, key: str | None, *, headers: dict[str, str] | None = None, **params: Any
) -> Iterator[Stream]:
    with (
        httpx.Client(
            base_url=url,
            headers={**(bearer(key) if key else {}), **(headers or {})},
            timeout=httpx.Timeout(READ_TIMEOUT),
        ) as http,
        http.stream("GET", "/api/v1/live", params=params) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Stream(response)


def marker(session: Session, message: str) -> int:
    """Publish a `webhook.test` event (no account) in the session's transaction."""
    event = WebhookTest(message=message, endpoint_id=uuid.uuid4())
    return hub_service.publish(session, event, account_id=None, now=NOW)


def messages(items: list[Sse]) -> list[str]:
    return [i.data["data"]["message"] for i in items]


def outbox_ids(db: Session) -> list[int]:
    db.rollback()
    return list(db.scalars(select(Outbox.id).order_by(Outbox.id)))


# --- the tests ----------------------------------------------------------------------------


class TestRequest:
    def test_unauthenticated_is_401_and_a_key_without_read_is_403(
        self, served: Served, db: Session
    ) -> None:
        ingest_only = make_api_key(db, now=NOW, scopes=["ingest"])
        db.commit()
        with httpx.Client(base_url=served.url, timeout=READ_TIMEOUT) as http:
            anonymous = http.get("/api/v1/live")
            assert anonymous.status_code == 401
            assert anonymous.headers["content-type"] == "application/problem+json"
            wrong = http.get("/api/v1/live", headers=bearer("tn_not_a_key"))
            assert wrong.status_code == 401
            assert http.get("/api/v1/live", headers=bearer(ingest_only)).status_code == 403

    def test_unknown_type_or_bad_last_event_id_is_422(self, served: Served, reader: str) -> None:
        with httpx.Client(
            base_url=served.url, headers=bearer(reader), timeout=READ_TIMEOUT
        ) as http:
            unknown = http.get("/api/v1/live", params={"types": "account.created,account.exploded"})
            assert unknown.status_code == 422
            assert unknown.headers["content-type"] == "application/problem+json"
            assert "account.exploded" in unknown.json()["detail"]
            bad_header = http.get("/api/v1/live", headers={"Last-Event-ID": "yesterday"})
            assert bad_header.status_code == 422
            negative = http.get("/api/v1/live", params={"last_event_id": -1})
            assert negative.status_code == 422


class TestLive:
    def test_an_account_created_through_the_api_arrives(
        self, served: Served, reader: str, writer: str, db: Session
    ) -> None:
        with listen(served.url, reader) as stream:
            stream.ready()
            created = httpx.post(
                f"{served.url}/api/v1/accounts",
                json={"external_id": "acc_live", "name": "Golden Hour Photography", "plan": "pro"},
                headers=bearer(writer),
                timeout=READ_TIMEOUT,
            )
            assert created.status_code == 201, created.text
            account_id = created.json()["id"]
            item = stream.next()
        assert item.event == "account.created"
        [outbox_id] = outbox_ids(db)
        assert item.id == str(outbox_id)
        body = dict(item.data)
        assert datetime.fromisoformat(body.pop("occurred_at")) == NOW
        assert body["data"]["external_id"] == "acc_live" and body["data"]["plan"] == "pro"
        assert body == {
            "id": outbox_id,
            "type": "account.created",
            "version": 1,
            "account_id": account_id,
            "data": body["data"],
        }
        assert body["data"]["account_id"] == account_id

    def test_every_event_of_a_transaction_arrives_in_order(
        self, served: Served, reader: str
    ) -> None:
        with listen(served.url, reader) as stream:
            stream.ready()
            with served.sessions() as session, session.begin():
                ids = [marker(session, f"m{i}") for i in range(5)]
            items = [stream.next() for _ in range(5)]
        assert messages(items) == ["m0", "m1", "m2", "m3", "m4"]
        assert [int(i.id or 0) for i in items] == ids == sorted(ids)

    def test_types_filter(self, served: Served, reader: str, writer: str) -> None:
        with listen(served.url, reader, types="account.updated, webhook.test") as stream:
            stream.ready()
            with httpx.Client(
                base_url=served.url, headers=bearer(writer), timeout=READ_TIMEOUT
            ) as http:
                created = http.post("/api/v1/accounts", json={"external_id": "a", "name": "A"})
                account_id = created.json()["id"]  # account.created: not wanted
                patched = http.patch(f"/api/v1/accounts/{account_id}", json={"plan": "scale"})
                assert patched.status_code == 200
            first = stream.next()
            assert first.event == "account.updated"
            assert first.data["account_id"] == account_id
            assert first.data["data"]["changes"] == {"plan": {"before": None, "after": "scale"}}
            with served.sessions() as session, session.begin():
                marker(session, "wanted too")
            assert messages([stream.next()]) == ["wanted too"]

    def test_account_filter(self, served: Served, reader: str, db: Session) -> None:
        mine = make_account(db, now=NOW)
        other = make_account(db, now=NOW)
        db.commit()

        def update(session: Session, account_id: uuid.UUID, plan: str) -> None:
            event = AccountUpdated(
                account_id=account_id, changes={"plan": FieldChange(before=None, after=plan)}
            )
            hub_service.publish(session, event, account_id=account_id, now=NOW)

        with listen(served.url, reader, account_id=str(mine.id)) as stream:
            stream.ready()
            with served.sessions() as session, session.begin():
                update(session, other.id, "not for me")
                marker(session, "no account: not for me either")
                update(session, mine.id, "mine")
            item = stream.next()
        assert item.data["account_id"] == str(mine.id)
        assert item.data["data"]["changes"]["plan"]["after"] == "mine"

    def test_a_rolled_back_transaction_publishes_nothing(
        self, served: Served, reader: str, db: Session
    ) -> None:
        with listen(served.url, reader) as stream:
            stream.ready()
            with served.sessions() as session:
                marker(session, "rolled back")
                session.rollback()
                marker(session, "committed")  # same session: nothing left over from before
                session.commit()
            assert messages([stream.next()]) == ["committed"]
        db.rollback()
        assert [p["message"] for p in db.scalars(select(Outbox.payload))] == ["committed"]

    def test_savepoints(self, served: Served, reader: str, db: Session) -> None:
        """A released savepoint is not a commit; a rolled-back one drops only its own events."""
        with listen(served.url, reader) as stream:
            stream.ready()
            with served.sessions() as session:
                session.begin()
                with session.begin_nested():
                    marker(session, "savepoint released, transaction rolled back")
                session.rollback()
            with served.sessions() as session, session.begin():
                marker(session, "before the savepoint")
                savepoint = session.begin_nested()
                marker(session, "in a rolled-back savepoint")
                savepoint.rollback()
                with session.begin_nested():
                    marker(session, "in a released savepoint")
                marker(session, "after the savepoints")
            items = [stream.next() for _ in range(3)]
        assert messages(items) == [
            "before the savepoint",
            "in a released savepoint",
            "after the savepoints",
        ]
        assert [int(i.id or 0) for i in items] == outbox_ids(db)

    def test_resume_with_last_event_id(self, served: Served, reader: str, db: Session) -> None:
        def publish(message: str) -> int:
            with served.sessions() as session, session.begin():
                return marker(session, message)

        publish("before anyone listened")
        with listen(served.url, reader) as stream:
            stream.ready()  # no Last-Event-ID: no backlog
            publish("seen")
            seen = stream.next()
        assert messages([seen]) == ["seen"]

        # Published while the client was away.
        publish("missed 1")
        publish("missed 2")
        publish("missed 3")

        with listen(served.url, reader, headers={"Last-Event-ID": seen.id or ""}) as stream:
            missed = stream.backlog()
            assert messages(missed) == ["missed 1", "missed 2", "missed 3"]
            assert all(int(i.id or 0) > int(seen.id or 0) for i in missed)
            publish("live again")
            live = stream.next()
        assert messages([live]) == ["live again"]
        ids = [int(i.id or 0) for i in [seen, *missed, live]]
        assert ids == sorted(ids) == outbox_ids(db)[1:]

        # The query parameter works too, and the backlog honours the filters.
        with listen(served.url, reader, last_event_id=0) as stream:
            assert [i.id for i in stream.backlog()] == [str(i) for i in outbox_ids(db)]
        with listen(served.url, reader, last_event_id=0, types="account.created") as stream:
            assert stream.backlog() == []

        # The server forgets the streams of clients that went away.
        feed = served.app.state.tenure.live
        deadline = time.monotonic() + READ_TIMEOUT
        while feed.listeners and time.monotonic() < deadline:
            time.sleep(0.02)
        assert feed.listeners == 0

    def test_backlog_then_live_has_no_gap_and_no_duplicate(
        self, served: Served, reader: str, db: Session
    ) -> None:
        with served.sessions() as session, session.begin():
            first = marker(session, "old")
        with listen(served.url, reader, last_event_id=first - 1) as stream:
            assert messages(stream.backlog()) == ["old"]
            with served.sessions() as session, session.begin():
                marker(session, "new")
            assert messages([stream.next()]) == ["new"]


class TestLagging:
    def test_a_client_that_falls_behind_is_told_and_catches_up_from_the_outbox(
        self, settings: Settings, clock: FixedClock, engine: Engine, reader: str, db: Session
    ) -> None:
        feed = LiveFeed(queue_size=3)
        app = create_app(settings, clock=clock, engine=engine, live=feed)
        # Ten committed events, handed to the feed in one go on the server's loop (the way a
        # burst arrives faster than one stream drains it).
        with make_session_factory(engine)() as session, session.begin():
            ids = [marker(session, f"burst {i}") for i in range(10)]
        with make_session_factory(engine)() as session:
            burst = hub_service.live_backlog(session, after=0, types=None, account_id=None)
        assert [e.id for e in burst] == ids
        with serve(app) as url:
            with listen(url, reader) as stream:
                stream.ready()
                [listener] = list(feed._listeners)
                listener.loop.call_soon_threadsafe(feed.fan_out, burst)
                got = [stream.next() for _ in range(3)]
                lagged = stream.next()
                assert (lagged.event, lagged.data) == ("lagged", {"lagged": True})
                assert stream.ended()
            assert messages(got) == ["burst 0", "burst 1", "burst 2"]
            # Reconnecting with the last id received gets the rest, then the live stream.
            with listen(url, reader, headers={"Last-Event-ID": got[-1].id or ""}) as stream:
                rest = stream.backlog()
        assert [int(i.id or 0) for i in [*got, *rest]] == ids


class TestRedis:
    def test_events_reach_the_clients_of_every_api_process(
        self, settings: Settings, clock: FixedClock, engine: Engine, redis_url: str, db: Session
    ) -> None:
        with_redis = settings.model_copy(update={"redis_url": redis_url})
        # Configured by settings alone, an app listens on the shared channel.
        default = create_app(with_redis, clock=clock, engine=engine).state.tenure.live
        assert isinstance(default, RedisLiveFeed) and default.channel == CHANNEL

        # A channel of this test alone: parallel test runs share the Redis server.
        channel = f"tenure:live:test:{uuid.uuid4().hex}"
        api_1 = create_app(
            with_redis, clock=clock, engine=engine, live=RedisLiveFeed(redis_url, channel=channel)
        )
        api_2 = create_app(
            with_redis, clock=clock, engine=engine, live=RedisLiveFeed(redis_url, channel=channel)
        )
        # A worker process: its own sessions, publishing to Redis, listening to nothing.
        worker_sessions = make_session_factory(engine)
        worker_feed = RedisLiveFeed(redis_url, channel=channel)
        worker_feed.attach(worker_sessions)
        key = make_api_key(db, now=NOW, scopes=["read", "write"])
        db.commit()

        with (
            serve(api_1) as url_1,
            serve(api_2) as url_2,
            listen(url_1, key) as stream_1,
            listen(url_2, key) as stream_2,
        ):
            stream_1.ready()
            stream_2.ready()
            with worker_sessions() as session:
                marker(session, "rolled back in the worker")
                session.rollback()
                event_id = marker(session, "from the worker")
                session.commit()
            got_1, got_2 = stream_1.next(), stream_2.next()
            assert messages([got_1, got_2]) == ["from the worker", "from the worker"]
            assert got_1.id == got_2.id == str(event_id)

            # Committed by API process 1: its clients and those of process 2 get it.
            created = httpx.post(
                f"{url_1}/api/v1/accounts",
                json={"external_id": "acc_redis", "name": "Harbourview Venue"},
                headers=bearer(key),
                timeout=READ_TIMEOUT,
            )
            assert created.status_code == 201
            for stream in (stream_1, stream_2):
                item = stream.next()
                assert item.event == "account.created"
                assert item.data["account_id"] == created.json()["id"]
        worker_feed.stop()
