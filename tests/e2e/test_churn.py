"""Browser: the Models page (activate another version), the at-risk list and an account's
"Churn risk" panel predicted again in place with Predict now.

A server of its own on a copy of the simulated business with model v1 trained, a second
version kept as a candidate and every live account predicted; its clock is the tests' date.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import ConsoleMessage, Page, expect

from tenure.app import create_app
from tenure.churn import service
from tenure.clock import FixedClock
from tenure.config import Settings
from tenure.db import make_engine, make_session_factory
from tests.conftest import NOW
from tests.e2e.conftest import E2E_EMAIL, E2E_PASSWORD, _free_port
from tests.factories.auth import make_user
from tests.web.test_churn_pages import copy_model

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def churn_server(
    tmp_path_factory: pytest.TempPathFactory, churn_sqlite_template: Path
) -> Iterator[str]:
    root = tmp_path_factory.mktemp("live-churn")
    shutil.copy(churn_sqlite_template, root / "live.db")
    settings = Settings(
        env="test",
        database_url=f"sqlite:///{root / 'live.db'}",
        data_dir=root / "data",
        secret_key="e2e-secret-key-0123456789abcdef",
    )
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as db:
        make_user(db, now=NOW, email=E2E_EMAIL, role="admin", password=E2E_PASSWORD)
        service.predict(db, now=NOW)
        db.commit()
        copy_model(db, 2)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, engine=engine, clock=FixedClock(NOW)),
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
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


def test_activate_a_version_then_predict_an_account_at_risk(page: Page, churn_server: str) -> None:
    problems: list[str] = []

    def watch(message: ConsoleMessage) -> None:
        # A CSP violation or a script error shows here (the browser's own favicon request
        # is not ours).
        if message.type == "error" and "favicon" not in (message.location or {}).get("url", ""):
            problems.append(f"{message.text} {message.location}")

    page.on("console", watch)
    page.goto(f"{churn_server}/models")
    page.get_by_label("Email").fill(E2E_EMAIL)
    page.get_by_label("Password").fill(E2E_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{churn_server}/models")

    report = page.locator("#report")
    expect(report.get_by_role("heading", level=2)).to_contain_text("Model v1")
    expect(page.locator("#validation")).to_contain_text("Health score alone")
    expect(page.locator("#drift")).to_contain_text("2026-06-15")

    page.get_by_role("button", name="Activate v2").click()
    expect(page.get_by_role("status")).to_contain_text("Activated")
    expect(report.get_by_role("heading", level=2)).to_contain_text("Model v2")
    expect(page.get_by_role("button", name="Activate v1")).to_be_visible()
    expect(page.get_by_role("button", name="Activate v2")).to_have_count(0)

    page.get_by_role("link", name="Accounts by MRR at risk →").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("At risk of churning")
    first = page.locator("#at-risk-table tbody tr").first.get_by_role("link")
    name = first.inner_text()
    first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)

    panel = page.locator("#churn")
    expect(panel.get_by_role("heading", name="Churn risk")).to_be_visible()
    expect(panel.get_by_role("link", name="v1")).to_be_visible()
    expect(panel.locator(".churn-factors li").first).to_contain_text("the risk")
    page.evaluate("window.__marker = 'same page'")
    panel.get_by_role("button", name="Predict now").click()
    expect(panel.get_by_role("status")).to_have_text("Predicted now with the active model.")
    expect(panel.get_by_role("link", name="v2")).to_be_visible()
    expect(panel.locator(".churn-probability .big")).to_have_text(re.compile(r"^\d+\.\d%$"))
    # htmx swapped the panel in place: no reload.
    assert page.evaluate("window.__marker") == "same page"
    assert problems == []
