from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import NOW
from tests.factories.accounts import make_account, make_contact

PROBLEM = "application/problem+json"


def _seed(db: Session) -> None:
    rows = [
        ("Bloom & Wild Florals", "florist", "starter", 2900, "active", "GB"),
        ("Emma Clarke Photography", "photographer", "professional", 7900, "active", "US"),
        ("Harbourview Venues", "venue", "scale", 19900, "active", "AU"),
        ("Petal Lane Flowers", "florist", "professional", 7900, "trial", "NZ"),
        ("Lens & Light Studio", "photographer", "starter", 2900, "churned", "CA"),
    ]
    for i, (name, category, plan, mrr, status, country) in enumerate(rows):
        make_account(
            db,
            now=NOW,
            name=name,
            category=category,
            plan=plan,
            mrr_cents=mrr,
            status=status,
            country=country,
            signup_at=NOW - timedelta(days=30 * i),
        )
    db.commit()


class TestListing:
    def test_search_is_case_insensitive_on_name_and_exact_on_external_id(
        self, admin_client: TestClient, db: Session
    ) -> None:
        _seed(db)
        names = [a["name"] for a in admin_client.get("/api/v1/accounts?q=FLOR").json()["items"]]
        assert names == ["Bloom & Wild Florals"]
        first = admin_client.get("/api/v1/accounts?q=acc_").json()
        assert first["total"] == 0  # "_" is a literal, not a wildcard

    def test_filters_combine(self, admin_client: TestClient, db: Session) -> None:
        _seed(db)
        body = admin_client.get("/api/v1/accounts?category=florist&status=active").json()
        assert [a["name"] for a in body["items"]] == ["Bloom & Wild Florals"]
        assert body["total"] == 1

    def test_sort_by_mrr_descending(self, admin_client: TestClient, db: Session) -> None:
        _seed(db)
        items = admin_client.get("/api/v1/accounts?sort=mrr&order=desc").json()["items"]
        assert [a["mrr_cents"] for a in items] == [19900, 7900, 7900, 2900, 2900]

    def test_cursor_pages_cover_everything_once_both_ways(
        self, admin_client: TestClient, db: Session
    ) -> None:
        for i in range(23):
            make_account(db, now=NOW, name=f"Studio {i:02d}", mrr_cents=1000 * (i % 4))
        db.commit()
        seen: list[str] = []
        pages: list[dict[str, object]] = []
        url = "/api/v1/accounts?sort=mrr&limit=5"
        while url:
            page = admin_client.get(url).json()
            pages.append(page)
            seen += [a["id"] for a in page["items"]]
            url = (
                f"/api/v1/accounts?sort=mrr&limit=5&cursor={page['next_cursor']}"
                if page["next_cursor"]
                else ""
            )
        assert len(seen) == len(set(seen)) == 23
        assert pages[0]["prev_cursor"] is None and pages[-1]["next_cursor"] is None
        back = admin_client.get(
            f"/api/v1/accounts?sort=mrr&limit=5&cursor={pages[2]['prev_cursor']}"
        ).json()
        assert [a["id"] for a in back["items"]] == [a["id"] for a in pages[1]["items"]]  # type: ignore[index]

    def test_bad_cursor_and_sort_are_422(self, admin_client: TestClient) -> None:
        bad_cursor = admin_client.get("/api/v1/accounts?cursor=garbage")
        assert bad_cursor.status_code == 422
        assert bad_cursor.headers["content-type"] == PROBLEM
        assert "cursor" in bad_cursor.json()["detail"]
        assert admin_client.get("/api/v1/accounts?sort=colour").status_code == 422
        assert admin_client.get("/api/v1/accounts?limit=0").status_code == 422


class TestWrites:
    def test_create_then_read(self, admin_client: TestClient) -> None:
        response = admin_client.post(
            "/api/v1/accounts",
            json={
                "external_id": "acc_42",
                "name": "Southern Cross Weddings",
                "category": "planner",
                "plan": "scale",
                "mrr_cents": 19900,
                "currency": "AUD",
                "country": "AU",
                "timezone": "Australia/Sydney",
                "signup_at": "2025-10-01T00:00:00+10:00",
            },
        )
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["hemisphere"] == "south"
        assert created["signup_at"].startswith("2025-09-30T14:00:00")
        fetched = admin_client.get(f"/api/v1/accounts/{created['id']}").json()
        assert fetched == created

    def test_duplicate_external_id_is_409(self, admin_client: TestClient) -> None:
        body = {"external_id": "acc_1", "name": "One"}
        assert admin_client.post("/api/v1/accounts", json=body).status_code == 201
        dup = admin_client.post("/api/v1/accounts", json=body)
        assert dup.status_code == 409
        assert dup.headers["content-type"] == PROBLEM

    def test_invalid_timezone_and_naive_time_are_refused(self, admin_client: TestClient) -> None:
        response = admin_client.post(
            "/api/v1/accounts",
            json={
                "external_id": "x",
                "name": "X",
                "timezone": "Mars/Olympus",
                "signup_at": "2025-10-01T00:00:00",
            },
        )
        assert response.status_code == 422
        fields = {e["field"] for e in response.json()["errors"]}
        assert fields == {"body.timezone", "body.signup_at"}

    def test_update_changes_only_given_fields_and_marks_churn(
        self, admin_client: TestClient, db: Session
    ) -> None:
        account = make_account(db, now=NOW - timedelta(days=3), name="Old Name", plan="starter")
        db.commit()
        response = admin_client.patch(
            f"/api/v1/accounts/{account.id}", json={"status": "churned", "churn_reason": "price"}
        )
        body = response.json()
        assert response.status_code == 200
        assert body["name"] == "Old Name" and body["plan"] == "starter"
        assert body["churned_at"] == NOW.isoformat().replace("+00:00", "Z")
        search = admin_client.get("/api/v1/accounts?q=old name").json()
        assert search["total"] == 1

    def test_parent_cycles_are_refused(self, admin_client: TestClient, db: Session) -> None:
        group = make_account(db, now=NOW, name="Group", category="venue")
        venue = make_account(db, now=NOW, name="Venue", category="venue", parent_id=group.id)
        db.commit()
        response = admin_client.patch(
            f"/api/v1/accounts/{group.id}", json={"parent_id": str(venue.id)}
        )
        assert response.status_code == 422
        assert "ancestor" in response.json()["detail"]
        children = admin_client.get(f"/api/v1/accounts?parent_id={group.id}").json()["items"]
        assert [c["name"] for c in children] == ["Venue"]

    def test_unknown_account_is_404(self, admin_client: TestClient) -> None:
        response = admin_client.get("/api/v1/accounts/00000000-0000-0000-0000-000000000000")
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM


def test_contacts_of_an_account(admin_client: TestClient, db: Session) -> None:
    account = make_account(db, now=NOW)
    make_contact(
        db,
        account,
        now=NOW,
        name="Ava Stone",
        email="ava@bloom.example",
        last_seen_at=datetime(2026, 6, 1, tzinfo=UTC),
    )
    db.commit()
    contacts = admin_client.get(f"/api/v1/accounts/{account.id}/contacts").json()
    assert [(c["name"], c["email"]) for c in contacts] == [("Ava Stone", "ava@bloom.example")]


def test_mrr_sorts_and_sums_in_the_reporting_currency(
    admin_client: TestClient, db: Session
) -> None:
    make_account(
        db, now=NOW, name="Buenos Aires Foto", mrr_cents=20_000_000, currency="ARS", country="AR"
    )
    make_account(db, now=NOW, name="Boston Photo", mrr_cents=19_900, currency="USD")
    make_account(db, now=NOW, name="London Photo", mrr_cents=6_500, currency="GBP", country="GB")
    db.commit()
    items = admin_client.get("/api/v1/accounts?sort=mrr&order=desc").json()["items"]
    assert [a["name"] for a in items] == ["Buenos Aires Foto", "Boston Photo", "London Photo"]
    assert [a["mrr_base_cents"] for a in items] == [20_000, 19_900, round(6_500 * 1.27)]
    changed = admin_client.patch(f"/api/v1/accounts/{items[2]['id']}", json={"currency": "EUR"})
    assert changed.json()["mrr_base_cents"] == round(6_500 * 1.08)
