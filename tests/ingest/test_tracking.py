"""The tracking API, driven over HTTP the way SDKs drive it."""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tenure.accounts.models import Account, Contact
from tenure.ingest.models import Event, UsageDaily
from tenure.ingest.rollup import ACTIVE_USERS, ALL_EVENTS
from tests.conftest import NOW
from tests.factories.auth import make_api_key

PROBLEM = "application/problem+json"


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def write_key(db: Session) -> str:
    key = make_api_key(db, now=NOW, scopes=["ingest"], name="segment")
    db.commit()
    return key


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def track(
    i: int,
    *,
    user: str = "u1",
    group: str | None = "acc_1",
    event: str = "login",
    at: datetime = NOW - timedelta(hours=1),
    **extra: Any,
) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "type": "track",
        "messageId": f"m{i}",
        "userId": user,
        "event": event,
        "timestamp": iso(at),
        "properties": {"n": i},
    }
    if group:
        msg["context"] = {"groupId": group}
    msg.update(extra)
    return msg


def group_call(i: int, group: str = "acc_1", **traits: Any) -> dict[str, Any]:
    return {
        "type": "group",
        "messageId": f"g{i}",
        "userId": "u1",
        "groupId": group,
        "traits": {
            "name": "Bloom & Wild Florals",
            "plan": "professional",
            "mrr": 79,
            "category": "florist",
            "country": "GB",
            "timezone": "Europe/London",
            **traits,
        },
        "timestamp": iso(NOW - timedelta(hours=2)),
    }


def post(
    client: TestClient,
    key: str,
    batch: list[dict[str, Any]],
    path: str = "/v1/batch",
    **kwargs: Any,
) -> Any:
    return client.post(
        path, json={"batch": batch, "sentAt": iso(NOW)}, headers=basic(key), **kwargs
    )


def count(db: Session, model: type) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(model)) or 0


def usage(db: Session, metric: str) -> dict[date, int]:
    db.rollback()
    rows = db.execute(select(UsageDaily.day, UsageDaily.count).where(UsageDaily.metric == metric))
    return dict(rows.all())


class TestContract:
    def test_success_is_exactly_200_with_success_true(
        self, client: TestClient, write_key: str, db: Session
    ) -> None:
        response = post(client, write_key, [group_call(1), track(1), track(2)])
        assert response.status_code == 200
        assert response.json() == {"success": True}
        assert count(db, Event) == 3

    @pytest.mark.parametrize("path", ["/v1/batch/", "/batch/", "/batch", "/v1/track/"])
    def test_no_path_redirects(self, client: TestClient, write_key: str, path: str) -> None:
        body: Any = {"batch": [track(1)]} if "batch" in path else track(1)
        if path.startswith("/batch"):
            body = {
                "api_key": write_key,
                "batch": [{"event": "login", "distinct_id": "u1", "uuid": "p1", "properties": {}}],
            }
        response = client.post(path, json=body, headers=basic(write_key), follow_redirects=False)
        assert response.status_code == 200, response.text

    def test_write_key_from_body(self, client: TestClient, write_key: str) -> None:
        response = client.post("/v1/batch", json={"batch": [track(1)], "writeKey": write_key})
        assert response.status_code == 200

    def test_gzip_and_deflate_bodies(self, client: TestClient, write_key: str, db: Session) -> None:
        raw = json.dumps({"batch": [track(1)]}).encode()
        gz = client.post(
            "/v1/batch",
            content=gzip.compress(raw),
            headers={
                **basic(write_key),
                "Content-Encoding": "gzip",
                "Content-Type": "application/json",
            },
        )
        raw2 = json.dumps({"batch": [track(2)]}).encode()
        df = client.post(
            "/v1/batch",
            content=zlib.compress(raw2),
            headers={
                **basic(write_key),
                "Content-Encoding": "deflate",
                "Content-Type": "application/json",
            },
        )
        assert gz.status_code == df.status_code == 200
        assert count(db, Event) == 2

    @pytest.mark.parametrize(
        ("headers", "status", "code"),
        [
            ({}, 401, "missing_write_key"),
            (
                {"Authorization": "Basic " + base64.b64encode(b"tn_wrong:").decode()},
                401,
                "invalid_write_key",
            ),
        ],
    )
    def test_bad_keys(
        self, client: TestClient, headers: dict[str, str], status: int, code: str
    ) -> None:
        response = client.post("/v1/batch", json={"batch": [track(1)]}, headers=headers)
        assert response.status_code == status
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == code and response.json()["message"]

    def test_key_without_ingest_scope_is_403(self, client: TestClient, db: Session) -> None:
        key = make_api_key(db, now=NOW, scopes=["read"])
        db.commit()
        response = post(client, key, [track(1)])
        assert response.status_code == 403 and response.json()["code"] == "forbidden"


class TestBadInput:
    def test_invalid_messages_are_listed_and_nothing_is_stored(
        self, client: TestClient, write_key: str, db: Session
    ) -> None:
        batch = [
            track(0),
            {"type": "explode", "messageId": "x", "userId": "u"},
            {"type": "track", "messageId": "y", "event": "login"},
            track(3, timestamp="yesterday-ish"),
            track(4, properties=[1, 2]),
            "nope",
        ]
        response = post(client, write_key, batch)
        assert response.status_code == 400
        body = response.json()
        assert body["code"] == "invalid_batch"
        assert [e["index"] for e in body["errors"]] == [1, 2, 3, 4, 5]
        reasons = " | ".join(e["reason"] for e in body["errors"])
        assert "unknown type 'explode'" in reasons and "userId or anonymousId" in reasons
        assert "timestamp" in reasons and "properties must be an object" in reasons
        assert count(db, Event) == 0

    def test_not_json(self, client: TestClient, write_key: str) -> None:
        response = client.post("/v1/batch", content=b"{nope", headers=basic(write_key))
        assert response.status_code == 400 and response.json()["code"] == "invalid_json"

    def test_message_over_32_kb(self, client: TestClient, write_key: str) -> None:
        response = post(client, write_key, [track(1, properties={"blob": "x" * 40_000})])
        assert response.status_code == 400
        assert "32 KB" in response.json()["errors"][0]["reason"]

    def test_request_over_the_cap_is_413(self, client: TestClient, write_key: str) -> None:
        huge = gzip.compress(b'{"batch": [' + b" " * (17 * 2**20) + b"]}")
        response = client.post(
            "/v1/batch", content=huge, headers={**basic(write_key), "Content-Encoding": "gzip"}
        )
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"


class TestIdempotency:
    def test_resends_are_acknowledged_but_not_counted(
        self, client: TestClient, write_key: str, db: Session
    ) -> None:
        batch = [group_call(1), track(1), track(2, event="client_added")]
        assert post(client, write_key, batch).status_code == 200
        assert post(client, write_key, batch).status_code == 200
        assert (
            post(client, write_key, [track(2, event="client_added"), track(3)]).status_code == 200
        )
        assert count(db, Event) == 4
        day = (NOW - timedelta(hours=1)).date()
        assert usage(db, ALL_EVENTS) == {day: 3}
        assert usage(db, "login") == {day: 2}
        assert usage(db, ACTIVE_USERS) == {day: 1}


class TestMapping:
    def test_group_and_identify_fill_account_and_contact(
        self, client: TestClient, write_key: str, db: Session
    ) -> None:
        identify = {
            "type": "identify",
            "messageId": "i1",
            "userId": "u1",
            "context": {
                "groupId": "acc_1",
                "traits": {"email": "ava@bloom.example", "name": "Ava Stone", "role": "owner"},
            },
            "timestamp": iso(NOW - timedelta(hours=3)),
        }
        assert post(client, write_key, [identify, group_call(1)]).status_code == 200
        db.rollback()
        account = db.scalars(select(Account)).one()
        assert (account.name, account.plan, account.category, account.country) == (
            "Bloom & Wild Florals",
            "professional",
            "florist",
            "GB",
        )
        assert account.mrr_cents == 7900 and account.hemisphere == "north"
        contact = db.scalars(select(Contact)).one()
        assert (contact.email, contact.name, contact.role) == (
            "ava@bloom.example",
            "Ava Stone",
            "owner",
        )
        assert contact.account_id == account.id

    def test_older_group_call_does_not_overwrite_newer_traits(
        self, client: TestClient, write_key: str, db: Session
    ) -> None:
        newer = group_call(1, plan="scale")
        newer["timestamp"] = iso(NOW - timedelta(hours=1))
        older = group_call(2, plan="starter")
        older["timestamp"] = iso(NOW - timedelta(days=2))
        post(client, write_key, [newer])
        post(client, write_key, [older])
        db.rollback()
        assert db.scalars(select(Account)).one().plan == "scale"

    def test_events_before_their_account_are_linked_when_it_arrives(
        self, client: TestClient, write_key: str, db: Session
    ) -> None:
        post(client, write_key, [track(1), track(2)])
        db.rollback()
        assert db.scalar(select(func.count()).where(Event.account_id.is_(None))) == 2
        assert usage(db, ALL_EVENTS) == {}
        post(client, write_key, [group_call(1)])
        db.rollback()
        assert db.scalar(select(func.count()).where(Event.account_id.is_(None))) == 0
        assert usage(db, ALL_EVENTS) == {(NOW - timedelta(hours=1)).date(): 2}
        account = db.scalars(select(Account)).one()
        assert account.rescore_requested_at == NOW

    def test_late_event_updates_the_day_it_happened(
        self, client: TestClient, write_key: str, db: Session
    ) -> None:
        post(client, write_key, [group_call(1), track(1)])
        three_days_ago = NOW - timedelta(days=3)
        post(client, write_key, [track(9, at=three_days_ago, event="invoice_sent")])
        days = usage(db, ALL_EVENTS)
        assert days[three_days_ago.date()] == 1 and days[(NOW - timedelta(hours=1)).date()] == 1

    def test_alias_merges_anonymous_activity(
        self, client: TestClient, write_key: str, db: Session
    ) -> None:
        anon = {
            "type": "track",
            "messageId": "a1",
            "anonymousId": "anon-7",
            "event": "login",
            "timestamp": iso(NOW - timedelta(hours=5)),
        }
        post(client, write_key, [group_call(1), anon])
        identify = {
            "type": "identify",
            "messageId": "i1",
            "userId": "u9",
            "anonymousId": "anon-7",
            "traits": {"email": "new@bloom.example"},
            "context": {"groupId": "acc_1"},
            "timestamp": iso(NOW - timedelta(hours=4)),
        }
        post(client, write_key, [identify])
        db.rollback()
        contact = db.scalars(select(Contact).where(Contact.external_id == "u9")).one()
        event = db.scalars(select(Event).where(Event.message_id == "a1")).one()
        assert event.contact_id == contact.id
        assert usage(db, ALL_EVENTS) == {(NOW - timedelta(hours=5)).date(): 1}


class TestTime:
    def test_clock_skew_is_corrected_with_sent_at(
        self, client: TestClient, write_key: str, db: Session
    ) -> None:
        # The device clock is 2 hours fast: it stamped and sent at NOW+2h (device time).
        device = NOW + timedelta(hours=2)
        msg = track(1, at=device - timedelta(minutes=10))
        client.post(
            "/v1/batch", json={"batch": [msg], "sentAt": iso(device)}, headers=basic(write_key)
        )
        db.rollback()
        event = db.scalars(select(Event)).one()
        assert event.timestamp == NOW - timedelta(minutes=10)
        assert event.flags == []

    def test_future_events_are_clamped_and_flagged(
        self, client: TestClient, write_key: str, db: Session
    ) -> None:
        msg = track(1, at=NOW + timedelta(days=30))
        client.post("/v1/batch", json={"batch": [msg]}, headers=basic(write_key))
        db.rollback()
        event = db.scalars(select(Event)).one()
        assert event.timestamp == NOW and "future_clamped" in event.flags

    def test_replays_of_old_batches_keep_their_times(
        self, client: TestClient, write_key: str, db: Session
    ) -> None:
        old = NOW - timedelta(days=90)
        client.post(
            "/v1/batch",
            json={"batch": [track(1, at=old)], "sentAt": iso(old)},
            headers=basic(write_key),
        )
        db.rollback()
        event = db.scalars(select(Event)).one()
        assert event.timestamp == old and "skew_ignored" in event.flags


def test_posthog_batch_maps_events(
    client: TestClient, write_key: str, db: Session, key_client: Callable[..., TestClient]
) -> None:
    body = {
        "api_key": write_key,
        "batch": [
            {
                "event": "$groupidentify",
                "distinct_id": "u1",
                "uuid": "p0",
                "properties": {
                    "$group_type": "company",
                    "$group_key": "acc_ph",
                    "$group_set": {"name": "Lens & Light", "plan": "starter"},
                },
                "timestamp": iso(NOW - timedelta(hours=2)),
            },
            {
                "event": "$identify",
                "distinct_id": "u1",
                "uuid": "p1",
                "properties": {
                    "$set": {"email": "l@lens.example"},
                    "$groups": {"company": "acc_ph"},
                },
                "timestamp": iso(NOW - timedelta(hours=2)),
            },
            {
                "event": "gallery_delivered",
                "distinct_id": "u1",
                "uuid": "p2",
                "properties": {"$groups": {"company": "acc_ph"}},
                "timestamp": iso(NOW - timedelta(hours=1)),
            },
            {
                "event": "$pageview",
                "distinct_id": "u1",
                "uuid": "p3",
                "properties": {"$current_url": "/galleries", "$groups": {"company": "acc_ph"}},
                "timestamp": iso(NOW - timedelta(hours=1)),
            },
        ],
    }
    assert client.post("/batch/", json=body).status_code == 200
    db.rollback()
    account = db.scalars(select(Account)).one()
    assert account.name == "Lens & Light"
    assert db.scalars(select(Contact)).one().email == "l@lens.example"
    assert usage(db, "gallery_delivered") == {(NOW - timedelta(hours=1)).date(): 1}
    assert usage(db, "$page") == {(NOW - timedelta(hours=1)).date(): 1}


def test_rate_limit_is_429_with_retry_after(
    settings: Any, clock: Any, engine: Any, db: Session
) -> None:
    from tenure.app import create_app

    key = make_api_key(db, now=NOW, scopes=["ingest"])
    db.commit()
    app = create_app(
        settings.model_copy(update={"ingest_rate_limit": "2/minute"}), clock=clock, engine=engine
    )
    with TestClient(app) as c:
        statuses = [post(c, key, [track(i)]).status_code for i in range(3)]
        assert statuses == [200, 200, 429]
        limited = post(c, key, [track(9)])
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["code"] == "rate_limited"


def test_events_waiting_for_an_account_created_by_the_rest_api(
    client: TestClient, write_key: str, db: Session, admin: dict[str, str]
) -> None:
    post(client, write_key, [track(1, group="acc_rest"), track(2, group="acc_rest")])
    client.post("/api/v1/session", json={"email": admin["email"], "password": admin["password"]})
    created = client.put(
        "/api/v1/accounts/bulk",
        json={
            "accounts": [
                {"external_id": "acc_rest", "name": "Made in the CRM", "timezone": "Europe/Paris"}
            ]
        },
    )
    assert created.status_code == 200, created.text
    db.rollback()
    assert db.scalar(select(func.count()).where(Event.account_id.is_(None))) == 0
    assert usage(db, ALL_EVENTS) == {(NOW - timedelta(hours=1)).date(): 2}


def test_concurrent_batches_share_commits_and_stay_exact(
    client: TestClient, write_key: str, db: Session
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    post(client, write_key, [group_call(1)])
    # Eight requests at once; every second one resends the previous one's messages.
    batches = [[track(10 * (i // 2) + k) for k in range(10)] for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda b: post(client, write_key, b).status_code, batches))
    assert statuses == [200] * 8
    assert count(db, Event) == 1 + 40
    assert usage(db, ALL_EVENTS) == {(NOW - timedelta(hours=1)).date(): 40}
