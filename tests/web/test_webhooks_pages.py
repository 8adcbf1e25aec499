"""Settings → Webhooks: endpoints, their delivery log and replays, from the dashboard."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tenure.clock import FixedClock
from tenure.db import make_session_factory
from tenure.hub import service as hub_service
from tenure.hub.events import AlertFired
from tenure.webhooks.sender import WebhookSender
from tenure.worker.runtime import build_dispatcher
from tests.conftest import NOW, login
from tests.factories.accounts import make_account
from tests.factories.auth import make_user
from tests.receivers import Received, Receiver, run_async

# A real receiver on loopback, one per test process; each _send sets its answer.
SERVER = Receiver()
RECEIVER = SERVER.url + "/tenure-hook"


def _csrf(client: TestClient, path: str = "/settings/webhooks") -> str:
    token = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert token
    return token.group(1)


def _create(client: TestClient, url: str = RECEIVER, **fields: object) -> httpx.Response:
    return client.post("/settings/webhooks", data={"csrf": _csrf(client), "url": url, **fields})


def _endpoint_id(client: TestClient, url: str = RECEIVER) -> str:
    assert _create(client, url).status_code == 201
    (endpoint,) = [e for e in client.get("/api/v1/webhooks").json() if e["url"] == url]
    return str(endpoint["id"])


def _alert(db: Session, message: str) -> None:
    hub_service.publish(
        db,
        AlertFired(alert_id=uuid.uuid4(), rule="test", severity="info", message=message),
        account_id=None,
        now=NOW,
    )


def _dispatch(engine: Engine) -> None:
    """What the worker does first: fan new outbox rows out into webhook deliveries."""
    build_dispatcher().dispatch_once(make_session_factory(engine), now=NOW)


def _send(engine: Engine, status: int, body: str = "ok") -> list[Received]:
    """One round of the worker's webhook sender against the receiver answering `status`."""
    SERVER.reply(status, body)
    SERVER.take()
    sender = WebhookSender(make_session_factory(engine), clock=FixedClock(NOW), allow_private=True)

    async def round_() -> None:
        async with sender.client() as client:
            await sender.run_once(client)

    run_async(round_())
    return SERVER.take()


def _delivery_ids(page: str) -> list[str]:
    return re.findall(r'href="/settings/webhooks/deliveries/([0-9a-f-]{36})"', page)


class TestAccess:
    def test_csm_cannot_open_or_change_webhooks(
        self, client: TestClient, admin_client: TestClient, db: Session
    ) -> None:
        endpoint_id = _endpoint_id(admin_client)
        client.cookies.clear()
        make_user(db, now=NOW, email="csm@example.com", role="csm", password="csm-password-123")
        db.commit()
        login(client, "csm@example.com", "csm-password-123")
        for path in (
            "/settings/webhooks",
            f"/settings/webhooks/{endpoint_id}",
            f"/settings/webhooks/{endpoint_id}/delete",
        ):
            assert client.get(path).status_code == 403, path
        token = _csrf(client, "/")
        created = client.post("/settings/webhooks", data={"csrf": token, "url": RECEIVER + "2"})
        deleted = client.post(f"/settings/webhooks/{endpoint_id}/delete", data={"csrf": token})
        assert created.status_code == 403 and deleted.status_code == 403
        assert client.get("/api/v1/webhooks").status_code == 403

    def test_anonymous_visitors_are_sent_to_log_in(self, client: TestClient) -> None:
        response = client.get("/settings/webhooks", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=%2Fsettings%2Fwebhooks"

    def test_forms_need_the_form_token(self, admin_client: TestClient) -> None:
        forged = admin_client.post("/settings/webhooks", data={"csrf": "forged", "url": RECEIVER})
        assert forged.status_code == 403
        assert admin_client.get("/api/v1/webhooks").json() == []

    def test_settings_links_to_webhooks(self, admin_client: TestClient) -> None:
        assert 'href="/settings/webhooks"' in admin_client.get("/settings").text


class TestEndpoints:
    def test_create_shows_the_secret_once(self, admin_client: TestClient) -> None:
        response = _create(
            admin_client,
            event_types=["account.created", "alert.fired"],
            description="Data <b>warehouse</b>",
        )
        assert response.status_code == 201
        shown = re.search(r'id="new-secret">(whsec_[^<]+)<', response.text)
        assert shown
        (endpoint,) = admin_client.get("/api/v1/webhooks").json()
        assert endpoint["event_types"] == ["account.created", "alert.fired"]
        secret = admin_client.get(f"/api/v1/webhooks/{endpoint['id']}/secret").json()["secret"]
        assert shown.group(1) == secret

        again = admin_client.get("/settings/webhooks").text
        assert "whsec_" not in again and secret not in again
        assert RECEIVER in again and "account.created" in again
        assert "Data &lt;b&gt;warehouse&lt;/b&gt;" in again and "<b>warehouse" not in again

    def test_no_event_type_means_all(self, admin_client: TestClient) -> None:
        _create(admin_client)
        row = re.search(
            r'<table class="table compact" id="endpoints">.*?</table>',
            admin_client.get("/settings/webhooks").text,
            re.S,
        )
        assert row and "<td>all</td>" in row.group(0)

    def test_bad_urls_show_the_reason_and_create_nothing(self, admin_client: TestClient) -> None:
        for url, reason in [
            ("ftp://example.com/hook", "is not an http or https URL"),
            ("https://user:pw@example.com/hook", "credentials in the URL are not allowed"),
            ("", "url: String should have at least 1 character"),
        ]:
            response = _create(admin_client, url, description="kept")
            assert response.status_code == 422, url
            error = re.search(
                r'<p class="error" role="alert" id="form-error">([^<]+)</p>', response.text
            )
            assert error and reason in error.group(1), (url, response.text)
            assert 'value="kept"' in response.text  # the form keeps what was typed
            assert "whsec_" not in response.text
        unknown = _create(admin_client, event_types=["account.created", "no.such"])
        assert unknown.status_code == 422 and "unknown event types: no.such" in unknown.text
        assert 'value="account.created" checked' in unknown.text
        assert admin_client.get("/api/v1/webhooks").json() == []

    def test_disable_and_enable(self, admin_client: TestClient) -> None:
        endpoint_id = _endpoint_id(admin_client)
        token = _csrf(admin_client)
        off = admin_client.post(
            f"/settings/webhooks/{endpoint_id}/disable",
            data={"csrf": token},
            follow_redirects=False,
        )
        assert off.status_code == 303
        assert off.headers["location"] == "/settings/webhooks?done=disabled"
        page = admin_client.get(off.headers["location"]).text
        assert "Endpoint disabled" in page and ">disabled</span>" in page
        assert f'action="/settings/webhooks/{endpoint_id}/enable"' in page
        assert f'action="/settings/webhooks/{endpoint_id}/test"' not in page
        assert admin_client.get(f"/api/v1/webhooks/{endpoint_id}").json()["enabled"] is False

        on = admin_client.post(
            f"/settings/webhooks/{endpoint_id}/enable",
            data={"csrf": token, "back": "detail"},
            follow_redirects=False,
        )
        assert on.headers["location"] == f"/settings/webhooks/{endpoint_id}?done=enabled"
        assert "Endpoint enabled" in admin_client.get(on.headers["location"]).text
        assert admin_client.get(f"/api/v1/webhooks/{endpoint_id}").json()["enabled"] is True

    def test_send_test_queues_a_delivery_to_this_endpoint_only(
        self, admin_client: TestClient, engine: Engine
    ) -> None:
        endpoint_id = _endpoint_id(admin_client)
        other_id = _endpoint_id(admin_client, RECEIVER + "/other")
        token = _csrf(admin_client)
        sent = admin_client.post(
            f"/settings/webhooks/{endpoint_id}/test", data={"csrf": token}, follow_redirects=False
        )
        assert sent.status_code == 303
        assert "webhook.test event was queued" in admin_client.get(sent.headers["location"]).text
        _dispatch(engine)
        page = admin_client.get(f"/settings/webhooks/{endpoint_id}").text
        assert "<code>webhook.test</code>" in page and len(_delivery_ids(page)) == 1
        assert _delivery_ids(admin_client.get(f"/settings/webhooks/{other_id}").text) == []

        admin_client.post(f"/settings/webhooks/{endpoint_id}/disable", data={"csrf": token})
        refused = admin_client.post(
            f"/settings/webhooks/{endpoint_id}/test",
            data={"csrf": token},
            headers={"Accept": "text/html"},
        )
        assert refused.status_code == 409 and "enable it to send a test" in refused.text
        # The API refuses too, rather than answering "queued" for a test never sent.
        assert admin_client.post(f"/api/v1/webhooks/{endpoint_id}/test").status_code == 409

    def test_rotate_shows_the_new_secret_once(self, admin_client: TestClient) -> None:
        endpoint_id = _endpoint_id(admin_client)
        old = admin_client.get(f"/api/v1/webhooks/{endpoint_id}/secret").json()["secret"]
        rotated = admin_client.post(
            f"/settings/webhooks/{endpoint_id}/rotate", data={"csrf": _csrf(admin_client)}
        )
        assert rotated.status_code == 200
        shown = re.search(r'id="new-secret">(whsec_[^<]+)<', rotated.text)
        assert shown and shown.group(1) != old
        assert (
            shown.group(1)
            == admin_client.get(f"/api/v1/webhooks/{endpoint_id}/secret").json()["secret"]
        )
        assert "previous secret keeps signing" in rotated.text
        assert "whsec_" not in admin_client.get("/settings/webhooks").text
        detail = admin_client.get(f"/settings/webhooks/{endpoint_id}").text
        assert "the previous secret also signs until" in detail and "whsec_" not in detail

    def test_delete_asks_first_then_deletes_with_the_log(
        self, admin_client: TestClient, db: Session, engine: Engine
    ) -> None:
        endpoint_id = _endpoint_id(admin_client)
        _alert(db, "one")
        db.commit()
        _dispatch(engine)
        listing = admin_client.get("/settings/webhooks").text
        assert f'href="/settings/webhooks/{endpoint_id}/delete"' in listing
        confirm = admin_client.get(f"/settings/webhooks/{endpoint_id}/delete").text
        assert "Delete this endpoint?" in confirm and RECEIVER in confirm
        assert "1 deliveries, 1 still pending" in confirm
        done = admin_client.post(
            f"/settings/webhooks/{endpoint_id}/delete",
            data={"csrf": _csrf(admin_client)},
            follow_redirects=False,
        )
        assert done.status_code == 303
        page = admin_client.get(done.headers["location"]).text
        assert "Endpoint deleted" in page and RECEIVER not in page
        assert admin_client.get(f"/api/v1/webhooks/{endpoint_id}").status_code == 404
        assert (
            admin_client.get(
                f"/settings/webhooks/{endpoint_id}", headers={"Accept": "text/html"}
            ).status_code
            == 404
        )


class TestDeliveryLog:
    def test_log_lists_deliveries_and_the_detail_shows_attempts(
        self, admin_client: TestClient, db: Session, engine: Engine
    ) -> None:
        endpoint_id = _endpoint_id(admin_client)
        account = make_account(db, now=NOW, name="Golden Hour Photography")
        _alert(db, "backlog growing")
        db.commit()
        _dispatch(engine)
        received = _send(engine, 200, "<b>thanks</b>")
        assert len(received) == 2

        page = admin_client.get(f"/settings/webhooks/{endpoint_id}").text
        ids = _delivery_ids(page)
        assert len(ids) == 2
        for delivery_id in ids:
            assert f"msg_{uuid.UUID(delivery_id).hex}" in page
        assert "<code>account.created</code>" in page and "<code>alert.fired</code>" in page
        assert page.count("HTTP 200") == 2 and page.count(">delivered</span>") == 2
        listing = admin_client.get("/settings/webhooks").text
        assert '<td class="num">2</td>' in listing  # delivered

        created = next(
            d
            for d in ids
            if admin_client.get(f"/api/v1/webhook-deliveries/{d}").json()["event_type"]
            == "account.created"
        )
        detail = admin_client.get(f"/settings/webhooks/deliveries/{created}").text
        assert f"msg_{uuid.UUID(created).hex}" in detail
        assert f'href="/accounts/{account.id}"' in detail
        assert '<pre class="response">&lt;b&gt;thanks&lt;/b&gt;</pre>' in detail
        assert "HTTP 200" in detail and ">Replay</button>" in detail

    def test_failures_show_errors_and_disable_reasons(
        self, admin_client: TestClient, db: Session, engine: Engine
    ) -> None:
        endpoint_id = _endpoint_id(admin_client)
        _alert(db, "one")
        db.commit()
        _dispatch(engine)
        _send(engine, 410, "gone")
        page = admin_client.get(f"/settings/webhooks/{endpoint_id}").text
        assert ">failed</span>" in page and "HTTP 410" in page
        listing = admin_client.get("/settings/webhooks").text
        assert "the endpoint answered 410 Gone" in listing
        assert NOW.strftime("%Y-%m-%d %H:%M UTC") in listing  # failing since
        (delivery_id,) = _delivery_ids(page)
        detail = admin_client.get(f"/settings/webhooks/deliveries/{delivery_id}").text
        assert "HTTP 410" in detail and '<pre class="response">gone</pre>' in detail

    def test_status_filter_and_pages(
        self, admin_client: TestClient, db: Session, engine: Engine
    ) -> None:
        endpoint_id = _endpoint_id(admin_client)
        for i in range(55):
            _alert(db, f"alert {i}")
        db.commit()
        _dispatch(engine)
        base = f"/settings/webhooks/{endpoint_id}"
        first = admin_client.get(base).text
        assert len(_delivery_ids(first)) == 50 and 'rel="prev"' not in first
        older = re.search(r'href="([^"]+)" rel="next"', first)
        assert older
        second = admin_client.get(older.group(1).replace("&amp;", "&")).text
        assert len(_delivery_ids(second)) == 5
        assert not set(_delivery_ids(second)) & set(_delivery_ids(first))
        newer = re.search(r'href="([^"]+)" rel="prev"', second)
        assert newer
        back = admin_client.get(newer.group(1).replace("&amp;", "&")).text
        assert _delivery_ids(back) == _delivery_ids(first)

        pending = admin_client.get(base + "?status=pending").text
        assert len(_delivery_ids(pending)) == 50 and "status=pending" in pending
        assert '<option value="pending" selected>' in pending
        failed = admin_client.get(base + "?status=failed").text
        assert _delivery_ids(failed) == [] and "No failed deliveries." in failed
        bad = admin_client.get(base + "?status=lost", headers={"Accept": "text/html"})
        assert bad.status_code == 422 and "unknown status" in bad.text

    def test_replay_sets_the_delivery_back_to_pending(
        self, admin_client: TestClient, db: Session, engine: Engine
    ) -> None:
        _endpoint_id(admin_client)
        _alert(db, "one")
        db.commit()
        _dispatch(engine)
        _send(engine, 200)
        (delivery,) = admin_client.get(
            "/api/v1/webhooks/"
            + admin_client.get("/api/v1/webhooks").json()[0]["id"]
            + "/deliveries"
        ).json()["items"]
        assert delivery["status"] == "delivered"
        path = f"/settings/webhooks/deliveries/{delivery['id']}"
        token = _csrf(admin_client, path)
        replayed = admin_client.post(path + "/replay", data={"csrf": token}, follow_redirects=False)
        assert replayed.status_code == 303
        page = admin_client.get(replayed.headers["location"]).text
        assert "set to be sent again" in page and ">pending</span>" in page
        assert ">Replay</button>" not in page
        state = admin_client.get(f"/api/v1/webhook-deliveries/{delivery['id']}").json()
        assert state["status"] == "pending" and state["attempts"] == 0
        assert len(state["log"]) == 1  # the earlier attempt stays in the log

        again = admin_client.post(path + "/replay", data={"csrf": token})
        assert again.status_code == 409 and "still pending" in again.text

        _send(engine, 200)
        assert (
            admin_client.get(f"/api/v1/webhook-deliveries/{delivery['id']}").json()["status"]
            == "delivered"
        )

    def test_replay_failed_deliveries_between_dates(
        self, admin_client: TestClient, db: Session, engine: Engine
    ) -> None:
        endpoint_id = _endpoint_id(admin_client)
        _alert(db, "one")
        db.commit()
        _dispatch(engine)
        _send(engine, 410)
        base = f"/settings/webhooks/{endpoint_id}"
        token = _csrf(admin_client, base)
        fmt = "%Y-%m-%dT%H:%M"
        window = {
            "csrf": token,
            "start": (NOW - timedelta(hours=1)).strftime(fmt),
            "end": (NOW + timedelta(hours=1)).strftime(fmt),
            "failed_only": "true",
        }
        done = admin_client.post(base + "/replay", data=window, follow_redirects=False)
        assert done.status_code == 303
        page = admin_client.get(done.headers["location"]).text
        assert "1 delivery set to be sent again." in page and ">pending</span>" in page

        none = admin_client.post(base + "/replay", data=window, follow_redirects=True)
        assert "No delivery in that range matched" in none.text

        backwards = admin_client.post(
            base + "/replay", data={**window, "start": window["end"], "end": window["start"]}
        )
        assert backwards.status_code == 422 and "end must be after start" in backwards.text
        assert f'value="{window["start"]}"' in backwards.text  # the form keeps what was typed
        garbled = admin_client.post(base + "/replay", data={**window, "start": "yesterday"})
        assert garbled.status_code == 422 and "is not a date or time" in garbled.text


class TestLivePanel:
    def test_system_page_has_the_live_panel_and_its_script(self, admin_client: TestClient) -> None:
        page = admin_client.get("/system")
        assert '<script src="/static/live.js" defer></script>' in page.text
        assert 'data-live-src="/api/v1/live"' in page.text
        assert "account.created" in re.search(r'data-live-types="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        script = admin_client.get("/static/live.js").text
        assert "textContent" in script and "innerHTML" not in script

    def test_the_session_cookie_opens_the_live_feed(self, admin_client: TestClient) -> None:
        with admin_client.stream("GET", "/api/v1/live") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                if line.startswith("event:"):
                    assert line == "event: ready"
                    break
