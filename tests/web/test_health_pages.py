"""Health in the dashboard: the account page's panel (gauge, components, factors, trend,
overrides, rescoring), the portfolio's distribution and risk list, the accounts list's Risk
filter and Health column.

Scores come from the real engine (usage rollups, then tenure.health.service.rescore) or, for
list tests that only need a level, from accounts_service.set_health.
"""

from __future__ import annotations

import html
import re
import uuid
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tenure.accounts import service as accounts_service
from tenure.auth import service as auth_service
from tenure.health import service as health_service
from tenure.ingest import service as ingest_service
from tenure.ingest.rollup import ALL_EVENTS
from tenure.kit.actor import Actor
from tests.conftest import NOW
from tests.factories.accounts import make_account
from tests.factories.auth import make_user

SIGNUP = NOW - timedelta(days=400)


def active_every_day(db: Session, account_id: uuid.UUID, *, days: int, until: date) -> None:
    dates = [until - timedelta(days=i) for i in range(days)]
    ingest_service.bulk_insert_usage(
        db,
        {
            "account_id": [account_id] * len(dates) * 2,
            "day": dates * 2,
            "metric": [ALL_EVENTS] * len(dates) + ["login"] * len(dates),
            "count": [6] * len(dates) * 2,
        },
    )


def csrf(client: TestClient, path: str = "/") -> str:
    token = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert token
    return token.group(1)


def section(page: str, element_id: str) -> str:
    """The HTML of the element with this id, up to the end of its section or aside."""
    start = page.index(f'id="{element_id}"')
    end = min(i for i in (page.find("</section>", start), page.find("</aside>", start)) if i > 0)
    return page[start:end]


def set_health(db: Session, rows: list[tuple[uuid.UUID, float | None, str | None]]) -> None:
    accounts_service.set_health(
        db,
        [
            {"id": i, "health_score": s, "health_risk": r, "health_as_of": NOW if s else None}
            for i, s, r in rows
        ],
    )


@pytest.fixture
def scored(db: Session) -> dict[str, uuid.UUID]:
    """Two accounts signed up 400 days ago, one active daily, one silent; scored 30 and 7
    days ago and now."""
    busy = make_account(db, now=SIGNUP, signup_at=SIGNUP, name="Busy Blooms", mrr_cents=9900)
    quiet = make_account(db, now=SIGNUP, signup_at=SIGNUP, name="Quiet Frames", mrr_cents=4900)
    active_every_day(db, busy.id, days=60, until=NOW.date())
    for days in (30, 7, 0):
        health_service.rescore(db, as_of=NOW - timedelta(days=days), now=NOW)
    db.commit()
    return {"busy": busy.id, "quiet": quiet.id}


def viewer_client(client: TestClient, db: Session) -> TestClient:
    make_user(db, now=NOW, email="v@example.com", role="viewer", password="viewer-password")
    db.commit()
    client.post("/login", data={"email": "v@example.com", "password": "viewer-password"})
    return client


class TestAccountPanel:
    def test_panel_shows_gauge_components_factors_and_trend(
        self, admin_client: TestClient, db: Session, scored: dict[str, uuid.UUID]
    ) -> None:
        latest = health_service.latest(db, scored["quiet"])
        assert latest is not None and latest.score is not None
        page = admin_client.get(f"/accounts/{scored['quiet']}").text
        panel = section(page, "health")
        # Gauge and badge: the computed score with its band, readable by a screen reader.
        assert '<svg class="gauge"' in panel and 'role="img"' in panel
        assert f'aria-label="Health score {latest.score:g} out of 100, High risk"' in panel
        assert f'aria-label="Health {latest.score:g}, High risk"' in panel
        assert 'fill="#dc6803"' in panel  # the high band's colour from the scorecard
        assert "<code>wedding-default@1</code>" in panel
        assert "2026-06-15 12:00 UTC" in panel
        # Deltas against 7 and 30 days earlier.
        assert "vs 7 days ago" in panel and "vs 30 days ago" in panel
        # Components: scored ones with their share of the weight, missing ones as no data.
        components = panel[panel.index('class="table compact components"') :]
        assert 'aria-label="Engagement ' in components
        assert 'aria-label="Recency 0 out of 100"' in components
        assert re.search(r"<td>Engagement</td>.*?<td class=\"num\">41%</td>", components, re.S)
        missing = re.search(r'<tr class="missing"><td>Satisfaction</td>(.*?)</tr>', components)
        assert missing and "no data" in missing.group(1)
        assert 'aria-label="Satisfaction' not in components  # never drawn as a zero bar
        # Factors as sentences.
        for factor in latest.factors:
            assert html.escape(factor["text"], quote=False) in panel
        assert "Nobody from the account has been active for 365 days" in panel
        # Trend: three scores in 90 days, one polyline with a dot per day.
        trend = panel[panel.index('<svg class="chart trend"') :]
        assert trend.count('<circle class="trend-dot"') == 3
        assert '<polyline class="trend-line"' in trend
        assert "Health score over the last 90 days: 3 daily scores" in trend
        assert "15 Jun 2026: " in trend and "16 May 2026: " in trend

    def test_never_scored_shows_an_empty_state_and_rescore_scores_it(
        self, admin_client: TestClient, db: Session
    ) -> None:
        account = make_account(db, now=SIGNUP, signup_at=SIGNUP, name="New Florals")
        active_every_day(db, account.id, days=20, until=NOW.date())
        db.commit()
        page = admin_client.get(f"/accounts/{account.id}").text
        panel = section(page, "health")
        assert "Not scored yet" in panel and '<svg class="gauge"' not in panel
        assert f'action="/accounts/{account.id}/health/rescore"' in panel
        done = admin_client.post(
            f"/accounts/{account.id}/health/rescore",
            data={"csrf": csrf(admin_client)},
            follow_redirects=False,
        )
        assert done.status_code == 303
        assert done.headers["location"] == f"/accounts/{account.id}?done=rescored#health"
        after = admin_client.get(done.headers["location"]).text
        assert "Rescored now" in after and '<svg class="gauge"' in after
        row = health_service.latest(db, account.id)
        assert row is not None and row.as_of == NOW
        assert admin_client.get(f"/api/v1/accounts/{account.id}").json()["health_score"] == (
            row.score
        )

    def test_rescore_of_a_churned_account_says_it_was_not_scored(
        self, admin_client: TestClient, db: Session
    ) -> None:
        account = make_account(db, now=SIGNUP, signup_at=SIGNUP, status="churned")
        db.commit()
        done = admin_client.post(
            f"/accounts/{account.id}/health/rescore", data={"csrf": csrf(admin_client)}
        )
        assert done.status_code == 200 and "Not scored: the account has churned" in done.text

    def test_rescore_needs_the_form_token(
        self, admin_client: TestClient, scored: dict[str, uuid.UUID]
    ) -> None:
        response = admin_client.post(
            f"/accounts/{scored['busy']}/health/rescore", data={"csrf": "forged"}
        )
        assert response.status_code == 403

    def test_factor_text_is_escaped(
        self, admin_client: TestClient, db: Session, scored: dict[str, uuid.UUID]
    ) -> None:
        row = health_service.latest(db, scored["quiet"])
        assert row is not None
        row.factors = [{"signal": "x", "impact": 9.0, "text": '<img src=x onerror="alert(1)">'}]
        db.commit()
        page = admin_client.get(f"/accounts/{scored['quiet']}").text
        assert "<img src=x" not in page
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page


class TestOverride:
    def _override(self, client: TestClient, account_id: uuid.UUID, **fields: str) -> object:
        data = {
            "csrf": csrf(client),
            "score": "",
            "risk_level": "",
            "reason": "",
            "expires": "2026-07-15",
            **fields,
        }
        return client.post(
            f"/accounts/{account_id}/health/override", data=data, follow_redirects=False
        )

    def test_override_is_shown_beside_the_computed_score_and_audited(
        self, admin_client: TestClient, db: Session, scored: dict[str, uuid.UUID]
    ) -> None:
        busy = scored["busy"]
        computed = health_service.latest(db, busy)
        assert computed is not None and computed.risk_level == "low"
        done = self._override(
            admin_client, busy, score="30", reason="Owner said they are moving to a rival"
        )
        assert done.status_code == 303  # type: ignore[attr-defined]
        location = done.headers["location"]  # type: ignore[attr-defined]
        assert location == f"/accounts/{busy}?done=override#health"
        page = admin_client.get(location).text
        assert "Override saved" in page
        panel = section(page, "health")
        # The computed score stays on the gauge; the override sits beside it.
        assert f'aria-label="Health score {computed.score:g} out of 100, Healthy"' in panel
        box = section(page, "override")
        assert 'aria-label="Health 30, High risk"' in box
        assert "Owner said they are moving to a rival" in box
        assert "By admin@example.com" in box and "Expires 2026-07-15 23:59 UTC" in box
        assert f'action="/accounts/{busy}/health/override/remove"' in box
        # Lists show the override; the API and the audit log have it.
        health = admin_client.get(f"/api/v1/accounts/{busy}/health").json()
        assert health["override"]["score"] == 30 and health["effective_risk"] == "high"
        assert health["override"]["expires_at"].startswith("2026-07-15T23:59:59")
        row = re.search(r"Busy Blooms</a></td>.*?</tr>", admin_client.get("/accounts").text, re.S)
        assert row and 'aria-label="Health 30, High risk"' in row.group(0)
        # The account's change history (shown to admins) records it.
        assert re.search(r'<ul class="history">.*?· health\.override</li>', page, re.S)

    def test_level_only_override(
        self, admin_client: TestClient, scored: dict[str, uuid.UUID]
    ) -> None:
        done = self._override(
            admin_client, scored["busy"], risk_level="critical", reason="Bankruptcy filed"
        )
        assert done.status_code == 303  # type: ignore[attr-defined]
        box = section(admin_client.get(f"/accounts/{scored['busy']}").text, "override")
        assert "Critical" in box and "(level only)" in box

    @pytest.mark.parametrize(
        ("fields", "message", "field"),
        [
            ({"score": "30", "reason": "   "}, "an override needs a reason", "reason"),
            (
                {"score": "30", "reason": "Churn call", "expires": "2026-06-14"},
                "the expiry must be in the future",
                "expires",
            ),
            ({"reason": "Nothing given"}, "give a score, a risk level or both", "score"),
            ({"score": "140", "reason": "Too high"}, "between 0 and 100", "score"),
            ({"score": "abc", "reason": "Not a number"}, "is not a number", "score"),
            ({"score": "30", "reason": "x", "expires": ""}, "give the date", "expires"),
            ({"score": "30", "reason": "y" * 1001}, "limited to 1,000 characters", "reason"),
            ({"risk_level": "doomed", "reason": "z"}, "unknown risk level 'doomed'", "risk_level"),
        ],
    )
    def test_invalid_input_shows_the_error_and_saves_nothing(
        self,
        admin_client: TestClient,
        db: Session,
        scored: dict[str, uuid.UUID],
        fields: dict[str, str],
        message: str,
        field: str,
    ) -> None:
        response = self._override(admin_client, scored["busy"], **fields)
        assert response.status_code == 422  # type: ignore[attr-defined]
        page = response.text  # type: ignore[attr-defined]
        error = re.search(r'<p class="error" role="alert" id="override-error">([^<]*)</p>', page)
        assert error and message in html.unescape(error.group(1))
        assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', page)
        assert '<details class="override-form" open>' in page
        if fields.get("reason", "").strip():
            assert f">{fields['reason']}</textarea>" in page  # what was typed is kept
        assert health_service.overrides(db, scored["busy"]) == []
        assert "health.override" not in [e.action for e in auth_service.list_audit(db, limit=10)]

    def test_reason_is_escaped(
        self, admin_client: TestClient, scored: dict[str, uuid.UUID]
    ) -> None:
        self._override(admin_client, scored["busy"], score="20", reason="<script>alert(1)</script>")
        page = admin_client.get(f"/accounts/{scored['busy']}").text
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section(page, "override")

    def test_remove_restores_the_computed_score(
        self, admin_client: TestClient, db: Session, scored: dict[str, uuid.UUID]
    ) -> None:
        busy = scored["busy"]
        self._override(admin_client, busy, score="10", reason="Temporary concern")
        done = admin_client.post(
            f"/accounts/{busy}/health/override/remove",
            data={"csrf": csrf(admin_client)},
            follow_redirects=False,
        )
        assert done.status_code == 303
        page = admin_client.get(done.headers["location"]).text
        assert "Override removed" in page and 'id="override"' not in page
        health = admin_client.get(f"/api/v1/accounts/{busy}/health").json()
        assert health["override"] is None and health["effective_risk"] == "low"
        assert "health.override_removed" in [e.action for e in auth_service.list_audit(db)]

    def test_viewer_sees_the_override_but_cannot_change_it(
        self, client: TestClient, db: Session, scored: dict[str, uuid.UUID]
    ) -> None:
        busy = scored["busy"]
        health_service.create_override(
            db,
            busy,
            score=35,
            risk_level=None,
            reason="Seen on a call",
            expires_at=NOW + timedelta(days=5),
            actor=Actor.cli("tests"),
            now=NOW,
        )
        db.commit()
        viewer = viewer_client(client, db)
        page = viewer.get(f"/accounts/{busy}").text
        assert "Seen on a call" in section(page, "override")
        assert "/health/override" not in page
        assert "/health/rescore" not in page
        token = csrf(viewer)
        for path, data in [
            ("override", {"score": "10", "reason": "x", "expires": "2026-07-01"}),
            ("override/remove", {}),
            ("rescore", {}),
        ]:
            response = viewer.post(f"/accounts/{busy}/health/{path}", data={"csrf": token, **data})
            assert response.status_code == 403, path
        assert len(health_service.overrides(db, busy)) == 1
        assert health_service.overrides(db, busy)[0].removed_at is None


class TestPortfolio:
    def test_distribution_and_risk_list_by_mrr(self, admin_client: TestClient, db: Session) -> None:
        accounts = {
            name: make_account(db, now=NOW, name=name, mrr_cents=mrr, status=status)
            for name, mrr, status in [
                ("Small Critical", 2000, "active"),
                ("Big High", 50000, "active"),
                ("Middle High Trial", 9000, "trial"),
                ("Gone High", 90000, "churned"),
                ("Rich Healthy", 80000, "active"),
                ("Medium One", 7000, "active"),
                ("Fresh Unscored", 3000, "active"),
            ]
        }
        set_health(
            db,
            [
                (accounts["Small Critical"].id, 12.0, "critical"),
                (accounts["Big High"].id, 40.0, "high"),
                (accounts["Middle High Trial"].id, 30.0, "high"),
                (accounts["Gone High"].id, 20.0, "high"),
                (accounts["Rich Healthy"].id, 90.0, "low"),
                (accounts["Medium One"].id, 60.0, "medium"),
            ],
        )
        db.commit()
        page = admin_client.get("/").text
        distribution = section(page, "health-distribution")
        figures = dict(
            re.findall(
                r'class="level-name" href="/accounts\?risk=(\w+)">[^<]+</a>'
                r".*?<strong>(\d+)</strong>",
                distribution,
                re.S,
            )
        )
        # Churned accounts are out of the distribution.
        assert figures == {"critical": "1", "high": "2", "medium": "1", "low": "1"}
        assert "$590.00 MRR (40% of MRR)" in distribution  # high: 500 + 90 of 1,480
        assert 'fill="#dc6803"' in distribution
        assert "1 not scored" in distribution
        assert 'class="histogram"' in page and "Score 10 to 19: 1 account" in page
        risk = section(page, "risk-list")
        names = re.findall(r'<a href="/accounts/[^"]+">([^<]+)</a>', risk)
        assert names == ["Big High", "Middle High Trial", "Small Critical"]
        assert 'aria-label="Health 40, High risk"' in risk

    def test_risk_list_shows_the_top_factor(
        self, admin_client: TestClient, db: Session, scored: dict[str, uuid.UUID]
    ) -> None:
        latest = health_service.latest(db, scored["quiet"])
        assert latest is not None and latest.factors
        risk = section(admin_client.get("/").text, "risk-list")
        assert "Quiet Frames" in risk and "Busy Blooms" not in risk
        assert html.escape(latest.factors[0]["text"], quote=False) in risk

    def test_more_at_risk_accounts_link_to_the_filtered_list(
        self, admin_client: TestClient, db: Session
    ) -> None:
        ids = [make_account(db, now=NOW, name=f"Venue {i:02d}").id for i in range(23)]
        set_health(db, [(i, 30.0, "high") for i in ids])
        db.commit()
        risk = section(admin_client.get("/").text, "risk-list")
        assert risk.count('<td><a href="/accounts/') == 20
        assert "All 23 accounts at risk" in risk
        assert 'href="/accounts?risk=critical%2Chigh&amp;sort=mrr&amp;order=desc"' in risk
        listed = admin_client.get("/accounts?risk=critical%2Chigh&sort=mrr&order=desc").text
        assert "23 accounts" in listed
        assert '<option value="critical,high" selected>Critical or High risk</option>' in listed


class TestAccountsList:
    def test_risk_filter_and_health_column(self, admin_client: TestClient, db: Session) -> None:
        high = make_account(db, now=NOW, name="Shaky Studio")
        low = make_account(db, now=NOW, name="Happy Venue")
        make_account(db, now=NOW, name="Brand New Planner")
        set_health(db, [(high.id, 31.4, "high"), (low.id, 88.0, "low")])
        db.commit()
        page = admin_client.get("/accounts?risk=high").text
        assert "1 account" in page and "Shaky Studio" in page and "Happy Venue" not in page
        assert '<option value="high" selected>High risk</option>' in page
        assert 'aria-label="Health 31.4, High risk"' in page
        unscored = admin_client.get("/accounts?risk=unscored").text
        assert "Brand New Planner" in unscored and "Shaky Studio" not in unscored
        everyone = admin_client.get("/accounts").text
        assert "3 accounts" in everyone and "not scored" in everyone
        assert 'aria-label="Health 88, Healthy"' in everyone
        partial = admin_client.get("/accounts?risk=low", headers={"HX-Request": "true"}).text
        assert "<html" not in partial and "Happy Venue" in partial and "Shaky" not in partial

    def test_unknown_risk_level_is_refused(self, admin_client: TestClient) -> None:
        response = admin_client.get("/accounts?risk=doomed", headers={"Accept": "text/html"})
        assert response.status_code == 422 and "unknown risk level doomed" in response.text

    def test_paging_keeps_the_risk_filter(self, admin_client: TestClient, db: Session) -> None:
        at_risk = [make_account(db, now=NOW, name=f"Risky {i:02d}").id for i in range(55)]
        calm = [make_account(db, now=NOW, name=f"Calm {i:02d}").id for i in range(10)]
        set_health(db, [(i, 30.0, "high") for i in at_risk] + [(i, 90.0, "low") for i in calm])
        db.commit()
        first = admin_client.get("/accounts?risk=high").text
        assert "55 accounts" in first and "Calm" not in first
        next_link = re.search(r'href="(/accounts\?[^"]*)"[^>]*rel="next"', first)
        assert next_link and "risk=high" in next_link.group(1)
        second = admin_client.get(html.unescape(next_link.group(1))).text
        assert "Risky 50" in second and "Risky 54" in second and "Calm" not in second
        sort_link = re.search(r'href="(/accounts\?[^"]*sort=mrr[^"]*)"', first)
        assert sort_link and "risk=high" in sort_link.group(1)
