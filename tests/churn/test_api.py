"""The churn API on a simulated business with model v1 trained (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tenure.accounts.models import Account
from tenure.churn.models import ChurnModel
from tests.factories import churn as factory


@pytest.fixture
def database_url(simulated_database_url: str) -> str:
    return simulated_database_url


def _live_account(db: Session) -> Account:
    account = db.scalar(
        select(Account).where(Account.status != "churned").order_by(Account.external_id).limit(1)
    )
    assert account is not None
    return account


def test_predict_one_account_then_read_it(admin_client: TestClient, db: Session) -> None:
    account = _live_account(db)
    missing = admin_client.get(f"/api/v1/accounts/{account.id}/churn")
    assert missing.status_code == 404
    assert "/churn/predict" in missing.json()["detail"]
    made = admin_client.post(f"/api/v1/accounts/{account.id}/churn/predict")
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["model_version"] == 1 and body["horizon_days"] == 60
    assert body["as_of"].startswith("2026-06-15T00:00:00")
    assert 0 < body["probability"] < 1
    assert body["mrr_at_risk_cents"] == round(body["probability"] * body["mrr_cents"])
    assert body["factors"] and all(f["text"] for f in body["factors"])
    assert admin_client.get(f"/api/v1/accounts/{account.id}/churn").json() == body
    history = admin_client.get(f"/api/v1/accounts/{account.id}/churn/history").json()
    assert [h["probability"] for h in history] == [body["probability"]]


def test_portfolio_at_risk_and_drift(admin_client: TestClient) -> None:
    result = admin_client.post("/api/v1/churn/predict")
    assert result.status_code == 200, result.text
    run = result.json()
    assert run["accounts"] > 50 and run["model_version"] == 1
    page = admin_client.get("/api/v1/churn/at-risk", params={"limit": 10}).json()
    assert page["total"] == run["accounts"] and len(page["items"]) == 10
    at_risk = [row["churn_mrr_at_risk_cents"] for row in page["items"]]
    assert at_risk == sorted(at_risk, reverse=True)
    critical = admin_client.get("/api/v1/churn/at-risk", params={"risk": "high,critical"}).json()
    assert all(row["churn_risk"] in ("high", "critical") for row in critical["items"])
    bad = admin_client.get("/api/v1/churn/at-risk", params={"risk": "extreme"})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert "unknown churn risk level 'extreme'" in bad.json()["detail"]
    drift = admin_client.get("/api/v1/churn/drift").json()
    assert drift["model_version"] == 1 and drift["threshold"] == 0.25
    assert set(drift["flagged"]) == {k for k, v in drift["psi"].items() if v > 0.25}


def test_registry(admin_client: TestClient, db: Session) -> None:
    factory.train(db, promote="never")
    db.commit()
    models = admin_client.get("/api/v1/churn/models").json()
    assert [(m["version"], m["status"]) for m in models] == [(2, "candidate"), (1, "active")]
    assert models[1]["roc_auc"] is not None and models[1]["roc_auc_logistic"] is not None
    detail = admin_client.get("/api/v1/churn/models/1").json()
    assert set(detail["metrics"]) >= {"lightgbm", "logistic_regression", "health_score"}
    assert detail["live"] == {"examples": 0, "churns": 0}
    assert "model_text" not in detail
    assert admin_client.get("/api/v1/churn/models/7").status_code == 404
    activated = admin_client.post("/api/v1/churn/models/2/activate")
    assert activated.status_code == 200 and activated.json()["status"] == "active"
    statuses = {m["version"]: m["status"] for m in admin_client.get("/api/v1/churn/models").json()}
    assert statuses == {1: "retired", 2: "active"}


def test_corrupted_model_is_a_clear_error(admin_client: TestClient, db: Session) -> None:
    db.execute(update(ChurnModel).values(model_text="tree\ngarbage"))
    db.commit()
    response = admin_client.post("/api/v1/churn/predict")
    assert response.status_code == 503
    problem = response.json()
    assert problem["type"].endswith("model-unusable")
    assert "churn model v1 is corrupted" in problem["detail"]
    activate = admin_client.post("/api/v1/churn/models/1/activate")
    assert activate.status_code == 503


def test_no_active_model(admin_client: TestClient, db: Session) -> None:
    db.execute(update(ChurnModel).values(status="retired"))
    db.commit()
    response = admin_client.post("/api/v1/churn/predict")
    assert response.status_code == 409 and "tenure churn train" in response.json()["detail"]
    assert admin_client.get("/api/v1/churn/drift").status_code == 404


def test_scopes(key_client: Callable[..., TestClient], db: Session) -> None:
    reader = key_client("read")
    assert reader.get("/api/v1/churn/models").status_code == 200
    assert reader.post("/api/v1/churn/predict").status_code == 403
    writer = key_client("read", "write")
    assert writer.post("/api/v1/churn/models/1/activate").status_code == 403
    assert writer.post(f"/api/v1/accounts/{_live_account(db).id}/churn/predict").status_code == 200


def test_feature_catalogue(admin_client: TestClient) -> None:
    features = admin_client.get("/api/v1/churn/features").json()
    names = [f["name"] for f in features]
    assert {"active_days_7", "active_days_90", "days_since_seen", "nps"} <= set(names)
    assert any(n.startswith("health_") and n != "health_score" for n in names)
    assert all(f["meaning"] and f["window"] for f in features)
