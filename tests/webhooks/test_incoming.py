"""Incoming hooks: admins create them, other systems post JSON to their secret URL, each post
becomes one `hook.received` event in the outbox (with the account it names, when known)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, func, select
from sqlalchemy.orm import Session

from tenure.hub.models import Outbox
from tenure.webhooks.models import IncomingHook
from tests.conftest import NOW
from tests.factories.accounts import make_account
from tests.factories.auth import make_user

PROBLEM = "application/problem+json"
MAX_BYTES = 256 * 1024


def create_hook(client: TestClient, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/v1/incoming-hooks", json={"name": "billing", **fields})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def post_raw(client: TestClient, path: str, body: bytes) -> Any:
    return client.post(path, content=body, headers={"Content-Type": "application/json"})


def outbox(db: Session) -> list[Outbox]:
    db.rollback()  # see what the app committed
    return list(db.scalars(select(Outbox).order_by(Outbox.id)))


def outbox_count(db: Session) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(Outbox)) or 0


def hook_row(db: Session, name: str = "billing") -> IncomingHook:
    db.rollback()
    row = db.scalar(select(IncomingHook).where(IncomingHook.name == name))
    assert row is not None
    return row


@pytest.fixture
def api(key_client: Callable[..., TestClient]) -> TestClient:
    """An admin's API key (cheaper than logging a user in)."""
    return key_client("read", "write", "admin")


def listed(client: TestClient, name: str = "billing") -> dict[str, Any]:
    hooks = {h["name"]: h for h in client.get("/api/v1/incoming-hooks").json()}
    return hooks[name]  # type: ignore[no-any-return]


class TestAdmin:
    def test_admin_creates_a_hook_and_sees_its_token_once(
        self, admin_client: TestClient, db: Session
    ) -> None:
        created = create_hook(
            admin_client, description="Stripe events", account_path="data.object.customer"
        )
        token = created["token"]
        assert created["url_path"] == f"/api/v1/hooks/{token}"
        assert created["name"] == "billing" and created["description"] == "Stripe events"
        assert created["account_path"] == "data.object.customer"
        assert created["enabled"] is True
        assert created["received"] == 0 and created["last_received_at"] is None
        assert token.startswith(created["token_prefix"])

        hooks = admin_client.get("/api/v1/incoming-hooks").json()
        assert [h["id"] for h in hooks] == [created["id"]]
        assert "token" not in hooks[0] and "url_path" not in hooks[0]
        assert token not in json.dumps(hooks)

    def test_a_csm_cannot_create_or_delete_hooks(
        self, admin_client: TestClient, app: Any, db: Session
    ) -> None:
        created = create_hook(admin_client)
        make_user(db, now=NOW, email="csm@example.com", role="csm", password="csm-password-123")
        db.commit()
        with TestClient(app) as csm:
            login = csm.post(
                "/api/v1/session", json={"email": "csm@example.com", "password": "csm-password-123"}
            )
            assert login.status_code == 200
            refused = csm.post("/api/v1/incoming-hooks", json={"name": "support"})
            assert refused.status_code == 403
            assert refused.headers["content-type"] == PROBLEM
            assert csm.delete(f"/api/v1/incoming-hooks/{created['id']}").status_code == 403
            # Reading the list is fine (it holds no token).
            assert [h["name"] for h in csm.get("/api/v1/incoming-hooks").json()] == ["billing"]
        assert [h.name for h in db.scalars(select(IncomingHook))] == ["billing"]

    def test_an_api_key_without_admin_scope_is_refused(
        self, key_client: Callable[..., TestClient]
    ) -> None:
        writer = key_client("read", "write")
        assert writer.post("/api/v1/incoming-hooks", json={"name": "billing"}).status_code == 403
        admin_key = key_client("admin")
        assert admin_key.post("/api/v1/incoming-hooks", json={"name": "billing"}).status_code == 201

    def test_unauthenticated_is_401(self, client: TestClient) -> None:
        assert client.post("/api/v1/incoming-hooks", json={"name": "billing"}).status_code == 401

    def test_invalid_name_or_account_path_is_422(self, api: TestClient, db: Session) -> None:
        for fields in [
            {"name": "Billing Events"},  # capitals and a space
            {"name": ""},
            {"name": "-starts-with-dash"},
            {"name": "x" * 101},
            {"name": "ok", "account_path": "data..customer"},
            {"name": "ok", "account_path": ".data"},
            {"name": "ok", "account_path": "data.customer!"},
            {"name": "ok", "account_path": "a" * 201},
            {"name": "ok", "unexpected": 1},
        ]:
            response = api.post("/api/v1/incoming-hooks", json=fields)
            assert response.status_code == 422, fields
            assert response.headers["content-type"] == PROBLEM
        db.rollback()
        assert db.scalar(select(func.count()).select_from(IncomingHook)) == 0

    def test_names_are_unique(self, api: TestClient) -> None:
        create_hook(api)
        again = api.post("/api/v1/incoming-hooks", json={"name": "billing"})
        assert again.status_code == 409
        assert len(api.get("/api/v1/incoming-hooks").json()) == 1

    def test_the_token_is_not_stored_in_clear(self, api: TestClient, db: Session) -> None:
        created = create_hook(api, account_path="customer")
        token = created["token"]
        row = hook_row(db)
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token.startswith(row.token_prefix) and len(row.token_prefix) < len(token)
        # Nowhere in the database: not the hook row, not the audit log, nothing.
        db.rollback()
        schema = MetaData()
        schema.reflect(bind=db.connection())
        for table in schema.sorted_tables:
            for values in db.execute(select(table)):
                assert token not in repr(tuple(values)), table.name

    def test_each_hook_has_its_own_token(self, api: TestClient) -> None:
        first = create_hook(api, account_path="customer")
        second = create_hook(api, name="support", account_path="ticket.org")
        assert first["token"] != second["token"]
        post = api.post(second["url_path"], json={"ticket": {"org": "x"}})
        assert post.status_code == 202
        assert listed(api, "support")["received"] == 1
        assert listed(api, "billing")["received"] == 0


class TestReceive:
    def test_a_post_becomes_one_hook_received_event_with_the_account(
        self, api: TestClient, db: Session
    ) -> None:
        account = make_account(db, now=NOW, external_id="cus_123")
        db.commit()
        hook = create_hook(api, account_path="data.object.customer")
        before = outbox_count(db)
        body = {
            "type": "invoice.payment_failed",
            "data": {"object": {"customer": "cus_123", "amount_due": 7900, "lines": [1, 2]}},
        }
        # The public endpoint needs no credentials: the token in the path is the secret.
        with TestClient(api.app) as anonymous:
            response = anonymous.post(hook["url_path"], json=body)
        assert response.status_code == 202, response.text
        accepted = response.json()
        assert accepted == {
            "accepted": True,
            "event_id": accepted["event_id"],
            "account_id": str(account.id),
        }

        rows = outbox(db)
        assert len(rows) == before + 1
        event = rows[-1]
        assert event.id == accepted["event_id"]
        assert (event.event_type, event.version) == ("hook.received", 1)
        assert event.account_id == account.id
        assert event.payload == {
            "hook_id": hook["id"],
            "hook_name": "billing",
            "account_id": str(account.id),
            "account_external_id": "cus_123",
            "body": body,
        }

    def test_unknown_account_keeps_its_external_id(self, api: TestClient, db: Session) -> None:
        hook = create_hook(api, account_path="customer")
        response = api.post(hook["url_path"], json={"customer": "cus_unknown"})
        assert response.status_code == 202
        assert response.json()["account_id"] is None
        event = outbox(db)[-1]
        assert event.event_type == "hook.received" and event.account_id is None
        assert event.payload["account_id"] is None
        assert event.payload["account_external_id"] == "cus_unknown"
        assert event.payload["body"] == {"customer": "cus_unknown"}

    def test_account_resolution(self, api: TestClient, db: Session) -> None:
        account = make_account(db, now=NOW, external_id="4242")
        db.commit()
        cases: list[tuple[str | None, Any, str | None, bool]] = [
            ("account", {"account": 4242}, "4242", True),  # numeric ids are matched as text
            ("account", {"account": True}, None, False),  # not an id
            ("account", {"account": {"id": "4242"}}, None, False),
            ("a.b", {"a": "4242"}, None, False),  # the path goes through a string
            ("account", {"other": "4242"}, None, False),
            ("account", [{"account": "4242"}], None, False),  # an array has no path
            (None, {"account": "4242"}, None, False),  # no path configured
        ]
        for n, (account_path, body, external_id, known) in enumerate(cases):
            hook = create_hook(api, name=f"hook-{n}", account_path=account_path)
            response = api.post(hook["url_path"], json=body)
            assert response.status_code == 202
            expected = account.id if known else None
            assert response.json()["account_id"] == (str(expected) if expected else None), body
            event = outbox(db)[-1]
            assert event.account_id == expected
            assert event.payload["account_external_id"] == external_id, body
            assert event.payload["body"] == body

    def test_received_counter_and_last_received_at(self, api: TestClient, db: Session) -> None:
        hook = create_hook(api)
        for i in range(3):
            assert api.post(hook["url_path"], json={"n": i}).status_code == 202
        shown = listed(api)
        assert shown["received"] == 3
        assert datetime.fromisoformat(shown["last_received_at"]) == NOW
        row = hook_row(db)
        assert row.received == 3 and row.last_received_at == NOW
        events = [e for e in outbox(db) if e.event_type == "hook.received"]
        assert [e.payload["body"] for e in events] == [{"n": 0}, {"n": 1}, {"n": 2}]

    def test_an_array_is_accepted(self, api: TestClient, db: Session) -> None:
        hook = create_hook(api)
        response = api.post(hook["url_path"], json=[{"a": 1}, {"b": 2}])
        assert response.status_code == 202
        assert outbox(db)[-1].payload["body"] == [{"a": 1}, {"b": 2}]

    def test_a_body_of_exactly_the_limit_is_accepted(self, api: TestClient, db: Session) -> None:
        hook = create_hook(api)
        skeleton = b'{"pad":""}'
        body = b'{"pad":"' + b"x" * (MAX_BYTES - len(skeleton)) + b'"}'
        assert len(body) == MAX_BYTES
        response = post_raw(api, hook["url_path"], body)
        assert response.status_code == 202, response.text
        assert len(outbox(db)[-1].payload["body"]["pad"]) == MAX_BYTES - len(skeleton)


class TestRefused:
    @pytest.fixture
    def hook(self, api: TestClient) -> dict[str, Any]:
        return create_hook(api, account_path="customer")

    def assert_nothing_received(self, client: TestClient, db: Session, before: int) -> None:
        assert outbox_count(db) == before
        shown = listed(client)
        assert shown["received"] == 0 and shown["last_received_at"] is None

    def test_malformed_json_is_400_problem_and_publishes_nothing(
        self, api: TestClient, db: Session, hook: dict[str, Any]
    ) -> None:
        before = outbox_count(db)
        for body in [
            b'{"customer": "cus_1",',
            b"not json",
            b"",
            b"{'single': 'quotes'}",
            b'{"a": 1} {"b": 2}',
        ]:
            response = post_raw(api, hook["url_path"], body)
            assert response.status_code == 400, body
            assert response.headers["content-type"] == PROBLEM
            problem = response.json()
            assert problem["status"] == 400 and problem["detail"]
        self.assert_nothing_received(api, db, before)

    def test_json_that_is_not_an_object_or_array_is_400(
        self, api: TestClient, db: Session, hook: dict[str, Any]
    ) -> None:
        before = outbox_count(db)
        for body in [b"42", b'"text"', b"null", b"true", b"3.5"]:
            response = post_raw(api, hook["url_path"], body)
            assert response.status_code == 400, body
            assert response.headers["content-type"] == PROBLEM
            assert "object or array" in response.json()["detail"]
        self.assert_nothing_received(api, db, before)

    def test_over_256_kb_is_413(self, api: TestClient, db: Session, hook: dict[str, Any]) -> None:
        before = outbox_count(db)
        body = b'{"pad":"' + b"x" * MAX_BYTES + b'"}'
        response = post_raw(api, hook["url_path"], body)
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM
        self.assert_nothing_received(api, db, before)

    def test_unknown_token_is_404(self, api: TestClient, db: Session, hook: dict[str, Any]) -> None:
        before = outbox_count(db)
        wrong = hook["token"][:-4] + ("AAAA" if not hook["token"].endswith("AAAA") else "BBBB")
        for token in [wrong, "th_" + "z" * 32]:
            response = api.post(f"/api/v1/hooks/{token}", json={"customer": "x"})
            assert response.status_code == 404
            assert response.headers["content-type"] == PROBLEM
        self.assert_nothing_received(api, db, before)

    def test_a_deleted_hook_stops_accepting(
        self, api: TestClient, db: Session, hook: dict[str, Any]
    ) -> None:
        assert api.post(hook["url_path"], json={"n": 1}).status_code == 202
        deleted = api.delete(f"/api/v1/incoming-hooks/{hook['id']}")
        assert deleted.status_code == 204
        before = outbox_count(db)
        response = api.post(hook["url_path"], json={"n": 2})
        assert response.status_code == 404
        assert outbox_count(db) == before
        assert api.get("/api/v1/incoming-hooks").json() == []
        # Deleting twice: nothing there any more.
        assert api.delete(f"/api/v1/incoming-hooks/{hook['id']}").status_code == 404
