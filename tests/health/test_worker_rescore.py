"""New events lead to a new health score within seconds, by the worker (not by the request)."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tenure.accounts import service as accounts_service
from tenure.app import create_app
from tenure.clock import SystemClock
from tenure.config import Settings
from tenure.db import make_session_factory
from tenure.worker.runtime import Worker
from tests.factories.auth import make_api_key


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _wait_for(check: object, timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.2)
    return None


def test_tracked_events_rescore_the_account_within_seconds(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        env="test",
        database_url=database_url,
        data_dir=tmp_path / "data",
        secret_key="test-secret-key-that-is-long-enough-0123456789",
        worker_poll_seconds=0.05,
    )
    sessions = make_session_factory(engine)
    now = datetime.now(UTC)
    with sessions() as db:
        key = make_api_key(db, scopes=["ingest"], now=now)
        db.commit()
    app = create_app(settings, engine=engine, clock=SystemClock())
    worker = Worker(settings, engine=engine, sessions=sessions, clock=SystemClock(), periodic=False)
    worker.start()
    try:
        with TestClient(app) as client:
            batch = [
                {
                    "type": "group",
                    "groupId": "acc_live",
                    "userId": "u1",
                    "traits": {"name": "Live Florals", "category": "florist"},
                    "messageId": "g1",
                    "timestamp": now.isoformat(),
                }
            ] + [
                {
                    "type": "track",
                    "event": "login",
                    "userId": "u1",
                    "context": {"groupId": "acc_live"},
                    "messageId": f"t{i}",
                    "timestamp": (now - timedelta(days=i)).isoformat(),
                }
                for i in range(12)
            ]
            response = client.post("/v1/batch", json={"batch": batch}, headers=_basic(key))
            assert response.status_code == 200
        # The request only marked the account; the worker scores it.
        with sessions() as db:
            account = accounts_service.get_account_by_external_id(db, "acc_live")
            assert account is not None
            account_id = account.id

        def scored() -> float | None:
            with sessions() as db:
                return accounts_service.get_account(db, account_id).health_score

        assert _wait_for(scored) is not None
        with sessions() as db:
            account = accounts_service.get_account(db, account_id)
            assert account.health_risk is not None
            assert account.rescore_requested_at is None
    finally:
        worker.stop()
