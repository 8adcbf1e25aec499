from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tenure.app import create_app
from tenure.clock import FixedClock
from tenure.config import Settings
from tenure.db import downgrade

PROBLEM = "application/problem+json"


def test_healthz_answers(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


class TestReadiness:
    def test_ready_when_migrated(self, client: TestClient) -> None:
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"]["database"]["status"] == "ok"

    def test_not_ready_when_migrations_are_missing(
        self, client: TestClient, engine: Engine
    ) -> None:
        downgrade(engine, "base")
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM
        assert "tenure init" in response.json()["detail"]

    def test_not_ready_when_redis_is_down(
        self, settings: Settings, clock: FixedClock, engine: Engine
    ) -> None:
        app = create_app(
            settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}),
            clock=clock,
            engine=engine,
        )
        with TestClient(app) as c:
            response = c.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["redis"]["status"] == "fail"

    @pytest.mark.redis
    def test_ready_with_real_redis(
        self, settings: Settings, clock: FixedClock, engine: Engine, redis_url: str
    ) -> None:
        app = create_app(
            settings.model_copy(update={"redis_url": redis_url}), clock=clock, engine=engine
        )
        with TestClient(app) as c:
            response = c.get("/readyz")
        assert response.status_code == 200, response.text
        assert response.json()["checks"]["redis"] == {"status": "ok"}


class TestErrors:
    def test_unknown_route_is_problem_json(self, client: TestClient) -> None:
        response = client.get("/api/v1/nothing-here")
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM
        body = response.json()
        assert body["status"] == 404 and body["title"] == "Not found"

    def test_validation_errors_list_each_field(self, admin_client: TestClient) -> None:
        response = admin_client.post(
            "/api/v1/accounts", json={"name": "", "mrr_cents": -5, "currency": "dollars"}
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        fields = {e["field"] for e in response.json()["errors"]}
        assert {"body.external_id", "body.name", "body.mrr_cents", "body.currency"} <= fields

    def test_malformed_json_is_problem_json(self, admin_client: TestClient) -> None:
        response = admin_client.post(
            "/api/v1/accounts", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM


class TestDocs:
    def test_openapi_lists_the_api(self, client: TestClient) -> None:
        spec = client.get("/openapi.json").json()
        assert "/api/v1/accounts" in spec["paths"]
        assert "/api/v1/keys" in spec["paths"]

    def test_docs_page_loads_only_local_assets(self, client: TestClient) -> None:
        html = client.get("/docs").text
        assets = re.findall(r'(?:src|href)=["\']([^"\']+)["\']', html)
        assert assets, html
        assert all(a.startswith("/") for a in assets), assets
        assert client.get("/static/swagger/swagger-ui-bundle.js").status_code == 200


def test_security_headers(client: TestClient) -> None:
    response = client.get("/login")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
