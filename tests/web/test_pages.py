from __future__ import annotations

import re
from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tenure.ingest import service as ingest_service
from tenure.ingest.rollup import ALL_EVENTS
from tests.conftest import ADMIN_PASSWORD, NOW
from tests.factories.accounts import make_account, make_contact
from tests.factories.auth import make_user


def _login_form(client: TestClient, email: str, password: str, next_: str = "/") -> object:
    return client.post(
        "/login", data={"email": email, "password": password, "next": next_}, follow_redirects=False
    )


class TestLogin:
    def test_pages_redirect_to_login_and_back(
        self, client: TestClient, admin: dict[str, str]
    ) -> None:
        response = client.get("/accounts?q=rose", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=%2Faccounts%3Fq%3Drose"
        done = _login_form(client, admin["email"], ADMIN_PASSWORD, "/accounts?q=rose")
        assert done.status_code == 303  # type: ignore[attr-defined]
        assert done.headers["location"] == "/accounts?q=rose"  # type: ignore[attr-defined]

    def test_wrong_credentials_show_one_generic_message(
        self, client: TestClient, admin: dict[str, str]
    ) -> None:
        for email, password in [(admin["email"], "wrong"), ("nobody@example.com", ADMIN_PASSWORD)]:
            response = client.post("/login", data={"email": email, "password": password})
            assert response.status_code == 401
            assert "Invalid email or password" in response.text
            assert "tenure_session" not in response.headers.get("set-cookie", "")

    def test_next_cannot_leave_the_site(self, client: TestClient, admin: dict[str, str]) -> None:
        done = _login_form(client, admin["email"], ADMIN_PASSWORD, "//evil.example/phish")
        assert done.headers["location"] == "/"  # type: ignore[attr-defined]

    def test_logout_needs_the_form_token(self, client: TestClient, admin: dict[str, str]) -> None:
        _login_form(client, admin["email"], ADMIN_PASSWORD)
        assert client.post("/logout", data={"csrf": "forged"}).status_code == 403
        page = client.get("/").text
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token
        out = client.post("/logout", data={"csrf": token.group(1)}, follow_redirects=False)
        assert out.status_code == 303
        assert client.get("/", follow_redirects=False).status_code == 303


class TestAccountsPages:
    def test_list_filters_and_escapes(self, admin_client: TestClient, db: Session) -> None:
        make_account(db, now=NOW, name="<script>alert(1)</script> Florals", category="florist")
        make_account(db, now=NOW, name="Golden Hour Photography", category="photographer")
        db.commit()
        page = admin_client.get("/accounts?category=photographer").text
        assert "Golden Hour Photography" in page and "Florals" not in page
        all_page = admin_client.get("/accounts").text
        assert "<script>alert(1)</script>" not in all_page
        assert "&lt;script&gt;alert(1)&lt;/script&gt; Florals" in all_page

    def test_htmx_search_returns_only_the_results(
        self, admin_client: TestClient, db: Session
    ) -> None:
        make_account(db, now=NOW, name="Golden Hour Photography")
        make_account(db, now=NOW, name="Velvet Veil Bridal")
        db.commit()
        partial = admin_client.get("/accounts?q=golden", headers={"HX-Request": "true"}).text
        assert "<html" not in partial
        assert "Golden Hour Photography" in partial and "Velvet Veil" not in partial
        assert "1 account" in partial

    def test_pages_through_results(self, admin_client: TestClient, db: Session) -> None:
        for i in range(60):
            make_account(db, now=NOW, name=f"Venue {i:02d}")
        db.commit()
        first = admin_client.get("/accounts").text
        assert "60 accounts" in first and "Venue 49" in first and "Venue 50" not in first
        next_link = re.search(
            r'href="(/accounts\?[^"]*cursor=[^"]+)" hx-get="[^"]+" hx-target="#results" '
            r'hx-push-url="true" rel="next"',
            first,
        )
        assert next_link
        second = admin_client.get(next_link.group(1).replace("&amp;", "&")).text
        assert "Venue 50" in second and "Venue 59" in second and "Venue 49" not in second

    def test_account_page_shows_profile_contacts_and_members(
        self, admin_client: TestClient, db: Session
    ) -> None:
        group = make_account(db, now=NOW, name="Lakeside Venue Group", category="venue")
        venue = make_account(
            db,
            now=NOW,
            name="Lakeside Barn",
            category="venue",
            parent_id=group.id,
            mrr_cents=19900,
            currency="GBP",
            country="GB",
        )
        make_contact(db, venue, now=NOW, name="Olivia Hart", email="olivia@lakeside.example")
        db.commit()
        page = admin_client.get(f"/accounts/{venue.id}").text
        assert "Lakeside Barn" in page and "£199.00" in page and "Olivia Hart" in page
        assert "Lakeside Venue Group" in page
        group_page = admin_client.get(f"/accounts/{group.id}").text
        assert "Member accounts" in group_page and "Lakeside Barn" in group_page

    def test_unknown_account_page_is_a_404_page(self, admin_client: TestClient) -> None:
        response = admin_client.get(
            "/accounts/00000000-0000-0000-0000-000000000000", headers={"Accept": "text/html"}
        )
        assert response.status_code == 404
        assert "<html" in response.text and "no account" in response.text


class TestShell:
    def test_navigation_lists_every_area(self, admin_client: TestClient) -> None:
        page = admin_client.get("/").text
        for area in (
            "Portfolio",
            "Accounts",
            "Interventions",
            "Playbooks",
            "Reports",
            "Models",
            "System",
            "Settings",
        ):
            assert area in page

    def test_pages_reference_no_other_host(self, admin_client: TestClient, db: Session) -> None:
        account = make_account(db, now=NOW)
        db.commit()
        for path in ("/", "/accounts", f"/accounts/{account.id}", "/system", "/settings", "/login"):
            html = admin_client.get(path).text
            refs = re.findall(r'(?:src|href|action)=["\']([^"\']+)["\']', html)
            assert refs, path
            assert all(r.startswith(("/", "#")) for r in refs), (path, refs)

    def test_settings_is_for_admins_only(self, client: TestClient, db: Session) -> None:
        make_user(db, now=NOW, email="v@example.com", role="viewer", password="viewer-password")
        db.commit()
        _login_form(client, "v@example.com", "viewer-password")
        assert client.get("/settings").status_code == 403

    def test_admin_creates_a_key_in_settings(self, admin_client: TestClient) -> None:
        page = admin_client.get("/settings").text
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token
        response = admin_client.post(
            "/settings/keys",
            data={"csrf": token.group(1), "name": "Segment", "scopes": ["ingest", "read"]},
        )
        assert response.status_code == 201
        key = re.search(r'id="new-key">(tn_[^<]+)<', response.text)
        assert key
        assert admin_client.get("/api/v1/keys").json()[0]["scopes"] == ["ingest", "read"]
        missing = admin_client.post("/settings/keys", data={"csrf": token.group(1), "name": "x"})
        assert missing.status_code == 422 and "at least one scope" in missing.text


class TestUsageCharts:
    def _usage(self, db: Session, account_id: object, rows: list[tuple[date, int]]) -> None:
        ingest_service.bulk_insert_usage(
            db,
            {
                "account_id": [account_id] * len(rows) * 2,
                "day": [d for d, _ in rows] * 2,
                "metric": [ALL_EVENTS] * len(rows) + ["login"] * len(rows),
                "count": [n for _, n in rows] * 2,
            },
        )

    def test_account_page_charts_monthly_activity(
        self, admin_client: TestClient, db: Session
    ) -> None:
        account = make_account(db, now=NOW, name="Summer Florals", category="florist")
        self._usage(
            db, account.id, [(date(2026, 1, 10), 3), (date(2026, 1, 11), 2), (date(2026, 6, 1), 40)]
        )
        db.commit()
        page = admin_client.get(f"/accounts/{account.id}").text
        assert "January 2026: 5 events, 2 active days" in page
        assert "June 2026: 40 events, 1 active days" in page
        assert "February 2026: 0 events" in page
        assert page.count('<g class="bar">') == 18

    def test_portfolio_seasonality_splits_hemispheres(
        self, admin_client: TestClient, db: Session
    ) -> None:
        north = make_account(db, now=NOW, country="GB")
        south = make_account(db, now=NOW, country="AU")
        self._usage(db, north.id, [(date(2026, 6, 5), 70)])
        self._usage(db, south.id, [(date(2026, 1, 5), 90)])
        db.commit()
        assert 'hx-get="/fragments/seasonality"' in admin_client.get("/").text
        fragment = admin_client.get("/fragments/seasonality", headers={"HX-Request": "true"}).text
        north_svg, south_svg = fragment.split("hemisphere-south")
        assert "June 2026: 70 events" in north_svg and "January 2026: 90 events" not in north_svg
        assert "January 2026: 90 events" in south_svg


def test_my_accounts_filter(client: TestClient, db: Session) -> None:
    csm = make_user(db, now=NOW, email="maya@example.com", role="csm", password="maya-password!")
    mine = make_account(db, now=NOW, name="Maya's Florist", owner_id=csm.id)
    make_account(db, now=NOW, name="Someone Else's Venue")
    db.commit()
    _login_form(client, "maya@example.com", "maya-password!")
    page = client.get("/accounts?owner=me").text
    assert mine.name.replace("'", "&#39;") in page and "Someone Else" not in page
    assert "1 account" in page
    by_id = client.get(f"/accounts?owner={csm.id}").text
    assert "Someone Else" not in by_id
    assert client.get("/accounts?owner=nobody").status_code == 422
