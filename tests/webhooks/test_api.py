"""/api/v1/webhooks and /api/v1/webhook-deliveries: what an admin does with outbound webhooks.

Deliveries are sent by the worker's real path (dispatcher fan-out, WebhookSender) to a real
HTTP receiver on 127.0.0.1; the FixedClock is shared with the app.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tenure.app import create_app
from tenure.clock import FixedClock
from tenure.config import Settings
from tenure.webhooks.service import SECRET_OVERLAP
from tests.factories.auth import make_api_key, make_user
from tests.webhooks.test_sender import Harness, Receiver, ingested, signatures, verify

BASE = "/api/v1/webhooks"
DELIVERIES = "/api/v1/webhook-deliveries"
PUBLIC_URL = "https://93.184.216.34/tenure"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hub(engine: Engine, clock: FixedClock) -> Harness:
    return Harness(engine, clock)


@pytest.fixture
def api(key_client: Callable[..., TestClient]) -> TestClient:
    """An admin's API key (quicker than a password login; one test logs in instead)."""
    return key_client("admin")


def create(client: TestClient, url: str, **fields: Any) -> dict[str, Any]:
    response = client.post(BASE, json={"url": url, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_problem(response: Response, status: int, *fragments: str) -> dict[str, Any]:
    """An RFC 9457 problem whose detail explains what is wrong."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    for fragment in fragments:
        assert fragment in body["detail"]
    return body


class TestAccess:
    def test_anonymous_callers_are_refused(self, client: TestClient) -> None:
        assert_problem(client.get(BASE), 401, "Authentication required")
        assert_problem(client.post(BASE, json={"url": PUBLIC_URL}), 401)
        assert_problem(client.get(f"{DELIVERIES}/{uuid.uuid4()}"), 401)

    def test_a_key_without_the_admin_scope_is_forbidden(
        self, key_client: Callable[..., TestClient]
    ) -> None:
        writer = key_client("read", "write")
        assert_problem(writer.get(BASE), 403, "admin")
        assert_problem(writer.post(BASE, json={"url": PUBLIC_URL}), 403, "admin")
        assert_problem(writer.get(f"{DELIVERIES}/{uuid.uuid4()}"), 403, "admin")
        assert writer.get("/api/v1/accounts").status_code == 200  # the key itself works

    def test_a_csm_user_is_forbidden(self, app: FastAPI, db: Session, clock: FixedClock) -> None:
        make_user(
            db, email="csm@example.com", role="csm", password="a long password!", now=clock.now()
        )
        db.commit()
        with TestClient(app) as csm:
            login = csm.post(
                "/api/v1/session", json={"email": "csm@example.com", "password": "a long password!"}
            )
            assert login.status_code == 200
            assert_problem(csm.get(BASE), 403, "admin")


class TestEndpoints:
    def test_create_returns_the_endpoint_and_its_signing_secret(
        self, api: TestClient, clock: FixedClock
    ) -> None:
        created = create(
            api,
            PUBLIC_URL,
            event_types=["health.changed", "account.created", "health.changed"],
            description="CRM sync",
        )

        assert created["url"] == PUBLIC_URL
        assert created["description"] == "CRM sync"
        assert created["event_types"] == ["account.created", "health.changed"]
        assert created["enabled"] is True
        assert created["disabled_reason"] is None
        assert created["created_at"].startswith(clock.now().isoformat()[:19])
        secret = created["secret"]
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24
        # Each endpoint has its own secret.
        assert create(api, PUBLIC_URL)["secret"] != secret

    def test_list_get_patch_delete(self, admin_client: TestClient, clock: FixedClock) -> None:
        api = admin_client  # an admin logged in with a password
        first = create(api, PUBLIC_URL, description="first")
        clock.advance(timedelta(seconds=1))
        second = create(api, "http://93.184.216.34:8080/second")

        listed = api.get(BASE).json()
        assert [e["id"] for e in listed] == [first["id"], second["id"]]
        # The secret is only shown on creation and at its own URL.
        assert all("secret" not in e for e in listed)
        got = api.get(f"{BASE}/{first['id']}").json()
        assert "secret" not in got
        assert {k: got[k] for k in ("url", "description", "event_types")} == {
            "url": PUBLIC_URL,
            "description": "first",
            "event_types": [],
        }

        patched = api.patch(
            f"{BASE}/{first['id']}",
            json={"description": "renamed", "event_types": ["alert.fired"], "enabled": False},
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["description"] == "renamed"
        assert patched.json()["event_types"] == ["alert.fired"]
        assert patched.json()["enabled"] is False
        assert api.get(f"{BASE}/{first['id']}").json() == patched.json()
        assert_problem(
            api.patch(f"{BASE}/{first['id']}", json={"url": None}),
            422,
            "url cannot be null",
        )

        assert api.delete(f"{BASE}/{first['id']}").status_code == 204
        assert_problem(api.get(f"{BASE}/{first['id']}"), 404, first["id"])
        assert [e["id"] for e in api.get(BASE).json()] == [second["id"]]

    def test_the_secret_can_be_read_again(self, api: TestClient) -> None:
        created = create(api, PUBLIC_URL)
        secret = api.get(f"{BASE}/{created['id']}/secret")
        assert secret.status_code == 200
        assert secret.json() == {"secret": created["secret"], "previous_secret_expires_at": None}


BAD_CREATES: list[tuple[dict[str, Any], list[str]]] = [
    ({"url": "ftp://example.com/hook"}, ["not an http or https URL"]),
    ({"url": "javascript:alert(1)"}, ["not an http or https URL"]),
    ({"url": "https://hooks.example.invalid/tenure"}, ["does not resolve"]),
    ({"url": "https://user:pw@93.184.216.34/"}, ["credentials"]),
    (
        {"url": PUBLIC_URL, "event_types": ["account.created", "account.exploded"]},
        ["unknown event types: account.exploded"],
    ),
    ({"event_types": []}, ["url", "Field required"]),
    ({"url": PUBLIC_URL, "secret": "whsec_mine"}, ["secret"]),
]


class TestValidation:
    def test_bad_input_is_refused_with_the_reason(self, api: TestClient) -> None:
        for body, fragments in BAD_CREATES:
            assert_problem(api.post(BASE, json=body), 422, *fragments)
        assert api.get(BASE).json() == []

    def test_a_patch_is_checked_like_a_create(self, api: TestClient) -> None:
        created = create(api, PUBLIC_URL)
        path = f"{BASE}/{created['id']}"
        assert_problem(api.patch(path, json={"url": "ftp://example.com"}), 422, "http or https")
        assert_problem(api.patch(path, json={"event_types": ["nope"]}), 422, "unknown event types")
        got = api.get(path).json()
        assert (got["url"], got["event_types"]) == (PUBLIC_URL, [])

    def test_a_bad_status_filter_or_cursor_is_refused(self, api: TestClient) -> None:
        created = create(api, PUBLIC_URL)
        path = f"{BASE}/{created['id']}/deliveries"
        assert_problem(api.get(path, params={"status": "lost"}), 422, "status")
        assert_problem(api.get(path, params={"cursor": "garbage"}), 422, "cursor")
        assert_problem(api.get(path, params={"limit": 0}), 422, "limit")


@pytest.fixture
def strict_client(
    database_url: str, tmp_path: Path, clock: FixedClock, engine: Engine, db: Session
) -> Iterator[TestClient]:
    """An admin of an installation that keeps webhooks off private networks (the default)."""
    settings = Settings(
        env="test",
        database_url=database_url,
        data_dir=tmp_path / "data",
        secret_key="test-secret-key-that-is-long-enough-0123456789",
        redis_url=None,
        allow_private_destinations=False,
    )
    key = make_api_key(db, scopes=["admin"], now=clock.now())
    db.commit()
    app = create_app(settings, clock=clock, engine=engine)
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        yield client


PRIVATE_URLS = [
    ("http://127.0.0.1:8080/hook", "127.0.0.1, a loopback address"),
    ("http://localhost/hook", "a loopback address"),
    ("http://[::1]/hook", "::1, a loopback address"),
    ("http://10.0.0.5/hook", "10.0.0.5, a private address"),
    ("https://192.168.1.10/hook", "192.168.1.10, a private address"),
    ("http://169.254.169.254/latest/meta-data/", "link-local (cloud metadata)"),
]


class TestPrivateDestinations:
    def test_loopback_and_private_urls_are_refused(self, strict_client: TestClient) -> None:
        for url, kind in PRIVATE_URLS:
            body = assert_problem(
                strict_client.post(BASE, json={"url": url}), 422, kind, "resolves to"
            )
            assert body["field"] == "url"
        assert strict_client.get(BASE).json() == []

    def test_a_patch_to_a_private_url_is_refused(self, strict_client: TestClient) -> None:
        created = create(strict_client, PUBLIC_URL)
        assert_problem(
            strict_client.patch(
                f"{BASE}/{created['id']}", json={"url": "http://10.1.1.1/internal"}
            ),
            422,
            "private address",
        )
        assert strict_client.get(f"{BASE}/{created['id']}").json()["url"] == PUBLIC_URL

    def test_they_are_accepted_where_private_destinations_are_allowed(
        self, api: TestClient
    ) -> None:
        assert create(api, "http://127.0.0.1:8080/hook")["enabled"] is True


ROUTES_WITH_IDS = [
    ("GET", BASE + "/{id}", None),
    ("PATCH", BASE + "/{id}", {"description": "x"}),
    ("DELETE", BASE + "/{id}", None),
    ("GET", BASE + "/{id}/secret", None),
    ("POST", BASE + "/{id}/rotate-secret", None),
    ("POST", BASE + "/{id}/test", None),
    ("GET", BASE + "/{id}/deliveries", None),
    ("POST", BASE + "/{id}/replay", {"start": "2026-06-01T00:00Z", "end": "2026-06-16T00:00Z"}),
    ("GET", DELIVERIES + "/{id}", None),
    ("POST", DELIVERIES + "/{id}/replay", None),
]


class TestNotFound:
    def test_unknown_ids_are_404(self, api: TestClient) -> None:
        known = create(api, PUBLIC_URL)
        for method, path, body in ROUTES_WITH_IDS:
            unknown = str(uuid.uuid4())
            response = api.request(method, path.format(id=unknown), json=body)
            assert_problem(response, 404, unknown)
        assert api.get(f"{BASE}/{known['id']}").status_code == 200

    def test_a_malformed_id_is_422(self, api: TestClient) -> None:
        assert_problem(api.get(f"{BASE}/not-a-uuid"), 422, "endpoint_id")


class TestSecretRotation:
    def test_after_a_rotation_both_secrets_sign_until_the_old_one_expires(
        self, api: TestClient, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        created = create(api, receiver.url())
        old = created["secret"]

        rotated = api.post(f"{BASE}/{created['id']}/rotate-secret")
        assert rotated.status_code == 200
        new = rotated.json()["secret"]
        assert new.startswith("whsec_")
        assert new != old
        expires = clock.now() + SECRET_OVERLAP
        assert rotated.json()["previous_secret_expires_at"].startswith(expires.isoformat()[:19])
        assert api.get(f"{BASE}/{created['id']}/secret").json()["secret"] == new

        hub.publish(ingested(uuid.uuid4(), 1, clock.now()))
        hub.round()
        [during] = receiver.requests
        assert len(signatures(during.headers)) == 2
        assert verify(new, during.headers, during.body)
        assert verify(old, during.headers, during.body)
        # Each signature on its own is valid under one of the two secrets.
        for signature in signatures(during.headers):
            alone = {**during.headers, "webhook-signature": signature}
            assert verify(new, alone, during.body) != verify(old, alone, during.body)

        clock.advance(SECRET_OVERLAP + timedelta(minutes=1))
        hub.publish(ingested(uuid.uuid4(), 2, clock.now()))
        hub.round()
        after = receiver.requests[1]
        assert len(signatures(after.headers)) == 1
        assert verify(new, after.headers, after.body)
        assert not verify(old, after.headers, after.body)


class TestTestEvent:
    def test_a_test_event_goes_only_to_its_endpoint(
        self, api: TestClient, hub: Harness, receiver: Receiver
    ) -> None:
        target = create(api, receiver.url("/target"))
        bystander = create(api, receiver.url("/bystander"))

        queued = api.post(f"{BASE}/{target['id']}/test")
        assert queued.status_code == 202
        assert queued.json()["queued"] is True
        assert isinstance(queued.json()["event_id"], int)
        # Queued, not sent from the request: the worker sends it.
        assert receiver.requests == []

        hub.fan_out()
        hub.round()

        [request] = receiver.at("/target")
        assert request.json["type"] == "webhook.test"
        assert request.json["data"]["endpoint_id"] == target["id"]
        assert "test from Tenure" in request.json["data"]["message"]
        assert verify(target["secret"], request.headers, request.body)
        assert receiver.at("/bystander") == []
        target_log = api.get(f"{BASE}/{target['id']}/deliveries").json()["items"]
        assert [(d["event_type"], d["status"]) for d in target_log] == [
            ("webhook.test", "delivered")
        ]
        bystander_log = api.get(f"{BASE}/{bystander['id']}/deliveries").json()
        assert bystander_log["items"] == []


class TestDeliveryLog:
    def test_deliveries_are_listed_newest_first_filtered_by_status_and_paged(
        self, api: TestClient, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        endpoint = create(api, receiver.url())
        receiver.responder = lambda request: 500 if request.events in (2, 4) else 200
        for n in range(1, 6):
            hub.publish(ingested(uuid.uuid4(), n, clock.now()))
            clock.advance(timedelta(minutes=1))
        hub.round()
        path = f"{BASE}/{endpoint['id']}/deliveries"

        everything = api.get(path).json()
        assert len(everything["items"]) == 5
        outbox_ids = [d["outbox_id"] for d in everything["items"]]
        assert outbox_ids == sorted(outbox_ids, reverse=True)
        assert everything["next_cursor"] is None

        pending = api.get(path, params={"status": "pending"}).json()["items"]
        delivered = api.get(path, params={"status": "delivered"}).json()["items"]
        assert api.get(path, params={"status": "failed"}).json()["items"] == []
        assert len(pending) == 2
        assert len(delivered) == 3
        for item in pending:
            assert (item["attempts"], item["last_status_code"]) == (1, 500)
            assert item["last_error"] == "HTTP 500"
            assert item["next_attempt_at"] is not None
            assert item["webhook_id"] == "msg_" + uuid.UUID(item["id"]).hex
        for item in delivered:
            assert (item["attempts"], item["last_status_code"]) == (1, 200)
            assert item["next_attempt_at"] is None
            assert item["delivered_at"] is not None
        sent_ids = {r.webhook_id for r in receiver.requests}
        assert {d["webhook_id"] for d in everything["items"]} == sent_ids

        pages: list[dict[str, Any]] = [api.get(path, params={"limit": 2}).json()]
        assert pages[0]["prev_cursor"] is None
        while pages[-1]["next_cursor"] and len(pages) < 5:
            cursor = pages[-1]["next_cursor"]
            pages.append(api.get(path, params={"limit": 2, "cursor": cursor}).json())
        ids = [[d["id"] for d in page["items"]] for page in pages]
        assert [len(p) for p in ids] == [2, 2, 1]
        assert [i for p in ids for i in p] == [d["id"] for d in everything["items"]]
        # And back from the second page to the first.
        back = api.get(path, params={"limit": 2, "cursor": pages[1]["prev_cursor"]}).json()
        assert [d["id"] for d in back["items"]] == ids[0]

    def test_a_delivery_shows_its_attempt_log(
        self, api: TestClient, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        create(api, receiver.url())
        receiver.script((500, "x" * 5000 + "END"), (200, "thanks"))
        hub.publish(ingested(uuid.uuid4(), 1, clock.now()))
        [delivery] = hub.deliveries()
        first_at = clock.now()
        hub.round()
        hub.until_retry(delivery.id)
        hub.round()

        response = api.get(f"{DELIVERIES}/{delivery.id}")
        assert response.status_code == 200
        detail = response.json()
        assert detail["status"] == "delivered"
        assert detail["attempts"] == 2
        assert detail["event_type"] == "event.ingested"
        assert detail["webhook_id"] == receiver.requests[0].webhook_id
        success, failure = detail["log"]  # newest first
        assert (success["status_code"], success["response"], success["error"]) == (
            200,
            "thanks",
            None,
        )
        assert failure["status_code"] == 500
        assert failure["error"] == "HTTP 500"
        # The receiver's answer is kept, cut at 1000 characters.
        assert failure["response"] == "x" * 1000
        assert failure["attempted_at"].startswith(first_at.isoformat()[:19])
        for attempt in detail["log"]:
            assert isinstance(attempt["latency_ms"], float)
            assert attempt["latency_ms"] >= 0

    def test_replaying_a_delivery_sends_it_again_with_the_same_webhook_id(
        self, api: TestClient, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        create(api, receiver.url())
        hub.publish(ingested(uuid.uuid4(), 1, clock.now()))
        [delivery] = hub.deliveries()
        hub.round()
        clock.advance(timedelta(hours=1))

        replayed = api.post(f"{DELIVERIES}/{delivery.id}/replay")
        assert replayed.status_code == 200
        assert (replayed.json()["status"], replayed.json()["attempts"]) == ("pending", 0)
        # A pending delivery is already going to be sent.
        assert_problem(api.post(f"{DELIVERIES}/{delivery.id}/replay"), 409, "pending")

        hub.round()
        first, again = receiver.requests
        assert again.webhook_id == first.webhook_id == replayed.json()["webhook_id"]
        assert again.body == first.body
        detail = api.get(f"{DELIVERIES}/{delivery.id}").json()
        assert detail["status"] == "delivered"
        assert len(detail["log"]) == 2

    def test_replaying_a_time_range_resends_failed_deliveries_by_default(
        self, api: TestClient, hub: Harness, receiver: Receiver, clock: FixedClock
    ) -> None:
        endpoint = create(api, receiver.url())
        path = f"{BASE}/{endpoint['id']}"
        start = clock.now()
        hub.publish(ingested(uuid.uuid4(), 1, clock.now()))
        hub.round()  # delivered
        clock.advance(timedelta(hours=1))
        receiver.script(410)
        hub.publish(ingested(uuid.uuid4(), 2, clock.now()))
        hub.round()  # 410: failed, and the endpoint is disabled
        gone = api.get(path).json()
        assert gone["enabled"] is False
        assert "410" in gone["disabled_reason"]
        failed = api.get(f"{path}/deliveries", params={"status": "failed"}).json()
        [failed_delivery] = failed["items"]
        assert failed_delivery["last_status_code"] == 410

        # The receiver is fixed: enable the endpoint and replay what it missed.
        clock.advance(timedelta(hours=1))
        enabled = api.patch(path, json={"enabled": True}).json()
        assert (enabled["enabled"], enabled["disabled_reason"]) == (True, None)
        window = {"start": start.isoformat(), "end": clock.now().isoformat()}
        replayed = api.post(f"{path}/replay", json=window)
        assert replayed.status_code == 200
        assert replayed.json() == {"replayed": 1}
        hub.round()
        assert [r.events for r in receiver.requests] == [1, 2, 2]
        assert receiver.requests[2].webhook_id == failed_delivery["webhook_id"]

        # Every delivery of a window, not only failed ones, when asked.
        everything = {
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
            "failed_only": False,
        }
        assert api.post(f"{path}/replay", json=everything).json() == {"replayed": 1}
        hub.round()
        assert [r.events for r in receiver.requests] == [1, 2, 2, 1]
        # A window with nothing failed in it.
        assert api.post(f"{path}/replay", json=window).json() == {"replayed": 0}

    def test_a_replay_window_must_be_valid(self, api: TestClient) -> None:
        path = f"{BASE}/{create(api, PUBLIC_URL)['id']}/replay"
        assert_problem(
            api.post(path, json={"start": "2026-06-02T00:00:00Z", "end": "2026-06-01T00:00:00Z"}),
            422,
            "end must be after start",
        )
        assert_problem(
            api.post(path, json={"start": "2026-06-01T00:00:00", "end": "2026-06-02T00:00:00Z"}),
            422,
            "start",
        )
