"""Browser tests: Settings → Webhooks, and the live activity panel of the System page.

These tests create accounts, so they run against a server of their own: the shared
`live_server` keeps the seeded account counts the accounts tests rely on.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from playwright.sync_api import ConsoleMessage, Page, expect

from tenure.app import create_app
from tenure.clock import SystemClock
from tenure.config import Settings
from tenure.db import make_engine, make_session_factory, upgrade
from tests.e2e.conftest import E2E_EMAIL, E2E_PASSWORD, _free_port
from tests.factories.auth import make_user

pytestmark = pytest.mark.e2e

# A public address written as an IP: accepted without DNS, and never called (no worker runs).
PUBLIC_URL = "https://93.184.215.14/tenure-hooks"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Tenure on uvicorn (loopback, free port), private destinations refused as in production."""
    root = tmp_path_factory.mktemp("webhooks")
    settings = Settings(
        env="test",
        database_url=f"sqlite:///{root / 'live.db'}",
        data_dir=root / "data",
        secret_key="e2e-secret-key-0123456789abcdef",
        redis_url=None,
        allow_private_destinations=False,
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    with make_session_factory(engine)() as db, db.begin():
        make_user(db, now=SystemClock().now(), email=E2E_EMAIL, role="admin", password=E2E_PASSWORD)
    port = _free_port()
    uv = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, engine=engine), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


@pytest.fixture
def csp_errors(page: Page) -> list[str]:
    """What the Content-Security-Policy blocked (an inline script or handler, say)."""
    errors: list[str] = []

    def watch(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            errors.append(message.text)

    page.on("console", watch)
    return errors


def _log_in(page: Page, base: str, path: str) -> None:
    page.goto(f"{base}{path}")
    page.get_by_label("Email").fill(E2E_EMAIL)
    page.get_by_label("Password").fill(E2E_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base}{path}")


def _api_key(page: Page, base: str) -> str:
    """A write key created the way an admin does it: in Settings."""
    page.goto(f"{base}/settings")
    page.get_by_label("Name").fill("live feed e2e")
    page.get_by_label("write").check()
    page.get_by_role("button", name="Create key").click()
    return page.locator("#new-key").inner_text().strip()


def test_create_an_endpoint_and_see_its_secret_once(
    page: Page, server: str, csp_errors: list[str]
) -> None:
    _log_in(page, server, "/settings")
    page.get_by_role("link", name="Webhooks").click()
    expect(page).to_have_url(f"{server}/settings/webhooks")
    expect(page.locator("#endpoints tbody")).to_contain_text("No webhook endpoints yet.")

    # The SSRF guard speaks in the form.
    page.get_by_label("URL").fill("http://127.0.0.1:8080/hooks")
    page.get_by_label("Description").fill("Warehouse")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.get_by_role("alert")).to_contain_text("a loopback address")
    expect(page.get_by_label("Description")).to_have_value("Warehouse")
    expect(page.locator("#endpoints tbody")).to_contain_text("No webhook endpoints yet.")

    page.get_by_label("URL").fill(PUBLIC_URL)
    page.get_by_label("account.created").check()
    page.get_by_label("alert.fired").check()
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.locator("#secret-notice")).to_contain_text("will not be shown on this page again")
    secret = page.locator("#new-secret").inner_text()
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/=]+", secret), secret
    row = page.locator("#endpoints tbody tr", has_text=PUBLIC_URL)
    expect(row).to_contain_text("account.created")
    expect(row).to_contain_text("enabled")

    page.goto(f"{server}/settings/webhooks")
    expect(page.locator("#endpoints tbody tr", has_text=PUBLIC_URL)).to_be_visible()
    expect(page.locator("#new-secret")).to_have_count(0)
    assert secret not in page.content()

    # Detail page: a test event, then pause the endpoint.
    page.get_by_role("link", name=PUBLIC_URL).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(PUBLIC_URL)
    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_role("status")).to_contain_text("webhook.test event was queued")
    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("status")).to_contain_text("Endpoint disabled")
    expect(page.get_by_role("button", name="Enable")).to_be_visible()

    # Deleting asks first.
    page.get_by_role("link", name="Delete…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete this endpoint?")
    page.get_by_role("button", name="Delete endpoint").click()
    expect(page.get_by_role("status")).to_contain_text("Endpoint deleted")
    expect(page.locator("#endpoints tbody")).to_contain_text("No webhook endpoints yet.")
    assert csp_errors == []


def test_live_activity_shows_events_as_they_happen(
    page: Page, server: str, csp_errors: list[str]
) -> None:
    _log_in(page, server, "/system")
    key = _api_key(page, server)
    page.goto(f"{server}/system")
    panel = page.locator("#live")
    expect(panel.locator("#live-state")).to_have_text("live")
    expect(panel.locator("#live-events li")).to_have_count(0)

    api = httpx.Client(base_url=server, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    with api:
        name = "Bloom <em>&</em> Wild <img src=x>"
        created = api.post("/api/v1/accounts", json={"external_id": "live-1", "name": name})
        assert created.status_code == 201, created.text
        account_id = created.json()["id"]

        first = panel.locator("#live-events li").first
        expect(first).to_contain_text("account.created")
        link = first.get_by_role("link")
        expect(link).to_have_text(name)  # shown as text, not markup
        expect(link).to_have_attribute("href", f"/accounts/{account_id}")
        expect(panel.locator("#live-events em, #live-events img")).to_have_count(0)
        expect(panel.locator("#live-empty")).to_be_hidden()

        changed = api.patch(f"/api/v1/accounts/{account_id}", json={"plan": "studio"})
        assert changed.status_code == 200, changed.text
        expect(panel.locator("#live-events li")).to_have_count(2)
        expect(panel.locator("#live-events li").first).to_contain_text("account.updated")
        expect(panel.locator("#live-events li").first).to_contain_text("changed plan")
        # The name learnt from account.created labels the later event's link too.
        expect(panel.locator("#live-events li").first.get_by_role("link")).to_have_text(name)

        # A burst: newest first, and only the last 50 are kept.
        bulk = api.put(
            "/api/v1/accounts/bulk",
            json={
                "accounts": [
                    {"external_id": f"bulk-{i:02d}", "name": f"Bulk {i:02d}"} for i in range(60)
                ]
            },
        )
        assert bulk.status_code == 200, bulk.text
    expect(panel.locator("#live-events li")).to_have_count(50)
    expect(panel.locator("#live-events li").first).to_contain_text("account.created")
    ids = [
        int(i)
        for i in panel.locator("#live-events li").evaluate_all(
            "rows => rows.map(r => r.getAttribute('data-event-id'))"
        )
    ]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 50

    panel.locator("#live-events li").first.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bulk")
    assert csp_errors == []
