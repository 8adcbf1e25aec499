from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tenure.clock import FixedClock
from tests.conftest import NOW
from tests.factories.accounts import make_account
from tests.factories.auth import make_user


def test_notes_via_api_and_dashboard(
    admin_client: TestClient, db: Session, clock: FixedClock
) -> None:
    account = make_account(db, now=NOW, name="Willow Studio")
    db.commit()
    created = admin_client.post(
        f"/api/v1/accounts/{account.id}/notes",
        json={"body": "Owner prefers calls <b>after 3pm</b>"},
    )
    assert created.status_code == 201
    assert created.json()["author_label"] == "admin@example.com"
    page = admin_client.get(f"/accounts/{account.id}").text
    assert "Owner prefers calls &lt;b&gt;after 3pm&lt;/b&gt;" in page
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token
    clock.advance(timedelta(minutes=5))
    posted = admin_client.post(
        f"/accounts/{account.id}/notes",
        data={"csrf": token.group(1), "body": "Renewal call booked"},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    notes = admin_client.get(f"/api/v1/accounts/{account.id}/notes").json()
    assert [n["body"] for n in notes] == [
        "Renewal call booked",
        "Owner prefers calls <b>after 3pm</b>",
    ]
    assert (
        admin_client.post(f"/api/v1/accounts/{account.id}/notes", json={"body": ""}).status_code
        == 422
    )
    assert admin_client.delete(f"/api/v1/notes/{notes[0]['id']}").status_code == 204


def test_only_author_or_admin_deletes_a_note(
    client: TestClient, db: Session, key_client: Callable[..., TestClient]
) -> None:
    account = make_account(db, now=NOW)
    make_user(db, now=NOW, email="csm1@example.com", role="csm", password="csm1-password!")
    make_user(db, now=NOW, email="csm2@example.com", role="csm", password="csm2-password!")
    db.commit()
    client.post("/api/v1/session", json={"email": "csm1@example.com", "password": "csm1-password!"})
    note = client.post(f"/api/v1/accounts/{account.id}/notes", json={"body": "mine"}).json()
    client.post("/api/v1/session", json={"email": "csm2@example.com", "password": "csm2-password!"})
    assert client.delete(f"/api/v1/notes/{note['id']}").status_code == 403
    assert key_client("write", "admin").delete(f"/api/v1/notes/{note['id']}").status_code == 204


def test_subscription_periods(admin_client: TestClient, db: Session) -> None:
    account = make_account(db, now=NOW, external_id="acc_p")
    db.commit()
    periods = [
        {
            "external_id": "p1",
            "account_external_id": "acc_p",
            "plan": "starter",
            "mrr_cents": 2900,
            "started_at": "2025-01-01T00:00:00Z",
            "ended_at": "2025-07-01T00:00:00Z",
        },
        {
            "external_id": "p2",
            "account_external_id": "acc_p",
            "plan": "professional",
            "mrr_cents": 7900,
            "started_at": "2025-07-01T00:00:00Z",
        },
    ]
    first = admin_client.put("/api/v1/subscription-periods/bulk", json={"periods": periods})
    assert first.json() == {"created": 2, "updated": 0, "unchanged": 0}
    again = admin_client.put("/api/v1/subscription-periods/bulk", json={"periods": periods})
    assert again.json() == {"created": 0, "updated": 0, "unchanged": 2}
    listed = admin_client.get(f"/api/v1/accounts/{account.id}/subscription-periods").json()
    assert [(p["plan"], p["ended_at"] is None) for p in listed] == [
        ("starter", False),
        ("professional", True),
    ]
    backwards = {**periods[0], "ended_at": "2024-01-01T00:00:00Z"}
    bad = admin_client.put("/api/v1/subscription-periods/bulk", json={"periods": [backwards]})
    assert bad.status_code == 422 and "ended_at must be after started_at" in bad.text
