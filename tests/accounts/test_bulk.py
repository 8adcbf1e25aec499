"""Bulk upserts by external id: accounts, contacts, subscription changes; tags."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import NOW
from tests.factories.accounts import make_account

PROBLEM = "application/problem+json"


def test_bulk_upsert_creates_updates_and_leaves_unchanged(admin_client: TestClient) -> None:
    rows = [
        {"external_id": "grp_1", "name": "Lakeside Group", "category": "venue"},
        {
            "external_id": "v_1",
            "name": "Lakeside Barn",
            "category": "venue",
            "mrr_cents": 19900,
            "currency": "GBP",
            "country": "GB",
            "parent_external_id": "grp_1",
            "tags": ["vip"],
        },
        {
            "external_id": "v_2",
            "name": "Lakeside Hall",
            "country": "AU",
            "mrr_cents": 29900,
            "currency": "AUD",
            "parent_external_id": "grp_1",
        },
    ]
    first = admin_client.put("/api/v1/accounts/bulk", json={"accounts": rows})
    assert first.status_code == 200, first.text
    assert first.json() == {"created": 3, "updated": 0, "unchanged": 0}
    again = admin_client.put("/api/v1/accounts/bulk", json={"accounts": rows})
    assert again.json() == {"created": 0, "updated": 0, "unchanged": 3}
    change = admin_client.put(
        "/api/v1/accounts/bulk", json={"accounts": [{"external_id": "v_2", "plan": "scale"}]}
    )
    assert change.json() == {"created": 0, "updated": 1, "unchanged": 0}
    hall = admin_client.get("/api/v1/accounts?q=v_2").json()["items"][0]
    assert hall["plan"] == "scale" and hall["hemisphere"] == "south"
    assert hall["name"] == "Lakeside Hall"  # absent fields stay
    group = admin_client.get("/api/v1/accounts?q=grp_1").json()["items"][0]
    members = admin_client.get(f"/api/v1/accounts?parent_id={group['id']}").json()["items"]
    assert {m["external_id"] for m in members} == {"v_1", "v_2"}
    tagged = admin_client.get("/api/v1/accounts?tag=vip").json()["items"]
    assert [a["external_id"] for a in tagged] == ["v_1"]


def test_bulk_upsert_is_all_or_nothing(admin_client: TestClient) -> None:
    rows = [
        {"external_id": "ok_1", "name": "Fine"},
        {"external_id": "bad_1", "name": "Orphan", "parent_external_id": "missing"},
    ]
    response = admin_client.put("/api/v1/accounts/bulk", json={"accounts": rows})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["position"] == 1 and body["field"] == "parent_external_id"
    assert admin_client.get("/api/v1/accounts?q=ok_1").json()["total"] == 0
    invalid = admin_client.put(
        "/api/v1/accounts/bulk",
        json={"accounts": [{"external_id": "x", "mrr_cents": -1}, {"name": "no id"}]},
    )
    assert invalid.status_code == 422
    fields = {e["field"] for e in invalid.json()["errors"]}
    assert {"body.accounts.0.mrr_cents", "body.accounts.1.external_id"} <= fields
    new_without_name = admin_client.put(
        "/api/v1/accounts/bulk", json={"accounts": [{"external_id": "nameless"}]}
    )
    assert (
        new_without_name.status_code == 422 and "needs a name" in new_without_name.json()["detail"]
    )


def test_bulk_is_capped_at_5000(admin_client: TestClient) -> None:
    rows = [{"external_id": f"a{i}", "name": f"A{i}"} for i in range(5001)]
    response = admin_client.put("/api/v1/accounts/bulk", json={"accounts": rows})
    assert response.status_code == 422


def test_tags_add_and_remove(admin_client: TestClient, db: Session) -> None:
    account = make_account(db, now=NOW)
    db.commit()
    added = admin_client.post(
        f"/api/v1/accounts/{account.id}/tags", json={"tags": ["at-risk", "vip", "at-risk"]}
    )
    assert added.json()["tags"] == ["at-risk", "vip"]
    removed = admin_client.delete(f"/api/v1/accounts/{account.id}/tags/at-risk")
    assert removed.json()["tags"] == ["vip"]
    log = admin_client.get("/api/v1/audit", params={"target_id": str(account.id)}).json()
    assert [e["action"] for e in log][:2] == ["account.untag", "account.tag"]


def test_contacts_and_subscription_changes(admin_client: TestClient, db: Session) -> None:
    make_account(db, now=NOW, external_id="acc_9", name="Petal Lane")
    db.commit()
    contacts = admin_client.put(
        "/api/v1/contacts/bulk",
        json={
            "contacts": [
                {
                    "external_id": "usr_1",
                    "account_external_id": "acc_9",
                    "email": "p@petal.example",
                    "name": "Pia",
                    "consents": {"email": True, "sms": False},
                }
            ]
        },
    )
    assert contacts.json() == {"created": 1, "updated": 0, "unchanged": 0}
    missing = admin_client.put(
        "/api/v1/contacts/bulk",
        json={"contacts": [{"external_id": "usr_2", "account_external_id": "nope"}]},
    )
    assert missing.status_code == 422 and "nope" in missing.json()["detail"]
    change = {
        "external_id": "ch_1",
        "account_external_id": "acc_9",
        "kind": "expansion",
        "mrr_before_cents": 2900,
        "mrr_after_cents": 7900,
        "plan": "professional",
        "occurred_at": "2026-05-01T10:00:00Z",
    }
    assert (
        admin_client.put("/api/v1/subscription-changes/bulk", json={"changes": [change]}).json()[
            "created"
        ]
        == 1
    )
    assert (
        admin_client.put("/api/v1/subscription-changes/bulk", json={"changes": [change]}).json()[
            "unchanged"
        ]
        == 1
    )
    bad_kind = admin_client.put(
        "/api/v1/subscription-changes/bulk", json={"changes": [{**change, "kind": "upsell"}]}
    )
    assert bad_kind.status_code == 422
