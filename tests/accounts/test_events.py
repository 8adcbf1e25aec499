"""Account and ingest events in the outbox: `account.created` / `account.updated` from every
path that writes accounts, and one `event.ingested` per account per batch or import."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tenure.accounts.models import Account
from tenure.db import make_session_factory
from tenure.hub.models import Outbox
from tenure.ingest.csvimport import ImportRejected, ImportReport, import_csv
from tenure.kit.actor import Actor
from tests.conftest import NOW
from tests.factories.accounts import make_account

CREATED, UPDATED, INGESTED = "account.created", "account.updated", "event.ingested"


def last_id(db: Session) -> int:
    db.rollback()  # see what the app committed
    return db.scalar(select(func.max(Outbox.id))) or 0


def published(db: Session, *types: str, after: int = 0) -> list[Outbox]:
    db.rollback()
    query = select(Outbox).where(Outbox.id > after).order_by(Outbox.id)
    if types:
        query = query.where(Outbox.event_type.in_(types))
    return list(db.scalars(query))


def by_external_id(db: Session, external_id: str) -> Account:
    db.rollback()
    account = db.scalar(select(Account).where(Account.external_id == external_id))
    assert account is not None, external_id
    return account


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def api(key_client: Callable[..., TestClient]) -> TestClient:
    return key_client("read", "write")


@pytest.fixture
def ingest(key_client: Callable[..., TestClient]) -> Callable[[list[dict[str, Any]]], Any]:
    """Send one tracking batch the way Segment's SDKs do (bearer write key)."""
    client = key_client("ingest")

    def send(batch: list[dict[str, Any]]) -> Any:
        return client.post("/v1/batch", json={"batch": batch, "sentAt": iso(NOW)})

    return send


def group_call(message_id: str, group: str, *, when: datetime, **traits: Any) -> dict[str, Any]:
    return {
        "type": "group",
        "messageId": message_id,
        "userId": "u-admin",
        "groupId": group,
        "traits": {"name": "Bloom & Wild Florals", "plan": "starter", "mrr": 29, **traits},
        "timestamp": iso(when),
    }


def track(message_id: str, *, user: str, group: str | None, when: datetime) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "track",
        "messageId": message_id,
        "userId": user,
        "event": "gallery_upload",
        "timestamp": iso(when),
        "properties": {},
    }
    if group is not None:
        message["context"] = {"groupId": group}
    return message


class TestAccountApi:
    def test_create_publishes_one_account_created(self, api: TestClient, db: Session) -> None:
        before = last_id(db)
        response = api.post(
            "/api/v1/accounts",
            json={
                "external_id": "acc_new",
                "name": "Emma Clarke Photography",
                "category": "photographer",
                "plan": "professional",
                "mrr_cents": 7900,
                "currency": "GBP",
                "country": "GB",
            },
        )
        assert response.status_code == 201, response.text
        account_id = response.json()["id"]
        events = published(db, after=before)
        assert [e.event_type for e in events] == [CREATED]
        event = events[0]
        assert event.version == 1 and event.account_id == uuid.UUID(account_id)
        payload = dict(event.payload)
        assert at(payload.pop("signup_at")) == NOW
        assert payload == {
            "account_id": account_id,
            "external_id": "acc_new",
            "name": "Emma Clarke Photography",
            "category": "photographer",
            "plan": "professional",
            "status": "active",
            "mrr_cents": 7900,
            "currency": "GBP",
        }

    def test_a_refused_create_publishes_nothing(self, api: TestClient, db: Session) -> None:
        make_account(db, now=NOW, external_id="taken")
        db.commit()
        before = last_id(db)
        duplicate = api.post("/api/v1/accounts", json={"external_id": "taken", "name": "Again"})
        assert duplicate.status_code == 409
        invalid = api.post(
            "/api/v1/accounts", json={"external_id": "x", "name": "X", "mrr_cents": -1}
        )
        assert invalid.status_code == 422
        assert published(db, after=before) == []

    def test_patch_publishes_exactly_the_changed_fields(self, api: TestClient, db: Session) -> None:
        account = make_account(db, now=NOW, plan="starter", mrr_cents=2900, name="Petal Lane")
        db.commit()
        before = last_id(db)
        response = api.patch(
            f"/api/v1/accounts/{account.id}",
            # name is sent but unchanged: not an event field
            json={"plan": "professional", "mrr_cents": 7900, "name": "Petal Lane"},
        )
        assert response.status_code == 200, response.text
        events = published(db, after=before)
        assert [e.event_type for e in events] == [UPDATED]
        assert events[0].account_id == account.id
        assert events[0].payload == {
            "account_id": str(account.id),
            "changes": {
                "plan": {"before": "starter", "after": "professional"},
                "mrr_cents": {"before": 2900, "after": 7900},
            },
        }

    def test_patch_changing_nothing_publishes_nothing(self, api: TestClient, db: Session) -> None:
        account = make_account(db, now=NOW, plan="starter", mrr_cents=2900)
        db.commit()
        before = last_id(db)
        same = api.patch(
            f"/api/v1/accounts/{account.id}", json={"plan": "starter", "mrr_cents": 2900}
        )
        assert same.status_code == 200
        assert api.patch(f"/api/v1/accounts/{account.id}", json={}).status_code == 200
        assert published(db, after=before) == []

    def test_patch_values_of_other_types_are_plain_json(self, api: TestClient, db: Session) -> None:
        account = make_account(db, now=NOW, country="US", tags=["vip"])
        db.commit()
        before = last_id(db)
        response = api.patch(
            f"/api/v1/accounts/{account.id}",
            json={"status": "churned", "country": "AU", "tags": ["vip", "wedding"]},
        )
        assert response.status_code == 200
        [event] = published(db, after=before)
        changes = event.payload["changes"]
        assert changes["status"] == {"before": "active", "after": "churned"}
        assert changes["country"] == {"before": "US", "after": "AU"}
        # The hemisphere follows the country; churned_at is set with the status.
        assert changes["hemisphere"] == {"before": "north", "after": "south"}
        assert changes["tags"] == {"before": ["vip"], "after": ["vip", "wedding"]}
        assert changes["churned_at"]["before"] is None
        assert at(changes["churned_at"]["after"]) == NOW
        assert set(changes) == {"status", "country", "hemisphere", "tags", "churned_at"}


class TestBulkUpsert:
    def test_two_created_one_updated_one_unchanged(self, api: TestClient, db: Session) -> None:
        changed = make_account(db, now=NOW, external_id="b_old", plan="starter")
        make_account(db, now=NOW, external_id="b_same", plan="starter")
        db.commit()
        before = last_id(db)
        response = api.put(
            "/api/v1/accounts/bulk",
            json={
                "accounts": [
                    {"external_id": "b_new1", "name": "New One", "plan": "starter"},
                    {"external_id": "b_old", "plan": "scale"},
                    {"external_id": "b_same", "plan": "starter"},
                    {"external_id": "b_new2", "name": "New Two", "mrr_cents": 4900},
                ]
            },
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"created": 2, "updated": 1, "unchanged": 1}
        events = published(db, after=before)
        assert sorted(e.event_type for e in events) == [CREATED, CREATED, UPDATED]
        created = {e.payload["external_id"]: e for e in events if e.event_type == CREATED}
        assert set(created) == {"b_new1", "b_new2"}
        for external_id, event in created.items():
            assert event.account_id == by_external_id(db, external_id).id
            assert event.payload["account_id"] == str(event.account_id)
        assert created["b_new1"].payload["plan"] == "starter"
        assert created["b_new2"].payload["mrr_cents"] == 4900
        [updated] = [e for e in events if e.event_type == UPDATED]
        assert updated.account_id == changed.id
        assert updated.payload["changes"] == {"plan": {"before": "starter", "after": "scale"}}

    def test_a_refused_bulk_upsert_publishes_nothing(self, api: TestClient, db: Session) -> None:
        before = last_id(db)
        response = api.put(
            "/api/v1/accounts/bulk",
            json={"accounts": [{"external_id": "ok", "name": "Ok"}, {"external_id": "nameless"}]},
        )
        assert response.status_code == 422
        assert published(db, after=before) == []

    def test_csv_import_of_accounts_announces_them(self, engine: Engine, db: Session) -> None:
        text = "external_id,name,plan\na1,Bloom Florals,starter\na2,Lens & Light,starter\n"
        run_import(engine, "accounts", text, chunk_rows=1)
        first = published(db, CREATED, UPDATED)
        assert sorted(e.payload["external_id"] for e in first) == ["a1", "a2"]
        assert {e.event_type for e in first} == {CREATED}
        before = last_id(db)
        run_import(
            engine, "accounts", text.replace("a2,Lens & Light,starter", "a2,Lens & Light,pro")
        )
        [updated] = published(db, after=before)
        assert updated.event_type == UPDATED
        assert updated.account_id == by_external_id(db, "a2").id
        assert updated.payload["changes"] == {"plan": {"before": "starter", "after": "pro"}}

    def test_a_rejected_csv_import_publishes_nothing(self, engine: Engine, db: Session) -> None:
        # The first rows are written before the bad one is read: all of it rolls back.
        text = "external_id,name,mrr\na1,Bloom Florals,29\na2,Lens & Light,29\na3,Bad,lots\n"
        report = run_import(engine, "accounts", text, chunk_rows=1)
        assert report.status == "rejected"
        assert published(db) == []


def run_import(engine: Engine, kind: str, text: str, *, chunk_rows: int = 0) -> ImportReport:
    """One import in its own transaction, as the CLI and the API run it."""
    with make_session_factory(engine)() as session:
        try:
            with session.begin():
                return import_csv(
                    session,
                    kind,
                    io.BytesIO(text.encode()),
                    actor=Actor.cli("tenure import"),
                    now=NOW,
                    chunk_rows=chunk_rows or None,
                )
        except ImportRejected as exc:
            return exc.report


class TestGroupCalls:
    def test_group_creates_then_a_later_group_updates(
        self, ingest: Callable[[list[dict[str, Any]]], Any], db: Session
    ) -> None:
        first = ingest([group_call("g1", "acc_t", when=NOW - timedelta(hours=3), country="GB")])
        assert first.status_code == 200, first.text
        [created] = published(db, CREATED, UPDATED)
        account = by_external_id(db, "acc_t")
        assert created.event_type == CREATED and created.account_id == account.id
        assert created.payload["external_id"] == "acc_t"
        assert created.payload["name"] == "Bloom & Wild Florals"
        assert created.payload["plan"] == "starter"
        assert created.payload["mrr_cents"] == 2900
        assert at(created.payload["signup_at"]) == NOW - timedelta(hours=3)

        before = last_id(db)
        later = group_call("g2", "acc_t", when=NOW - timedelta(hours=1), plan="business", mrr=99)
        assert ingest([later]).status_code == 200
        [updated] = published(db, CREATED, UPDATED, after=before)
        assert updated.event_type == UPDATED and updated.account_id == account.id
        assert updated.payload["changes"] == {
            "plan": {"before": "starter", "after": "business"},
            "mrr_cents": {"before": 2900, "after": 9900},
        }

    def test_an_older_group_call_publishes_no_account_event(
        self, ingest: Callable[[list[dict[str, Any]]], Any], db: Session
    ) -> None:
        ingest([group_call("g1", "acc_t", when=NOW - timedelta(hours=1), plan="business")])
        before = last_id(db)
        stale = group_call("g0", "acc_t", when=NOW - timedelta(days=2), plan="starter")
        assert ingest([stale]).status_code == 200
        assert published(db, CREATED, UPDATED, after=before) == []
        assert by_external_id(db, "acc_t").plan == "business"

    def test_several_group_calls_in_one_batch_make_one_event(
        self, ingest: Callable[[list[dict[str, Any]]], Any], db: Session
    ) -> None:
        batch = [
            group_call("g2", "acc_t", when=NOW - timedelta(hours=1), plan="business"),
            group_call("g1", "acc_t", when=NOW - timedelta(hours=2), plan="starter"),
        ]
        assert ingest(batch).status_code == 200
        [created] = published(db, CREATED, UPDATED)
        assert created.event_type == CREATED
        assert created.payload["plan"] == "business"  # the newest traits win

    def test_a_resent_group_call_publishes_nothing_new(
        self, ingest: Callable[[list[dict[str, Any]]], Any], db: Session
    ) -> None:
        call = group_call("g1", "acc_t", when=NOW - timedelta(hours=1))
        ingest([call])
        before = last_id(db)
        assert ingest([call]).status_code == 200
        assert published(db, after=before) == []


class TestEventIngested:
    def test_one_event_per_account_per_batch(
        self, ingest: Callable[[list[dict[str, Any]]], Any], db: Session
    ) -> None:
        a = make_account(db, now=NOW, external_id="acc_a")
        b = make_account(db, now=NOW, external_id="acc_b")
        db.commit()
        before = last_id(db)
        batch = [
            track("m1", user="ua", group="acc_a", when=NOW - timedelta(hours=3)),
            track("m2", user="ua", group="acc_a", when=NOW - timedelta(hours=1)),
            track("m3", user="ub", group="acc_b", when=NOW - timedelta(hours=2)),
            track("m4", user="ua2", group="acc_a", when=NOW - timedelta(hours=5)),
            track("m5", user="nobody", group=None, when=NOW - timedelta(hours=4)),  # no account
        ]
        response = ingest(batch)
        assert response.status_code == 200, response.text
        events = published(db, after=before)
        assert {e.event_type for e in events} == {INGESTED}
        got = {e.account_id: e.payload for e in events}
        assert set(got) == {a.id, b.id} and len(events) == 2
        assert got[a.id]["account_id"] == str(a.id)
        assert got[a.id]["events"] == 3
        assert at(got[a.id]["first_at"]) == NOW - timedelta(hours=5)
        assert at(got[a.id]["last_at"]) == NOW - timedelta(hours=1)
        assert got[b.id]["events"] == 1
        assert at(got[b.id]["first_at"]) == at(got[b.id]["last_at"]) == NOW - timedelta(hours=2)

    def test_resends_publish_only_what_is_new(
        self, ingest: Callable[[list[dict[str, Any]]], Any], db: Session
    ) -> None:
        a = make_account(db, now=NOW, external_id="acc_a")
        db.commit()
        batch = [
            track("m1", user="ua", group="acc_a", when=NOW - timedelta(hours=3)),
            track("m2", user="ua", group="acc_a", when=NOW - timedelta(hours=2)),
        ]
        assert ingest(batch).status_code == 200
        before = last_id(db)
        resent = ingest(batch)
        assert resent.status_code == 200 and resent.json() == {"success": True}
        assert published(db, after=before) == []

        newer = track("m3", user="ua", group="acc_a", when=NOW - timedelta(minutes=5))
        assert ingest([*batch, newer]).status_code == 200
        [event] = published(db, after=before)
        assert event.event_type == INGESTED and event.account_id == a.id
        assert event.payload["events"] == 1
        assert at(event.payload["first_at"]) == at(event.payload["last_at"])
        assert at(event.payload["first_at"]) == NOW - timedelta(minutes=5)

    def test_a_batch_that_fails_validation_publishes_nothing(
        self, ingest: Callable[[list[dict[str, Any]]], Any], db: Session
    ) -> None:
        make_account(db, now=NOW, external_id="acc_a")
        db.commit()
        before = last_id(db)
        batch = [
            group_call("g1", "acc_brand_new", when=NOW - timedelta(hours=1)),
            track("m1", user="ua", group="acc_a", when=NOW - timedelta(hours=1)),
            {"type": "track", "messageId": "bad", "event": "login"},  # no userId
        ]
        response = ingest(batch)
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_batch"
        assert published(db, after=before) == []
        db.rollback()
        assert db.scalar(select(Account).where(Account.external_id == "acc_brand_new")) is None

    def test_a_csv_import_publishes_one_event_per_account(
        self, engine: Engine, db: Session
    ) -> None:
        a1 = make_account(db, now=NOW, external_id="a1")
        a2 = make_account(db, now=NOW, external_id="a2")
        db.commit()
        before = last_id(db)
        text = (
            "account_id,user_id,event,timestamp\n"
            "a1,u1,login,2026-06-10T09:00:00Z\n"
            "a2,u3,login,2026-06-12T10:00:00Z\n"
            "a1,u2,gallery_upload,2026-06-09T08:00:00Z\n"
            "a1,u1,login,2026-06-11T08:00:00Z\n"
            "zz,u9,login,2026-06-11T08:00:00Z\n"  # no such account (yet): no event
        )
        # One row per chunk: many pipeline batches, still one event per account.
        report = run_import(engine, "events", text, chunk_rows=1)
        assert report.status == "imported" and report.stored == 5, report.errors
        events = published(db, after=before)
        assert {e.event_type for e in events} == {INGESTED} and len(events) == 2
        got = {e.account_id: e.payload for e in events}
        assert got[a1.id]["events"] == 3
        assert at(got[a1.id]["first_at"]) == datetime(2026, 6, 9, 8, tzinfo=UTC)
        assert at(got[a1.id]["last_at"]) == datetime(2026, 6, 11, 8, tzinfo=UTC)
        assert got[a2.id]["events"] == 1
        assert at(got[a2.id]["first_at"]) == datetime(2026, 6, 12, 10, tzinfo=UTC)

        before = last_id(db)
        again = run_import(engine, "events", text, chunk_rows=2)
        assert again.stored == 0 and again.duplicates == 5
        assert published(db, after=before) == []
