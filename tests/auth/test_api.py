from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import ADMIN_PASSWORD, NOW
from tests.factories.auth import make_user

PROBLEM = "application/problem+json"


class TestLogin:
    def test_login_sets_a_locked_down_session_cookie(
        self, client: TestClient, admin: dict[str, str]
    ) -> None:
        response = client.post(
            "/api/v1/session", json={"email": "ADMIN@example.com", "password": ADMIN_PASSWORD}
        )
        assert response.status_code == 200
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("tenure_session=")
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert client.get("/api/v1/me").json()["label"] == "admin@example.com"

    def test_wrong_password_and_unknown_user_look_the_same(
        self, client: TestClient, admin: dict[str, str]
    ) -> None:
        wrong = client.post(
            "/api/v1/session", json={"email": admin["email"], "password": "not the password"}
        )
        unknown = client.post(
            "/api/v1/session", json={"email": "ghost@example.com", "password": ADMIN_PASSWORD}
        )
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.headers["content-type"] == PROBLEM
        assert wrong.json()["detail"] == unknown.json()["detail"] == "Invalid email or password"
        assert "set-cookie" not in wrong.headers

    def test_logout_ends_the_session(self, admin_client: TestClient) -> None:
        assert admin_client.delete("/api/v1/session").status_code == 204
        assert admin_client.get("/api/v1/me").status_code == 401


class TestApiKeys:
    def test_missing_credentials_is_401_problem(self, client: TestClient) -> None:
        response = client.get("/api/v1/accounts")
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM

    def test_malformed_authorization_header_is_401(self, client: TestClient) -> None:
        response = client.get("/api/v1/accounts", headers={"Authorization": "Basic abc"})
        assert response.status_code == 401

    def test_insufficient_scope_is_403(self, key_client: Callable[..., TestClient]) -> None:
        ingest_only = key_client("ingest")
        response = ingest_only.get("/api/v1/accounts")
        assert response.status_code == 403
        assert response.headers["content-type"] == PROBLEM
        assert "'read' scope" in response.json()["detail"]
        reader = key_client("read")
        assert reader.get("/api/v1/accounts").status_code == 200
        assert (
            reader.post("/api/v1/accounts", json={"external_id": "a", "name": "A"}).status_code
            == 403
        )

    def test_admin_creates_lists_and_revokes_a_key(self, admin_client: TestClient) -> None:
        created = admin_client.post("/api/v1/keys", json={"name": "crm sync", "scopes": ["read"]})
        assert created.status_code == 201
        body = created.json()
        key = body["key"]
        assert key.startswith(body["prefix"])
        listed = admin_client.get("/api/v1/keys").json()
        assert [k["prefix"] for k in listed] == [body["prefix"]]
        assert all("key" not in k for k in listed)

        with TestClient(admin_client.app, headers={"Authorization": f"Bearer {key}"}) as c:
            assert c.get("/api/v1/accounts").status_code == 200
            assert admin_client.delete(f"/api/v1/keys/{body['id']}").status_code == 200
            revoked = c.get("/api/v1/accounts")
            assert revoked.status_code == 401
            assert revoked.headers["content-type"] == PROBLEM

    def test_bad_key_request_lists_the_fields(self, admin_client: TestClient) -> None:
        response = admin_client.post("/api/v1/keys", json={"name": "", "scopes": ["root"]})
        assert response.status_code == 422
        fields = {e["field"] for e in response.json()["errors"]}
        assert fields == {"body.name", "body.scopes.0"}


class TestRoles:
    def test_viewer_reads_but_cannot_write(self, client: TestClient, db: Session) -> None:
        make_user(
            db, now=NOW, email="viewer@example.com", role="viewer", password="viewer-password"
        )
        db.commit()
        client.post(
            "/api/v1/session", json={"email": "viewer@example.com", "password": "viewer-password"}
        )
        assert client.get("/api/v1/accounts").status_code == 200
        response = client.post("/api/v1/accounts", json={"external_id": "x", "name": "X"})
        assert response.status_code == 403
        assert client.get("/api/v1/users").status_code == 403

    def test_csm_writes_accounts_but_cannot_manage_keys(
        self, client: TestClient, db: Session
    ) -> None:
        make_user(db, now=NOW, email="csm@example.com", role="csm", password="csm-password!")
        db.commit()
        client.post(
            "/api/v1/session", json={"email": "csm@example.com", "password": "csm-password!"}
        )
        response = client.post("/api/v1/accounts", json={"external_id": "x", "name": "X"})
        assert response.status_code == 201
        assert (
            client.post("/api/v1/keys", json={"name": "k", "scopes": ["read"]}).status_code == 403
        )


def test_writes_by_users_and_keys_are_in_the_audit_log(
    admin_client: TestClient, key_client: Callable[..., TestClient]
) -> None:
    writer = key_client("write")
    created = writer.post("/api/v1/accounts", json={"external_id": "acc_1", "name": "Bloom"})
    account_id = created.json()["id"]
    admin_client.patch(f"/api/v1/accounts/{account_id}", json={"plan": "scale"})
    log = admin_client.get("/api/v1/audit", params={"target_id": account_id}).json()
    assert [(e["action"], e["actor_type"]) for e in log] == [
        ("account.update", "user"),
        ("account.create", "api_key"),
    ]
    assert log[0]["details"]["changes"] == {"plan": {"from": None, "to": "scale"}}
    assert log[0]["actor_label"] == "admin@example.com"
    assert log[1]["actor_label"].startswith("test key (tn_")
