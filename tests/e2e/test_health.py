"""Browser: health on the account page (gauge, factors, an override set through the form and
shown beside the score) and the accounts list filtered by risk level.

A server of its own, on a database with scored accounts (the shared one has none).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import uvicorn
from playwright.sync_api import Page, expect

from tenure.accounts import service as accounts_service
from tenure.app import create_app
from tenure.clock import SystemClock
from tenure.config import Settings
from tenure.db import make_engine, make_session_factory, upgrade
from tenure.health import service as health_service
from tests.e2e.conftest import E2E_EMAIL, E2E_PASSWORD, _free_port
from tests.factories.accounts import make_account
from tests.factories.auth import make_user
from tests.web.test_health_pages import active_every_day

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def health_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("live-health")
    settings = Settings(
        env="test",
        database_url=f"sqlite:///{root / 'live.db'}",
        data_dir=root / "data",
        secret_key="e2e-secret-key-0123456789abcdef",
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    now = SystemClock().now()
    signup = now - timedelta(days=400)
    with make_session_factory(engine)() as db, db.begin():
        make_user(db, now=now, email=E2E_EMAIL, role="admin", password=E2E_PASSWORD)
        busy = make_account(db, now=signup, signup_at=signup, name="Busy Blooms")
        make_account(db, now=signup, signup_at=signup, name="Quiet Frames", mrr_cents=4900)
        active_every_day(db, busy.id, days=60, until=now.date())
        health_service.rescore(db, as_of=now, now=now)
        # Scored after the rescore: levels that do not depend on the season of the run.
        calm = [make_account(db, now=now, name=f"Calm Studio {i}") for i in range(3)]
        accounts_service.set_health(
            db,
            [
                {"id": a.id, "health_score": 12.0, "health_risk": "critical", "health_as_of": now}
                for a in calm
            ],
        )
        make_account(db, now=now, name="Calm Venue")
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, engine=engine),
            host="127.0.0.1",
            port=_free_port(),
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    port = server.config.port
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


def _log_in(page: Page, base: str, path: str) -> None:
    page.goto(f"{base}{path}")
    page.get_by_label("Email").fill(E2E_EMAIL)
    page.get_by_label("Password").fill(E2E_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base}{path}")


def test_gauge_factors_and_an_override_beside_the_score(page: Page, health_server: str) -> None:
    _log_in(page, health_server, "/accounts")
    page.get_by_role("link", name="Quiet Frames").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Quiet Frames")

    gauge = page.get_by_role("img", name=re.compile(r"^Health score [\d.]+ out of 100, "))
    expect(gauge).to_be_visible()
    factors = page.locator(".factor-list li")
    expect(factors.first).to_be_visible()
    expect(page.locator(".factor-list")).to_contain_text(
        "Nobody from the account has been active for 365 days"
    )
    expect(page.locator("tr.missing").first).to_contain_text("no data")

    page.get_by_text("Override the score").click()
    page.get_by_label("Score, 0 to 100").fill("80")
    page.get_by_label("Risk level").select_option("medium")
    page.get_by_label("Reason (kept in the audit log)").fill(
        "Renewal signed on the phone; usage data lags"
    )
    page.get_by_role("button", name="Save override").click()

    expect(page.get_by_role("status")).to_contain_text("Override saved")
    override = page.locator("#override")
    expect(override).to_contain_text("Renewal signed on the phone; usage data lags")
    expect(override).to_contain_text(f"By {E2E_EMAIL}")
    expect(override.get_by_role("img", name="Health 80, Medium")).to_be_visible()
    # The computed score is still on the gauge beside it.
    expect(gauge).to_be_visible()
    expect(override.get_by_role("button", name="Remove override")).to_be_visible()


def test_filter_the_accounts_list_by_risk(page: Page, health_server: str) -> None:
    _log_in(page, health_server, "/accounts")
    expect(page.locator("#result-count")).to_have_text("6 accounts")
    page.evaluate("window.__marker = 'same page'")
    page.get_by_role("searchbox", name="Search accounts").fill("calm")
    expect(page.locator("#result-count")).to_have_text("4 accounts")

    # Matched by name: the label "Risk" is also in badge names such as "Health 34, High risk".
    risk = page.locator("select[name=risk]")
    risk.select_option("critical")
    expect(page).to_have_url(re.compile(r"q=calm.*risk=critical"))
    expect(page.locator("#result-count")).to_have_text("3 accounts")
    names = page.locator("#accounts-table tbody tr td:first-child")
    expect(names).to_have_text(["Calm Studio 0", "Calm Studio 1", "Calm Studio 2"])
    expect(page.get_by_role("img", name="Health 12, Critical")).to_have_count(3)

    risk.select_option("unscored")
    expect(page.locator("#result-count")).to_have_text("1 account")
    expect(names).to_have_text(["Calm Venue"])
    expect(page.locator("#accounts-table tbody")).to_contain_text("not scored")
    assert page.evaluate("window.__marker") == "same page"
