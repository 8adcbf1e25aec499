"""Bring your own data: a business imported through the normal ingestion paths (CSV
imports for accounts, contacts, subscriptions, support and surveys; Segment batches on the
tracking API for events) trains, evaluates and predicts like the simulator's own loader.
The files are written by the simulator but reach Tenure only as a customer's would."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tenure.churn import service
from tenure.config import Settings
from tenure.db import make_session_factory
from tenure.ingest.csvimport import import_csv
from tenure.kit.actor import Actor
from tenure.sim.files import write_files
from tenure.sim.records import SimConfig
from tests.factories.auth import make_api_key

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The whole history arrives at once here; the per-key rate limit is for live traffic.
    return settings.model_copy(update={"ingest_rate_limit": "100000/second"})


def test_imported_business_trains_and_predicts(
    client: TestClient, engine: Engine, db: Session, tmp_path: Path
) -> None:
    files = tmp_path / "export"
    write_files(SimConfig(accounts=90, months=13, seed=4, end=date(2026, 6, 1)), files)
    sessions = make_session_factory(engine)
    for kind in ("accounts", "contacts", "subscriptions", "support", "surveys"):
        with sessions() as session, session.begin(), (files / f"{kind}.csv").open("rb") as fh:
            report = import_csv(session, kind, fh, actor=Actor.cli("import"), now=NOW)
            assert report.rejected == 0, (kind, report)
    key = make_api_key(db, now=NOW, scopes=["ingest"], name="segment")
    db.commit()
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    with (files / "events.jsonl").open() as lines:
        for line in lines:
            response = client.post("/v1/batch", content=line, headers=auth)
            assert response.status_code == 200, response.text

    report = service.train_model(db, now=NOW, actor=Actor.cli(), min_churns=5)
    metrics = report.model.metrics
    for name in ("lightgbm", "logistic_regression", "health_score"):
        assert metrics[name]["examples"] > 0 and metrics[name]["churns"] > 0
        assert metrics[name]["roc_auc"] is not None
    assert report.promoted and report.model.training["accounts"] > 60
    result = service.predict(db, now=NOW)
    assert result.accounts > 30
    db.commit()
    detail = json.dumps(service.get_model(db, 1).metrics)
    assert "calibration" in detail
