"""/api/v1/accounts/{id}/health... and /api/v1/health/...: what a CSM and an admin do with
health scores, overrides and scorecards through the API.

Data to score: two accounts signed up 400 days before the FixedClock's now, one active every
day of the last 60 days (usage rollups), one silent. Scores are computed by the real engine.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session

from tenure.clock import FixedClock
from tenure.health import service as health_service
from tenure.health.scorecard import default_scorecard
from tenure.health.signals import SIGNALS
from tenure.ingest import service as ingest_service
from tenure.ingest.rollup import ALL_EVENTS
from tests.conftest import NOW
from tests.factories.accounts import make_account
from tests.factories.auth import make_user

KeyClient = Callable[..., TestClient]
SCORECARDS = "/api/v1/health/scorecards"
LEVELS = ["critical", "high", "medium", "low"]


def health_url(account_id: object, tail: str = "") -> str:
    return f"/api/v1/accounts/{account_id}/health{tail}"


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


@pytest.fixture
def accounts(db: Session) -> dict[str, uuid.UUID]:
    signup = NOW - timedelta(days=400)
    busy = make_account(db, now=signup, signup_at=signup, name="Busy Blooms", mrr_cents=9900)
    quiet = make_account(db, now=signup, signup_at=signup, name="Quiet Frames", mrr_cents=4900)
    active_every_day(db, busy.id, days=60, until=NOW.date())
    db.commit()
    return {"busy": busy.id, "quiet": quiet.id}


@pytest.fixture
def scored(db: Session, accounts: dict[str, uuid.UUID]) -> dict[str, uuid.UUID]:
    """The portfolio rescored as of now."""
    health_service.rescore(db, as_of=NOW, now=NOW)
    db.commit()
    return accounts


def problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


def error_fields(response: Response) -> set[str]:
    return {e["field"] for e in problem(response, 422)["errors"]}


def definition(**changes: Any) -> dict[str, Any]:
    data = default_scorecard().model_dump(mode="json")
    data.update(changes)
    return data


def weights(data: dict[str, Any], **new: float) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for component in data["components"]:
        component["weight"] = new.get(component["key"], component["weight"])
    return data


def broken() -> dict[str, Any]:
    """Three mistakes in three places."""
    data = definition()
    data["components"][0]["signals"][1]["signal"] = "logins"
    data["components"][1]["weight"] = -5
    data["risk_bands"][1]["min"] = 0
    return data


BROKEN_PATHS = {"components[0].signals[1].signal", "components[1].weight", "risk_bands"}


class TestLatest:
    def test_rescore_returns_the_explained_score(
        self, admin_client: TestClient, accounts: dict[str, uuid.UUID]
    ) -> None:
        response = admin_client.post(health_url(accounts["busy"], "/rescore"))
        assert response.status_code == 200, response.text
        body = response.json()
        assert 0 <= body["score"] <= 100
        assert body["risk_level"] in LEVELS
        assert body["as_of"].startswith("2026-06-15T12:00:00")
        assert (body["scorecard_key"], body["scorecard_version"]) == ("wedding-default", 1)
        # No surveys or tickets: satisfaction has no data and is left out, not scored zero.
        assert "satisfaction" in body["missing"] and "satisfaction" not in body["components"]
        engagement = body["components"]["engagement"]
        assert engagement["score"] == 100 and engagement["weight"] == 35
        assert all({"signal", "impact", "text"} <= set(f) for f in body["factors"])
        assert body["override"] is None
        assert (body["effective_score"], body["effective_risk"]) == (
            body["score"],
            body["risk_level"],
        )
        assert admin_client.get(health_url(accounts["busy"])).json() == body

    def test_the_silent_account_scores_lower_and_says_why(
        self, admin_client: TestClient, scored: dict[str, uuid.UUID]
    ) -> None:
        busy = admin_client.get(health_url(scored["busy"])).json()
        quiet = admin_client.get(health_url(scored["quiet"])).json()
        assert quiet["score"] < busy["score"]
        signals = [f["signal"] for f in quiet["factors"]]
        assert "active_days_30" in signals
        assert quiet["signals"]["days_since_seen"] == 365

    def test_never_scored_is_404_with_a_clear_detail(
        self, admin_client: TestClient, accounts: dict[str, uuid.UUID]
    ) -> None:
        body = problem(admin_client.get(health_url(accounts["busy"])), 404)
        assert "never been scored" in body["detail"]

    def test_unknown_account_is_404(self, admin_client: TestClient) -> None:
        for response in (
            admin_client.get(health_url(uuid.uuid4())),
            admin_client.post(health_url(uuid.uuid4(), "/rescore")),
            admin_client.get(health_url(uuid.uuid4(), "/history")),
        ):
            assert "no account" in problem(response, 404)["detail"]

    def test_viewer_reads_but_cannot_rescore(
        self, key_client: KeyClient, scored: dict[str, uuid.UUID]
    ) -> None:
        reader = key_client("read")
        assert reader.get(health_url(scored["busy"])).status_code == 200
        problem(reader.post(health_url(scored["busy"], "/rescore")), 403)
        writer = key_client("write")
        assert writer.post(health_url(scored["busy"], "/rescore")).status_code == 200


class TestHistory:
    @pytest.fixture
    def days(self, db: Session, accounts: dict[str, uuid.UUID]) -> list[date]:
        for back in (100, 30, 7, 0):
            health_service.rescore(db, as_of=NOW - timedelta(days=back), now=NOW)
        db.commit()
        return [(NOW - timedelta(days=back)).date() for back in (100, 30, 7, 0)]

    def test_default_is_the_last_90_days(
        self, admin_client: TestClient, accounts: dict[str, uuid.UUID], days: list[date]
    ) -> None:
        body = admin_client.get(health_url(accounts["quiet"], "/history")).json()
        assert [p["scored_on"] for p in body["points"]] == [d.isoformat() for d in days[1:]]
        assert all(p["score"] is not None for p in body["points"])

    def test_deltas_are_against_7_and_30_days_earlier(
        self, admin_client: TestClient, accounts: dict[str, uuid.UUID], days: list[date]
    ) -> None:
        points = admin_client.get(health_url(accounts["quiet"], "/history")).json()["points"]
        by_day = {p["scored_on"]: p for p in points}
        today, week, month = (by_day[d.isoformat()] for d in (days[3], days[2], days[1]))
        assert today["delta_7"] == pytest.approx(today["score"] - week["score"], abs=0.11)
        assert today["delta_30"] == pytest.approx(today["score"] - month["score"], abs=0.11)

    def test_a_chosen_period(
        self, admin_client: TestClient, accounts: dict[str, uuid.UUID], days: list[date]
    ) -> None:
        response = admin_client.get(
            health_url(accounts["busy"], "/history"),
            params={"since": "2026-03-01", "until": "2026-06-10T00:00:00Z"},
        )
        assert [p["scored_on"] for p in response.json()["points"]] == [
            days[0].isoformat(),
            days[1].isoformat(),
            days[2].isoformat(),
        ]

    def test_until_before_since_is_422_naming_until(
        self, admin_client: TestClient, accounts: dict[str, uuid.UUID]
    ) -> None:
        response = admin_client.get(
            health_url(accounts["busy"], "/history"),
            params={"since": "2026-06-01", "until": "2026-05-01"},
        )
        assert error_fields(response) == {"query.until"}
        assert response.json()["field"] == "until"

    def test_a_date_that_is_not_a_date_is_422(
        self, admin_client: TestClient, accounts: dict[str, uuid.UUID]
    ) -> None:
        response = admin_client.get(
            health_url(accounts["busy"], "/history"), params={"since": "last tuesday"}
        )
        assert error_fields(response) == {"query.since"}


class TestOverrides:
    def test_shown_beside_the_computed_score_and_applied_to_the_account(
        self, admin_client: TestClient, scored: dict[str, uuid.UUID]
    ) -> None:
        busy = scored["busy"]
        computed = admin_client.get(health_url(busy)).json()
        assert computed["risk_level"] == "low"
        response = admin_client.post(
            health_url(busy, "/override"),
            json={
                "score": 20,
                "reason": "Owner told us they are closing the studio",
                "expires_at": (NOW + timedelta(days=14)).isoformat(),
            },
        )
        assert response.status_code == 201, response.text
        body = admin_client.get(health_url(busy)).json()
        assert (body["score"], body["risk_level"]) == (computed["score"], "low")
        override = body["override"]
        assert override["score"] == 20 and override["risk_level"] is None
        assert override["reason"] == "Owner told us they are closing the studio"
        assert override["created_by"] == "admin@example.com"
        assert override["expires_at"].startswith("2026-06-29T12:00:00")
        assert (body["effective_score"], body["effective_risk"]) == (20, "critical")
        # What the account and the accounts list show.
        account = admin_client.get(f"/api/v1/accounts/{busy}").json()
        assert (account["health_score"], account["health_risk"]) == (20, "critical")
        critical = admin_client.get("/api/v1/accounts", params={"risk": "critical"}).json()
        assert str(busy) in [a["id"] for a in critical["items"]]
        levels = {
            lv["level"]: lv["accounts"]
            for lv in admin_client.get("/api/v1/health/distribution").json()["levels"]
        }
        assert levels["critical"] >= 1 and levels["low"] == 0

    def test_a_risk_level_alone_keeps_the_computed_score(
        self, admin_client: TestClient, scored: dict[str, uuid.UUID]
    ) -> None:
        busy = scored["busy"]
        response = admin_client.post(
            health_url(busy, "/override"),
            json={
                "risk_level": "high",
                "reason": "Champion left",
                "expires_at": "2026-07-01T00:00:00Z",
            },
        )
        assert response.status_code == 201, response.text
        body = admin_client.get(health_url(busy)).json()
        assert body["effective_score"] == body["score"]
        assert body["effective_risk"] == "high"

    def test_an_expired_override_no_longer_applies(
        self, admin_client: TestClient, clock: FixedClock, scored: dict[str, uuid.UUID]
    ) -> None:
        busy = scored["busy"]
        admin_client.post(
            health_url(busy, "/override"),
            json={
                "score": 10,
                "reason": "Payment dispute",
                "expires_at": (NOW + timedelta(days=3)).isoformat(),
            },
        )
        clock.advance(timedelta(days=3, seconds=1))
        body = admin_client.get(health_url(busy)).json()
        assert body["override"] is None
        assert (body["effective_score"], body["effective_risk"]) == (
            body["score"],
            body["risk_level"],
        )
        history = admin_client.get(health_url(busy, "/overrides")).json()
        assert [o["reason"] for o in history] == ["Payment dispute"]

    def test_remove_then_nothing_to_remove(
        self, admin_client: TestClient, scored: dict[str, uuid.UUID]
    ) -> None:
        busy = scored["busy"]
        admin_client.post(
            health_url(busy, "/override"),
            json={"score": 40, "reason": "Check-in call", "expires_at": "2026-07-01T00:00:00Z"},
        )
        response = admin_client.delete(health_url(busy, "/override"))
        assert response.status_code == 204
        body = admin_client.get(health_url(busy)).json()
        assert body["override"] is None and body["effective_score"] == body["score"]
        assert (
            "no active override"
            in problem(admin_client.delete(health_url(busy, "/override")), 404)["detail"]
        )

    def test_audited(self, admin_client: TestClient, scored: dict[str, uuid.UUID]) -> None:
        busy = scored["busy"]
        admin_client.post(
            health_url(busy, "/override"),
            json={"score": 40, "reason": "Renewal at risk", "expires_at": "2026-07-01T00:00:00Z"},
        )
        admin_client.delete(health_url(busy, "/override"))
        entries = admin_client.get(
            "/api/v1/audit", params={"target_type": "account", "target_id": str(busy)}
        ).json()
        actions = {e["action"]: e for e in entries}
        assert actions["health.override"]["details"]["reason"] == "Renewal at risk"
        assert actions["health.override"]["actor_label"] == "admin@example.com"
        assert "health.override_removed" in actions

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"score": 30, "expires_at": "2026-07-01T00:00:00Z"}, "body.reason"),
            ({"score": 30, "reason": "   ", "expires_at": "2026-07-01T00:00:00Z"}, "body.reason"),
            ({"score": 30, "reason": "Why"}, "body.expires_at"),
            (
                {"score": 30, "reason": "Why", "expires_at": "2026-06-15T11:59:00Z"},
                "body.expires_at",
            ),
            (
                {"score": 30, "reason": "Why", "expires_at": "2026-07-01T00:00:00"},
                "body.expires_at",
            ),
            ({"score": 130, "reason": "Why", "expires_at": "2026-07-01T00:00:00Z"}, "body.score"),
            ({"reason": "Why", "expires_at": "2026-07-01T00:00:00Z"}, "body.score"),
            (
                {"risk_level": "doomed", "reason": "Why", "expires_at": "2026-07-01T00:00:00Z"},
                "body.risk_level",
            ),
        ],
        ids=[
            "no-reason",
            "blank-reason",
            "no-expiry",
            "expiry-in-the-past",
            "expiry-without-zone",
            "score-above-100",
            "neither-score-nor-level",
            "unknown-level",
        ],
    )
    def test_bad_input_is_422_naming_the_field_and_saves_nothing(
        self,
        admin_client: TestClient,
        scored: dict[str, uuid.UUID],
        body: dict[str, Any],
        field: str,
    ) -> None:
        busy = scored["busy"]
        assert error_fields(admin_client.post(health_url(busy, "/override"), json=body)) == {field}
        assert admin_client.get(health_url(busy, "/overrides")).json() == []
        assert admin_client.get(health_url(busy)).json()["override"] is None

    def test_a_past_expiry_says_so(
        self, admin_client: TestClient, scored: dict[str, uuid.UUID]
    ) -> None:
        response = admin_client.post(
            health_url(scored["busy"], "/override"),
            json={"score": 30, "reason": "Why", "expires_at": "2026-06-01T00:00:00Z"},
        )
        body = problem(response, 422)
        assert body["field"] == "expires_at" and "future" in body["detail"]

    def test_a_viewer_cannot_override(
        self, client: TestClient, db: Session, scored: dict[str, uuid.UUID]
    ) -> None:
        make_user(db, now=NOW, email="v@example.com", role="viewer", password="viewer-password")
        db.commit()
        client.post(
            "/api/v1/session", json={"email": "v@example.com", "password": "viewer-password"}
        )
        busy = scored["busy"]
        assert client.get(health_url(busy)).status_code == 200
        payload = {"score": 30, "reason": "Why", "expires_at": "2026-07-01T00:00:00Z"}
        problem(client.post(health_url(busy, "/override"), json=payload), 403)
        problem(client.delete(health_url(busy, "/override")), 403)


class TestDistribution:
    def test_levels_with_accounts_and_mrr_and_a_histogram(
        self, key_client: KeyClient, scored: dict[str, uuid.UUID]
    ) -> None:
        body = key_client("read").get("/api/v1/health/distribution").json()
        assert [lv["level"] for lv in body["levels"]] == LEVELS
        assert sum(lv["accounts"] for lv in body["levels"]) == 2
        assert sum(lv["mrr_cents"] for lv in body["levels"]) == 9900 + 4900
        low = next(lv for lv in body["levels"] if lv["level"] == "low")
        assert (low["accounts"], low["mrr_cents"], low["label"]) == (1, 9900, "Healthy")
        assert [b["min"] for b in body["histogram"]] == list(range(0, 100, 10))
        assert sum(b["accounts"] for b in body["histogram"]) == body["scored"] == 2
        assert body["unscored"] == 0


class TestSignals:
    def test_the_catalogue(self, key_client: KeyClient) -> None:
        body = key_client("read").get("/api/v1/health/signals").json()
        assert {s["name"] for s in body} == set(SIGNALS)
        active = next(s for s in body if s["name"] == "active_days_30")
        assert active["baseline"] == "active_days" and active["label"] == "Active days"
        assert active["meaning"]


class TestScorecards:
    def test_the_shipped_default_is_listed(self, key_client: KeyClient) -> None:
        body = key_client("read").get(SCORECARDS).json()
        assert len(body) == 1
        card = body[0]
        assert (card["key"], card["version"], card["default"], card["active"]) == (
            "wedding-default",
            1,
            True,
            True,
        )
        assert card["segment"] == {"category": [], "plan": [], "lifecycle": []}
        assert card["definition"]["components"][0]["key"] == "engagement"
        detail = key_client("read").get(f"{SCORECARDS}/wedding-default").json()
        assert [v["version"] for v in detail["versions"]] == [1]
        assert (
            "no scorecard" in problem(key_client("read").get(f"{SCORECARDS}/nope"), 404)["detail"]
        )

    def test_invalid_is_422_listing_every_path_and_saves_nothing(
        self, admin_client: TestClient
    ) -> None:
        data = broken()
        data["key"] = "florists"
        data["default"] = False
        response = admin_client.post(SCORECARDS, json=data)
        assert error_fields(response) == BROKEN_PATHS
        assert [c["key"] for c in admin_client.get(SCORECARDS).json()] == ["wedding-default"]
        problem(admin_client.get(f"{SCORECARDS}/florists"), 404)

    def test_create_a_segment_scorecard_used_by_its_accounts(
        self, admin_client: TestClient, db: Session, accounts: dict[str, uuid.UUID]
    ) -> None:
        florist = make_account(
            db,
            now=NOW - timedelta(days=400),
            signup_at=NOW - timedelta(days=400),
            category="florist",
        ).id
        db.commit()
        data = definition(
            key="florists", name="Florists", default=False, segment={"category": ["florist"]}
        )
        response = admin_client.post(SCORECARDS, json=data)
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["key"], body["version"], body["default"]) == ("florists", 1, False)
        assert body["segment"]["category"] == ["florist"]
        assert [c["key"] for c in admin_client.get(SCORECARDS).json()] == [
            "florists",
            "wedding-default",
        ]
        assert admin_client.post(health_url(florist, "/rescore")).json()["scorecard_key"] == (
            "florists"
        )
        busy = admin_client.post(health_url(accounts["busy"], "/rescore")).json()
        assert busy["scorecard_key"] == "wedding-default"
        assert "PUT" in problem(admin_client.post(SCORECARDS, json=data), 409)["detail"]

    def test_put_saves_version_2_and_the_next_rescore_uses_it(
        self, admin_client: TestClient, scored: dict[str, uuid.UUID]
    ) -> None:
        busy = scored["busy"]
        before = admin_client.get(health_url(busy)).json()
        assert before["scorecard_version"] == 1
        changed = weights(definition(), adoption=0)
        response = admin_client.put(f"{SCORECARDS}/wedding-default", json=changed)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["version"] == 2
        assert [v["version"] for v in body["versions"]] == [2, 1]
        assert [v["active"] for v in body["versions"]] == [True, False]
        assert body["definition"]["components"][1]["weight"] == 0
        after = admin_client.post(health_url(busy, "/rescore")).json()
        assert after["scorecard_version"] == 2
        # Adoption (no key feature used) no longer costs anything.
        assert after["score"] > before["score"]

    def test_put_without_a_key_takes_the_path_one(self, admin_client: TestClient) -> None:
        data = definition()
        del data["key"]
        response = admin_client.put(f"{SCORECARDS}/wedding-default", json=data)
        assert response.status_code == 200 and response.json()["version"] == 2

    def test_put_errors(self, admin_client: TestClient) -> None:
        mismatch = admin_client.put(f"{SCORECARDS}/wedding-default", json=definition(key="other"))
        assert error_fields(mismatch) == {"key"}
        invalid = admin_client.put(f"{SCORECARDS}/wedding-default", json=broken())
        assert error_fields(invalid) == BROKEN_PATHS
        unknown = admin_client.put(f"{SCORECARDS}/nope", json=definition(key="nope"))
        problem(unknown, 404)
        versions = admin_client.get(f"{SCORECARDS}/wedding-default").json()["versions"]
        assert [v["version"] for v in versions] == [1]

    def test_retire(self, admin_client: TestClient) -> None:
        admin_client.post(SCORECARDS, json=definition(key="trial", default=False, name="Trial"))
        assert admin_client.delete(f"{SCORECARDS}/trial").status_code == 204
        assert [c["key"] for c in admin_client.get(SCORECARDS).json()] == ["wedding-default"]
        detail = admin_client.get(f"{SCORECARDS}/trial").json()
        assert detail["active"] is False
        problem(admin_client.delete(f"{SCORECARDS}/trial"), 404)
        body = problem(admin_client.delete(f"{SCORECARDS}/wedding-default"), 409)
        assert "default" in body["detail"]

    def test_writes_need_the_admin_scope(self, key_client: KeyClient) -> None:
        csm = key_client("read", "write")
        data = definition(key="trial", default=False)
        problem(csm.post(SCORECARDS, json=data), 403)
        problem(csm.put(f"{SCORECARDS}/wedding-default", json=definition()), 403)
        problem(csm.delete(f"{SCORECARDS}/wedding-default"), 403)
        assert [c["key"] for c in csm.get(SCORECARDS).json()] == ["wedding-default"]


class TestPreview:
    def test_the_distribution_it_would_give_without_saving(
        self, key_client: KeyClient, scored: dict[str, uuid.UUID]
    ) -> None:
        reader = key_client("read")
        before = reader.get(health_url(scored["busy"])).json()
        data = weights(definition(key="what-if", default=False), engagement=0, adoption=0)
        response = reader.post(f"{SCORECARDS}/preview", json=data)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["accounts"], body["scored"]) == (2, 2)
        assert [lv["level"] for lv in body["levels"]] == LEVELS
        assert sum(lv["accounts"] for lv in body["levels"]) == 2
        assert sum(b["accounts"] for b in body["histogram"]) == 2
        assert body["mean"] is not None
        # Nothing saved: no new scorecard, no new score.
        assert [c["key"] for c in reader.get(SCORECARDS).json()] == ["wedding-default"]
        problem(reader.get(f"{SCORECARDS}/what-if"), 404)
        assert reader.get(health_url(scored["busy"])).json() == before

    def test_invalid_is_422_with_paths(self, key_client: KeyClient) -> None:
        response = key_client("read").post(f"{SCORECARDS}/preview", json=broken())
        assert error_fields(response) == BROKEN_PATHS

    def test_not_an_object_is_422(self, key_client: KeyClient) -> None:
        response = key_client("read").post(f"{SCORECARDS}/preview", json=[1, 2])
        assert error_fields(response) == {"body"}
