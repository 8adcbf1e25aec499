"""Browser tests: a real uvicorn on loopback and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tenure.app import create_app
from tenure.clock import SystemClock
from tenure.config import Settings
from tenure.db import make_engine, make_session_factory, upgrade
from tests.conftest import missing_service
from tests.factories.accounts import make_account
from tests.factories.auth import make_user

CHROMIUM = os.environ.get("TENURE_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
E2E_EMAIL = "e2e@example.com"
E2E_PASSWORD = "browser-test-password"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        missing_service(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": ARGS}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Tenure served by uvicorn on a free loopback port, on a seeded SQLite database."""
    root = tmp_path_factory.mktemp("live")
    settings = Settings(
        env="test",
        database_url=f"sqlite:///{root / 'live.db'}",
        data_dir=root / "data",
        secret_key="e2e-secret-key-0123456789abcdef",
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    now = SystemClock().now()
    with make_session_factory(engine)() as db, db.begin():
        make_user(db, now=now, email=E2E_EMAIL, role="admin", password=E2E_PASSWORD)
        for name, category in [
            ("Golden Hour Photography", "photographer"),
            ("Bloom & Wild Florals", "florist"),
            ("Harbourview Venue", "venue"),
            ("Golden Gate Catering", "caterer"),
        ]:
            make_account(db, now=now, name=name, category=category)
        for i in range(70):
            make_account(db, now=now, name=f"Studio {i:02d}", category="photographer")
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, engine=engine), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()
