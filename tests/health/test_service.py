"""Health scoring on the database: determinism with as_of, seasonality, explanations,
overrides, roll-ups, events, deltas and requested rescores."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tenure.accounts import service as accounts_service
from tenure.accounts.models import Account
from tenure.auth import service as auth_service
from tenure.health import service
from tenure.health.baseline import FLAT_MONTH, prior
from tenure.health.models import HealthScore
from tenure.health.scorecard import default_scorecard, parse_scorecard
from tenure.hub.models import Outbox
from tenure.ingest import service as ingest_service
from tenure.ingest.catalogue import load_catalogue
from tenure.ingest.rollup import ALL_EVENTS
from tenure.kit.actor import Actor
from tenure.kit.errors import Conflict, InvalidInput, NotFound
from tests.conftest import NOW
from tests.factories.accounts import make_account
from tests.factories.support import make_interaction, make_survey

CATALOGUE = load_catalogue()
SESSION_EVENT = CATALOGUE.activity.session_events[0]
FEATURE_EVENTS = [feature.events[0] for feature in CATALOGUE.key_features]
SIGNUP = datetime(2025, 1, 1, tzinfo=UTC)
ACTOR = Actor.system("tests")
DEFAULT_KEY = default_scorecard().key
RISK_BANDS: list[dict[str, Any]] = [
    {"level": "critical", "label": "Critical", "min": 0, "colour": "#b42318"},
    {"level": "high", "label": "High risk", "min": 25, "colour": "#dc6803"},
    {"level": "medium", "label": "Medium", "min": 50, "colour": "#ca8504"},
    {"level": "low", "label": "Healthy", "min": 75, "colour": "#039855"},
]


# Arranging.


def account(db: Session, **fields: Any) -> Account:
    fields.setdefault("signup_at", SIGNUP)
    fields.setdefault("category", "florist")
    created = make_account(db, now=fields.pop("now", NOW), **fields)
    db.flush()
    return created


def usage(
    db: Session,
    who: Account,
    days: Iterable[date],
    *,
    sessions: int = 2,
    features: Iterable[str] = (),
) -> None:
    """usage_daily rollups: an active day with `sessions` session events and the features."""
    columns: dict[str, list[Any]] = {"account_id": [], "day": [], "metric": [], "count": []}
    features = list(features)
    for day in days:
        for metric, count in (
            (ALL_EVENTS, sessions + len(features)),
            (SESSION_EVENT, sessions),
            *((f, 1) for f in features),
        ):
            if count:
                columns["account_id"].append(who.id)
                columns["day"].append(day)
                columns["metric"].append(metric)
                columns["count"].append(count)
    db.flush()
    ingest_service.bulk_insert_usage(db, columns)


def days_before(at: datetime, *offsets: int) -> list[date]:
    return [at.date() - timedelta(days=k) for k in offsets]


def subscription_change(
    db: Session, who: Account, kind: str, before: int, after: int, at: datetime
) -> None:
    db.flush()
    accounts_service.bulk_insert_subscription_changes(
        db,
        {
            "id": [uuid.uuid4()],
            "account_id": [who.id],
            "kind": [kind],
            "mrr_before_cents": [before],
            "mrr_after_cents": [after],
            "currency": ["USD"],
            "occurred_at": [at],
            "created_at": [at],
        },
    )


def ticket(db: Session, who: Account, opened: datetime, **fields: Any) -> None:
    make_interaction(db, who, now=opened, opened_at=opened, **fields)


def component(key: str, weight: float, *signals: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "label": key.title(), "weight": weight, "signals": list(signals)}


def sig(name: str, transform: dict[str, Any], weight: float = 1.0) -> dict[str, Any]:
    return {"signal": name, "transform": transform, "weight": weight}


def linear(zero: float, full: float) -> dict[str, Any]:
    return {"kind": "linear", "zero": zero, "full": full}


def bands(*pairs: tuple[float, float], above: float) -> dict[str, Any]:
    return {
        "kind": "bands",
        "bands": [{"upto": u, "score": s} for u, s in pairs],
        "above": above,
    }


def definition(*components: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "key": DEFAULT_KEY,
        "name": "Test card",
        "default": True,
        "components": list(components),
        "risk_bands": RISK_BANDS,
    } | fields


def install(db: Session, *components: dict[str, Any], **fields: Any) -> service.Card:
    """Make this the scorecard everyone is scored with (the default's next version)."""
    return service.save_scorecard(db, definition(*components, **fields), actor=ACTOR, now=NOW)


# Open tickets only: 0 scores 100, each ticket costs 25 points.
TICKETS = component("support", 1, sig("open_tickets", linear(4, 0)))


# Reading.


def stored(db: Session, who: Account, day: date | None = None) -> dict[str, Any]:
    db.expire_all()
    query = select(HealthScore).where(HealthScore.account_id == who.id)
    if day is not None:
        query = query.where(HealthScore.scored_on == day)
    row = db.scalars(query.order_by(HealthScore.scored_on.desc()).limit(1)).one()
    return {c.key: getattr(row, c.key) for c in HealthScore.__table__.columns}


def all_rows(db: Session) -> list[dict[str, Any]]:
    db.expire_all()
    rows = db.scalars(select(HealthScore).order_by(HealthScore.account_id, HealthScore.scored_on))
    return [{c.key: getattr(r, c.key) for c in HealthScore.__table__.columns} for r in rows]


def shown(db: Session, who: Account) -> tuple[float | None, str | None]:
    """The score and level on the account (what lists and the account page show)."""
    db.expire_all()
    fresh = accounts_service.get_account(db, who.id)
    return fresh.health_score, fresh.health_risk


def health_events(db: Session, who: Account) -> list[dict[str, Any]]:
    return [
        row.payload
        for row in db.scalars(
            select(Outbox)
            .where(Outbox.event_type == "health.changed", Outbox.account_id == who.id)
            .order_by(Outbox.id)
        )
    ]


def factor(row: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [f for f in row["factors"] if f["signal"] == name]
    assert matches, f"no factor {name!r} in {row['factors']}"
    return matches[0]


def a_varied_portfolio(db: Session) -> list[Account]:
    """Three accounts with data for every kind of signal, all before NOW - 20 days."""
    busy = account(db, category="photographer", mrr_cents=12_000)
    quiet = account(db, category="florist", mrr_cents=4_000)
    southern = account(db, category="venue", country="AU", timezone="Australia/Sydney")
    cutoff = NOW - timedelta(days=20)
    usage(db, busy, days_before(cutoff, *range(1, 60)), sessions=3, features=FEATURE_EVENTS[:5])
    # A year earlier too (sessions vs last year).
    usage(db, busy, days_before(cutoff - timedelta(days=365), *range(1, 30)), sessions=5)
    usage(db, quiet, days_before(cutoff, 2, 9, 40, 70), sessions=1, features=FEATURE_EVENTS[:1])
    usage(db, southern, days_before(cutoff, *range(1, 30, 3)), sessions=2)
    ticket(db, quiet, cutoff - timedelta(days=15), sentiment=-0.6)
    ticket(db, quiet, cutoff - timedelta(days=2), escalated=True, sentiment=-0.2)
    ticket(db, busy, cutoff - timedelta(days=30), sentiment=0.5, status="resolved",
           resolved_at=cutoff - timedelta(days=29))  # fmt: skip
    make_survey(db, busy, now=NOW, kind="nps", score=9, responded_at=cutoff - timedelta(days=40))
    make_survey(db, quiet, now=NOW, kind="nps", score=4, responded_at=cutoff - timedelta(days=5))
    make_survey(db, quiet, now=NOW, kind="csat", score=2, responded_at=cutoff - timedelta(days=8))
    subscription_change(db, quiet, "contraction", 6_000, 4_000, cutoff - timedelta(days=30))
    subscription_change(db, quiet, "failed_payment", 4_000, 4_000, cutoff - timedelta(days=10))
    db.commit()
    return [busy, quiet, southern]


class TestDeterminism:
    def test_rescoring_twice_at_the_same_as_of_stores_the_same_rows(self, db: Session) -> None:
        accounts = a_varied_portfolio(db)
        as_of = NOW - timedelta(days=20)
        first = service.rescore(db, as_of=as_of, now=NOW)
        assert first.accounts == 3
        assert first.scored == 3
        before = all_rows(db)
        shown_before = [shown(db, a) for a in accounts]
        again = service.rescore(db, as_of=as_of, now=NOW + timedelta(hours=5))
        assert again.scored == 3
        assert all_rows(db) == before
        assert [shown(db, a) for a in accounts] == shown_before
        # Every kind of data was seen: no component is missing for the busy account.
        busy = stored(db, accounts[0])
        assert busy["missing"] in ([], ["season"])
        assert busy["signals"]["nps"] == 9
        assert busy["signals"]["sessions_vs_last_year"] is not None
        # Each stored level is the level of the stored score.
        card = service.active_cards(db)[-1].config
        for row in before:
            assert row["risk_level"] == card.level_of(row["score"])

    def test_data_after_as_of_does_not_change_a_backfill(self, db: Session) -> None:
        accounts = a_varied_portfolio(db)
        busy, quiet, southern = accounts
        as_of = NOW - timedelta(days=20)
        service.rescore(db, as_of=as_of, now=NOW)
        db.commit()
        before = all_rows(db)
        computed = service.compute(db, as_of=as_of)

        # Everything below happens after as_of.
        later = as_of + timedelta(hours=1)
        usage(db, quiet, [as_of.date() + timedelta(days=k) for k in range(1, 15)], sessions=9,
              features=FEATURE_EVENTS)  # fmt: skip
        usage(db, southern, [as_of.date() + timedelta(days=1)], sessions=1)
        ticket(db, busy, later, escalated=True, sentiment=-1.0)
        make_survey(db, busy, now=NOW, kind="nps", score=0, responded_at=later)
        subscription_change(db, busy, "contraction", 12_000, 1_000, later)
        subscription_change(db, southern, "failed_payment", 7_900, 7_900, later)
        newcomer = account(db, signup_at=later)
        db.commit()

        service.rescore(db, as_of=as_of, now=NOW + timedelta(days=1))
        assert all_rows(db) == before
        assert all(r["account_id"] != newcomer.id for r in all_rows(db))
        again = service.compute(db, as_of=as_of)
        assert again.frame.account_ids == computed.frame.account_ids
        np.testing.assert_array_equal(again.score, computed.score)
        assert again.factors == computed.factors
        # The data does count as of now.
        service.rescore(db, as_of=NOW, now=NOW)
        assert (
            stored(db, busy)["signals"]["nps"] != stored(db, busy, as_of.date())["signals"]["nps"]
        )

    def test_a_backfill_keeps_the_latest_score_on_the_account(self, db: Session) -> None:
        install(db, TICKETS)
        who = account(db)
        ticket(db, who, NOW - timedelta(days=5))
        service.rescore(db, as_of=NOW, now=NOW)
        assert shown(db, who) == (75.0, "low")
        # Last month, before the ticket: a different score kept as history only.
        service.rescore(db, as_of=NOW - timedelta(days=30), now=NOW)
        assert stored(db, who, (NOW - timedelta(days=30)).date())["score"] == 100
        assert shown(db, who) == (75.0, "low")
        fresh = accounts_service.get_account(db, who.id)
        assert fresh.health_as_of == NOW

    def test_accounts_not_alive_at_as_of_are_not_scored(self, db: Session) -> None:
        install(db, TICKETS)
        early = account(db, signup_at=NOW - timedelta(days=100))
        late = account(db, signup_at=NOW - timedelta(days=5))
        result = service.rescore(db, as_of=NOW - timedelta(days=10), now=NOW)
        assert result.accounts == 1
        assert [r["account_id"] for r in all_rows(db)] == [early.id]
        assert shown(db, late) == (None, None)


class TestSignals:
    def test_recency_and_churned_accounts(self, db: Session) -> None:
        install(db, component("recency", 1, sig("days_since_seen", linear(365, 0))))
        recent = account(db)
        usage(db, recent, days_before(NOW, 3, 50))
        long_ago = account(db)
        usage(db, long_ago, days_before(NOW, 120, 200))
        never = account(db, signup_at=NOW - timedelta(days=40))
        gone = account(db, status="churned", now=NOW - timedelta(days=10))
        usage(db, gone, days_before(NOW, 12, 11))
        ticket(db, gone, NOW - timedelta(days=12))
        make_survey(db, gone, now=NOW, kind="nps", score=1, responded_at=NOW - timedelta(days=11))
        subscription_change(db, gone, "churn", 7_900, 0, NOW - timedelta(days=10))
        db.commit()
        result = service.rescore(db, as_of=NOW, now=NOW)
        assert result.accounts == 3
        seen = {
            who.id: stored(db, who)["signals"]["days_since_seen"]
            for who in (recent, long_ago, never)
        }
        # Never seen: as long as the account exists.
        assert seen == {recent.id: 3, long_ago.id: 120, never.id: 40}
        assert all(r["account_id"] != gone.id for r in all_rows(db))
        # Before it churned it was scored like anyone else (as of the start of the day
        # after its last activity).
        before = service.compute(
            db, as_of=NOW - timedelta(days=10, hours=12), account_ids=[gone.id]
        )
        assert before.frame.account_ids == [gone.id]
        assert before.frame.values["days_since_seen"][0] == 1


class TestSeasonality:
    # As of mid-January the last 30 days are December: the quietest month for northern
    # wedding suppliers. Mid-July looks back at June: the peak.
    WINTER = datetime(2026, 1, 15, 12, tzinfo=UTC)
    SUMMER = datetime(2025, 7, 15, 12, tzinfo=UTC)

    def quiet_florist(self, db: Session, at: datetime, **fields: Any) -> Account:
        who = account(db, category="florist", **fields)
        usage(db, who, days_before(at, 1, 3, 5, 7), sessions=2)
        return who

    def test_the_same_low_activity_scores_higher_when_low_activity_is_expected(
        self, db: Session
    ) -> None:
        winter = self.quiet_florist(db, self.WINTER)
        summer = self.quiet_florist(db, self.SUMMER)
        db.commit()
        service.rescore(db, as_of=self.SUMMER, now=self.SUMMER, account_ids=[summer.id])
        service.rescore(db, as_of=self.WINTER, now=self.WINTER, account_ids=[winter.id])
        w, s = stored(db, winter), stored(db, summer)
        # Identical activity, measured the same way.
        for name in ("active_days_30", "sessions_30", "days_since_seen"):
            assert w["signals"][name] == s["signals"][name]
        assert w["signals"]["active_days_30"] == 4
        # Judged against what florists do in that month.
        assert w["components"]["engagement"]["score"] > s["components"]["engagement"]["score"]
        assert w["score"] > s["score"]
        for key in w["components"].keys() - {"engagement"}:
            assert w["components"][key]["score"] == s["components"][key]["score"]
        text = factor(s, "active_days_30")["text"]
        assert "florists in June" in text
        assert "below the usual" in text

    def test_a_seasonal_scorecard_forgives_the_off_season_a_flat_one_does_not(
        self, db: Session
    ) -> None:
        who = self.quiet_florist(db, self.WINTER)
        db.commit()
        engagement = component(
            "engagement",
            1,
            sig("active_days_30", {"kind": "ratio_to_expected", "zero": 0, "full": 1}),
        )
        cards = {
            seasonal: service.Card(
                "t", 1, parse_scorecard(definition(engagement, seasonal=seasonal))
            )
            for seasonal in (True, False)
        }
        score = {
            seasonal: float(
                service.compute(db, as_of=self.WINTER, account_ids=[who.id], cards=[card]).score[0]
            )
            for seasonal, card in cards.items()
        }
        december = prior("florist", "north", 12, "active_days")
        year = prior("florist", "north", FLAT_MONTH, "active_days")
        assert score[True] == pytest.approx(100 * min(1.0, 4 / december))
        assert score[False] == pytest.approx(100 * min(1.0, 4 / year))
        assert score[True] > score[False]

    def test_the_southern_peak_is_the_northern_off_season(self, db: Session) -> None:
        north = self.quiet_florist(db, self.WINTER, country="US")
        south = self.quiet_florist(db, self.WINTER, country="AU", timezone="Australia/Sydney")
        db.commit()
        service.rescore(db, as_of=self.WINTER, now=self.WINTER)
        n, s = stored(db, north), stored(db, south)
        assert n["signals"]["active_days_30"] == s["signals"]["active_days_30"]
        assert n["components"]["engagement"]["score"] > s["components"]["engagement"]["score"]
        assert n["score"] > s["score"]

    def test_the_learned_baseline_says_what_is_usual(self, db: Session) -> None:
        florists = [account(db, category="florist") for _ in range(20)]
        for who in florists:
            usage(db, who, [date(2025, 11, d) for d in range(1, 7)], sessions=2)
            usage(db, who, [date(2026, 5, d) for d in range(1, 16)], sessions=2)
        db.commit()
        learned = service.learn_baseline(db, as_of=NOW, catalogue=CATALOGUE)

        def expected(month: int, name: str = "active_days") -> float:
            return float(learned.expected(["florist"], ["north"], np.array([month]), name)[0])

        assert expected(11) == 6
        assert expected(11, "sessions") == 12
        assert expected(5) == pytest.approx(15 * 30 / 31)
        # Recorded but quiet: January was a month of no activity.
        assert expected(1) == 0
        # Before anything was recorded: the shipped calendar.
        assert expected(7) == prior("florist", "north", 7, "active_days")
        # The stored baseline is what scoring uses in the following days.
        again = service.baseline_for(db, as_of=NOW + timedelta(days=2), catalogue=CATALOGUE)
        assert again.learned_on == NOW.date()
        assert again.figures == learned.figures
        scored = service.compute(db, as_of=NOW, account_ids=[florists[0].id], baseline=learned)
        assert scored.frame.expected["active_days"][0] == pytest.approx(15 * 30 / 31)


class TestExplanations:
    HEALTHY_USAGE = component("adoption", 1, sig("feature_breadth_30", linear(0, 1)))

    def test_aging_tickets_are_named(self, db: Session) -> None:
        install(
            db,
            self.HEALTHY_USAGE,
            component(
                "support",
                1,
                sig("open_tickets", bands((0, 100), (1, 80), above=40)),
                sig("aging_tickets", bands((0, 100), above=0), 2),
            ),
        )
        who = account(db)
        usage(db, who, days_before(NOW, 1, 2), features=FEATURE_EVENTS[:2])
        for days in (12, 15, 20):
            ticket(db, who, NOW - timedelta(days=days))
        ticket(db, who, NOW - timedelta(days=30), status="resolved",
               resolved_at=NOW - timedelta(days=25))  # fmt: skip
        db.commit()
        service.rescore(db, as_of=NOW, now=NOW)
        row = stored(db, who)
        assert row["signals"]["aging_tickets"] == 3
        assert row["signals"]["open_tickets"] == 3
        top = row["factors"][0]
        assert top["signal"] == "aging_tickets"
        assert "3 tickets open for more than 10 days" in top["text"]
        assert top["impact"] == pytest.approx(100 * 2 / 3 * 1 / 2, abs=0.1)
        assert factor(row, "open_tickets")["text"].startswith("3 support tickets open")
        assert row["components"]["adoption"]["score"] == 100
        assert all(f["signal"] != "feature_breadth_30" for f in row["factors"])

    def test_a_low_nps_answer_is_quoted_with_its_day(self, db: Session) -> None:
        install(
            db,
            self.HEALTHY_USAGE,
            component("satisfaction", 1, sig("nps", linear(0, 10))),
        )
        who = account(db)
        usage(db, who, days_before(NOW, 1), features=FEATURE_EVENTS[:1])
        make_survey(db, who, now=NOW, kind="nps", score=8, responded_at=NOW - timedelta(days=200))
        make_survey(
            db, who, now=NOW, kind="nps", score=3, responded_at=datetime(2026, 6, 4, 9, tzinfo=UTC)
        )
        db.commit()
        service.rescore(db, as_of=NOW, now=NOW)
        row = stored(db, who)
        nps = factor(row, "nps")
        assert row["factors"][0] is not None and row["factors"][0]["signal"] == "nps"
        assert "NPS 3 on 4 June 2026" in nps["text"]
        # The older, better answer counts for less (decay), not nothing.
        assert 3 < row["signals"]["nps"] < 5.5

    def test_missing_components_are_listed_and_do_not_cost(self, db: Session) -> None:
        install(
            db,
            self.HEALTHY_USAGE,
            component("satisfaction", 3, sig("nps", linear(0, 10)), sig("csat", linear(1, 5))),
        )
        who = account(db)
        usage(db, who, days_before(NOW, 1), features=FEATURE_EVENTS[:1])
        db.commit()
        service.rescore(db, as_of=NOW, now=NOW)
        row = stored(db, who)
        assert row["missing"] == ["satisfaction"]
        assert set(row["components"]) == {"adoption"}
        assert row["score"] == 100
        assert row["factors"] == []

    def test_no_data_at_all_gives_no_score(self, db: Session) -> None:
        install(db, component("satisfaction", 1, sig("nps", linear(0, 10))))
        who = account(db)
        db.commit()
        result = service.rescore(db, as_of=NOW, now=NOW)
        assert (result.accounts, result.scored) == (1, 0)
        row = stored(db, who)
        assert row["score"] is None
        assert row["risk_level"] is None
        assert row["missing"] == ["satisfaction"]
        assert shown(db, who) == (None, None)
        assert health_events(db, who) == []


class TestLevels:
    def test_the_level_is_the_level_of_the_score_shown(self, db: Session) -> None:
        # One ticket scores 74.96, stored and shown as 75.0: that is "low" (75 and up).
        install(db, component("support", 1, sig("open_tickets", linear(1 / 0.2504, 0))))
        who = account(db)
        ticket(db, who, NOW - timedelta(days=1))
        db.commit()
        service.rescore(db, as_of=NOW, now=NOW)
        row = stored(db, who)
        assert (row["score"], row["risk_level"]) == (75.0, "low")
        assert shown(db, who) == (75.0, "low")
        assert health_events(db, who)[-1]["risk_level"] == "low"


class TestOverrides:
    def scored(self, db: Session) -> Account:
        install(db, TICKETS)
        who = account(db)
        ticket(db, who, NOW - timedelta(days=2))
        db.commit()
        service.rescore(db, as_of=NOW, now=NOW)
        assert shown(db, who) == (75.0, "low")
        return who

    def override(self, db: Session, who: Account, **fields: Any) -> Any:
        data: dict[str, Any] = {
            "score": 20.0,
            "risk_level": None,
            "reason": "The owner told us they are selling the business",
            "expires_at": NOW + timedelta(days=7),
            "actor": ACTOR,
            "now": NOW,
        }
        return service.create_override(db, who.id, **(data | fields))

    def test_invalid_overrides_are_refused(self, db: Session) -> None:
        who = self.scored(db)
        cases: list[tuple[dict[str, Any], str]] = [
            ({"reason": ""}, "reason"),
            ({"reason": "   "}, "reason"),
            ({"expires_at": NOW}, "expires_at"),
            ({"expires_at": NOW - timedelta(minutes=1)}, "expires_at"),
            ({"score": None, "risk_level": None}, "score"),
            ({"score": 101.0}, "score"),
            ({"score": -1.0}, "score"),
            ({"score": None, "risk_level": "doomed"}, "risk_level"),
        ]
        for fields, field in cases:
            with pytest.raises(InvalidInput) as caught:
                self.override(db, who, **fields)
            assert caught.value.status == 422
            assert caught.value.extra["field"] == field, fields
        assert service.active_override(db, who.id, at=NOW) is None
        actions = [
            e.action
            for e in auth_service.list_audit(db, target_type="account", target_id=str(who.id))
        ]
        assert "health.override" not in actions
        assert shown(db, who) == (75.0, "low")

    def test_an_override_of_an_unknown_account(self, db: Session) -> None:
        with pytest.raises(NotFound):
            service.create_override(
                db,
                uuid.uuid4(),
                score=10,
                risk_level=None,
                reason="why",
                expires_at=NOW + timedelta(days=1),
                actor=ACTOR,
                now=NOW,
            )

    def test_the_override_is_shown_until_it_expires(self, db: Session) -> None:
        who = self.scored(db)
        self.override(db, who)
        db.commit()
        assert shown(db, who) == (20.0, "critical")
        # Shown beside the computed score, which stays in the history.
        computed = service.latest(db, who.id)
        assert computed is not None and computed.score == 75.0
        active = service.active_override(db, who.id, at=NOW)
        assert active is not None
        assert active.reason == "The owner told us they are selling the business"
        view = service.health_view(db, who.id, at=NOW)
        assert view is not None
        assert (view.row.score, view.row.risk_level) == (75.0, "low")
        assert (view.effective_score, view.effective_risk) == (20.0, "critical")
        assert view.override is not None and view.override.id == active.id
        # Audited.
        entries = auth_service.list_audit(db, target_type="account", target_id=str(who.id))
        audit = [e for e in entries if e.action == "health.override"]
        assert len(audit) == 1
        assert audit[0].details["score"] == 20.0
        assert audit[0].details["reason"] == active.reason

        # A rescore while it lasts does not hide it.
        service.rescore(db, as_of=NOW + timedelta(days=1), now=NOW + timedelta(days=1))
        assert shown(db, who) == (20.0, "critical")
        assert stored(db, who)["score"] == 75.0

        # Nothing lapses early.
        assert service.expire_overrides(db, now=NOW + timedelta(days=6)) == 0
        assert shown(db, who) == (20.0, "critical")
        later = NOW + timedelta(days=7, seconds=1)
        assert service.expire_overrides(db, now=later) == 1
        db.commit()
        assert shown(db, who) == (75.0, "low")
        assert service.active_override(db, who.id, at=later) is None
        assert service.expire_overrides(db, now=later) == 0
        view = service.health_view(db, who.id, at=later)
        assert view is not None and view.override is None
        assert (view.effective_score, view.effective_risk) == (75.0, "low")
        # Kept as history.
        assert [o.score for o in service.overrides(db, who.id)] == [20.0]

    def test_a_risk_level_override_keeps_the_computed_score(self, db: Session) -> None:
        who = self.scored(db)
        self.override(db, who, score=None, risk_level="high")
        assert shown(db, who) == (75.0, "high")
        service.rescore(db, as_of=NOW, now=NOW)
        assert shown(db, who) == (75.0, "high")

    def test_removing_an_override(self, db: Session) -> None:
        who = self.scored(db)
        self.override(db, who)
        service.remove_override(db, who.id, actor=ACTOR, now=NOW + timedelta(hours=1))
        assert shown(db, who) == (75.0, "low")
        actions = [
            e.action
            for e in auth_service.list_audit(db, target_type="account", target_id=str(who.id))
        ]
        assert "health.override_removed" in actions
        with pytest.raises(NotFound):
            service.remove_override(db, who.id, actor=ACTOR, now=NOW + timedelta(hours=2))

    def test_a_new_override_replaces_the_active_one(self, db: Session) -> None:
        who = self.scored(db)
        self.override(db, who)
        self.override(db, who, score=60.0, now=NOW + timedelta(minutes=5))
        assert shown(db, who) == (60.0, "medium")
        active = service.active_override(db, who.id, at=NOW + timedelta(minutes=6))
        assert active is not None and active.score == 60.0


class TestRollups:
    def family(self, db: Session, rollup: str) -> tuple[Account, Account, Account]:
        install(db, TICKETS, parent_rollup=rollup)
        parent = account(db, mrr_cents=0)
        big = account(db, parent_id=parent.id, mrr_cents=30_000)
        small = account(db, parent_id=parent.id, mrr_cents=10_000)
        for days in (1, 2, 3):
            ticket(db, small, NOW - timedelta(days=days))  # 25: high risk
        ticket(db, parent, NOW - timedelta(days=1))  # the parent's own data does not count
        db.commit()
        return parent, big, small

    def test_mean(self, db: Session) -> None:
        parent, big, small = self.family(db, "mean")
        service.rescore(db, as_of=NOW, now=NOW)
        assert stored(db, big)["score"] == 100
        assert stored(db, small)["score"] == 25
        row = stored(db, parent)
        assert row["score"] == 62.5
        assert row["risk_level"] == "medium"
        assert row["children"] == 2
        assert row["factors"][0]["signal"] == "children"
        assert row["factors"][0]["text"] == "1 of 2 child accounts are at high or critical risk"
        assert "Weakest child" in row["factors"][1]["text"]
        assert row["components"]["support"]["score"] == 62.5
        assert shown(db, parent) == (62.5, "medium")
        assert stored(db, big)["children"] == 0

    def test_weighted_by_mrr(self, db: Session) -> None:
        parent, _, _ = self.family(db, "mrr_weighted")
        service.rescore(db, as_of=NOW, now=NOW)
        row = stored(db, parent)
        assert row["score"] == pytest.approx((100 * 3 + 25) / 4, abs=0.05)
        assert row["risk_level"] == "low"

    def test_rescoring_a_child_rescores_its_parent(self, db: Session) -> None:
        parent, big, _ = self.family(db, "mean")
        service.rescore(db, as_of=NOW, now=NOW)
        ticket(db, big, NOW - timedelta(hours=3))
        ticket(db, big, NOW - timedelta(hours=2))
        db.commit()
        later = NOW + timedelta(minutes=10)
        result = service.rescore(db, as_of=later, now=later, account_ids=[big.id])
        assert result.accounts == 3  # the child, its parent and its sibling
        assert stored(db, big)["score"] == 50
        assert stored(db, parent)["score"] == 37.5
        assert shown(db, parent) == (37.5, "high")


class TestHealthChanged:
    # 0 tickets 100, 1 ticket 98, 2 tickets 80 (still low), 3 tickets 60 (medium).
    STEPS = component(
        "support", 1, sig("open_tickets", bands((0, 100), (1, 98), (2, 80), (3, 60), above=10))
    )

    def test_announced_on_real_changes_only(self, db: Session) -> None:
        install(db, self.STEPS)
        who = account(db)
        db.commit()

        def rescore_with_tickets(count: int, minutes: int) -> list[dict[str, Any]]:
            at = NOW + timedelta(minutes=minutes)
            for _ in range(count):
                ticket(db, who, at - timedelta(seconds=30))
            db.commit()
            service.rescore(db, as_of=at, now=at)
            db.commit()
            return health_events(db, who)

        first = rescore_with_tickets(0, 0)
        assert len(first) == 1  # the first score
        assert first[0]["score"] == 100
        assert first[0]["previous_score"] is None
        assert first[0]["risk_level"] == "low"
        assert first[0]["scorecard_version"] == f"{DEFAULT_KEY}@2"

        assert len(rescore_with_tickets(0, 1)) == 1  # nothing changed
        assert len(rescore_with_tickets(1, 2)) == 1  # 100 -> 98: too small to announce
        assert shown(db, who) == (98.0, "low")

        events = rescore_with_tickets(1, 3)  # 98 -> 80: same level, a real change
        assert len(events) == 2
        assert (events[-1]["previous_score"], events[-1]["score"]) == (98.0, 80.0)
        assert events[-1]["risk_level"] == events[-1]["previous_risk_level"] == "low"

        events = rescore_with_tickets(1, 4)  # 80 -> 60: a new level
        assert len(events) == 3
        assert events[-1]["previous_risk_level"] == "low"
        assert events[-1]["risk_level"] == "medium"
        assert events[-1]["score"] == 60.0

    def test_nothing_is_announced_when_asked_not_to(self, db: Session) -> None:
        install(db, self.STEPS)
        who = account(db)
        db.commit()
        result = service.rescore(db, as_of=NOW, now=NOW, publish=False)
        assert result.announced == 0
        assert health_events(db, who) == []

    def test_an_override_is_what_is_announced(self, db: Session) -> None:
        install(db, self.STEPS)
        who = account(db)
        service.rescore(db, as_of=NOW, now=NOW)
        service.create_override(
            db,
            who.id,
            score=30.0,
            risk_level=None,
            reason="Known trouble",
            expires_at=NOW + timedelta(days=3),
            actor=ACTOR,
            now=NOW,
        )
        db.commit()
        ticket(db, who, NOW + timedelta(minutes=1))
        db.commit()
        later = NOW + timedelta(minutes=5)
        service.rescore(db, as_of=later, now=later)
        # The computed score moved a little, the account still shows the override: quiet.
        assert stored(db, who)["score"] == 98
        assert shown(db, who) == (30.0, "high")
        assert len(health_events(db, who)) == 1


class TestDeltas:
    def test_deltas_against_7_and_30_days_earlier(self, db: Session) -> None:
        install(db, TICKETS)
        who = account(db)
        ticket(db, who, NOW - timedelta(days=20))
        ticket(db, who, NOW - timedelta(days=3))
        db.commit()
        for back in (30, 7, 0):
            at = NOW - timedelta(days=back)
            service.rescore(db, as_of=at, now=at)
        month_ago = stored(db, who, (NOW - timedelta(days=30)).date())
        week_ago = stored(db, who, (NOW - timedelta(days=7)).date())
        today = stored(db, who)
        assert (month_ago["score"], week_ago["score"], today["score"]) == (100, 75, 50)
        assert today["delta_7"] == -25
        assert today["delta_30"] == -50
        assert week_ago["delta_7"] is None  # nothing was scored 14 days ago
        assert week_ago["delta_30"] is None
        assert month_ago["delta_7"] is None
        # The change is a difference of components.
        assert today["components"]["support"]["contribution"] - week_ago["components"]["support"][
            "contribution"
        ] == pytest.approx(today["delta_7"])
        history = service.history(
            db, who.id, since=NOW - timedelta(days=40), until=NOW + timedelta(days=1)
        )
        assert [h.score for h in history] == [100, 75, 50]
        with pytest.raises(InvalidInput):
            service.history(db, who.id, since=NOW, until=NOW)

    def test_a_later_score_the_same_day_replaces_the_earlier_one(self, db: Session) -> None:
        install(db, TICKETS)
        who = account(db)
        service.rescore(db, as_of=NOW - timedelta(hours=3), now=NOW)
        ticket(db, who, NOW - timedelta(hours=2))
        db.commit()
        service.rescore(db, as_of=NOW, now=NOW)
        rows = all_rows(db)
        assert len(rows) == 1
        assert rows[0]["score"] == 75
        assert rows[0]["as_of"] == NOW


class TestRescoreRequested:
    def test_only_marked_accounts_are_rescored_and_their_marks_cleared(self, db: Session) -> None:
        install(db, TICKETS)
        marked = account(db)
        other = account(db)
        db.commit()
        accounts_service.request_rescore(db, [marked.id], now=NOW - timedelta(seconds=10))
        db.commit()
        result = service.rescore_requested(db, now=NOW)
        db.commit()
        assert result is not None
        assert result.accounts == 1
        assert result.as_of == NOW
        assert [r["account_id"] for r in all_rows(db)] == [marked.id]
        assert shown(db, other) == (None, None)
        assert accounts_service.get_account(db, marked.id).rescore_requested_at is None
        assert service.rescore_requested(db, now=NOW + timedelta(seconds=5)) is None

    def test_recent_marks_wait_for_the_debounce(self, db: Session) -> None:
        install(db, TICKETS)
        who = account(db)
        db.commit()
        accounts_service.request_rescore(db, [who.id], now=NOW - timedelta(seconds=1))
        db.commit()
        assert service.rescore_requested(db, now=NOW) is None
        db.expire_all()
        assert accounts_service.get_account(db, who.id).rescore_requested_at is not None
        result = service.rescore_requested(db, now=NOW + timedelta(seconds=5))
        assert result is not None and result.accounts == 1
        db.expire_all()
        assert accounts_service.get_account(db, who.id).rescore_requested_at is None

    def test_new_support_data_marks_the_account(self, db: Session) -> None:
        install(db, TICKETS)
        who = account(db)
        service.rescore(db, as_of=NOW, now=NOW)
        db.commit()
        ticket(db, who, NOW + timedelta(seconds=1))
        db.commit()
        later = NOW + timedelta(seconds=10)
        result = service.rescore_requested(db, now=later)
        assert result is not None and result.accounts == 1
        assert shown(db, who) == (75.0, "low")


class TestScorecardsAndPortfolio:
    def test_versions_and_the_single_default(self, db: Session) -> None:
        card = install(db, TICKETS)
        assert card.version == 2
        assert [v.version for v in service.scorecard_versions(db, DEFAULT_KEY)] == [2, 1]
        with pytest.raises(Conflict):
            service.save_scorecard(db, definition(TICKETS, key="another"), actor=ACTOR, now=NOW)
        with pytest.raises(Conflict):
            service.retire_scorecard(db, DEFAULT_KEY, actor=ACTOR, now=NOW)
        with pytest.raises(InvalidInput):
            service.save_scorecard(
                db, definition(component("support", -1, TICKETS["signals"][0])), actor=ACTOR,
                now=NOW,
            )  # fmt: skip
        assert service.active_cards(db)[-1].version == 2

    def test_a_segment_scorecard_takes_its_accounts(self, db: Session) -> None:
        install(db, TICKETS)
        service.save_scorecard(
            db,
            definition(
                component("support", 1, sig("open_tickets", linear(1, 0))),
                key="venues",
                default=False,
                segment={"category": ["venue"]},
            ),
            actor=ACTOR,
            now=NOW,
        )
        venue = account(db, category="venue")
        florist = account(db, category="florist")
        for who in (venue, florist):
            ticket(db, who, NOW - timedelta(days=1))
        db.commit()
        service.rescore(db, as_of=NOW, now=NOW)
        assert (stored(db, venue)["scorecard_key"], stored(db, venue)["score"]) == ("venues", 0)
        assert (stored(db, florist)["scorecard_key"], stored(db, florist)["score"]) == (
            DEFAULT_KEY,
            75,
        )

    def test_a_lifecycle_scorecard_takes_new_accounts(self, db: Session) -> None:
        install(db, TICKETS)
        service.save_scorecard(
            db,
            definition(
                component("support", 1, sig("open_tickets", linear(2, 0))),
                key="onboarding",
                default=False,
                segment={"lifecycle": ["onboarding"], "plan": ["professional"]},
            ),
            actor=ACTOR,
            now=NOW,
        )
        new = account(db, signup_at=NOW - timedelta(days=20))
        other_plan = account(db, signup_at=NOW - timedelta(days=20), plan="starter")
        old = account(db)
        for who in (new, other_plan, old):
            ticket(db, who, NOW - timedelta(days=1))
        db.commit()
        service.rescore(db, as_of=NOW, now=NOW)
        assert (stored(db, new)["scorecard_key"], stored(db, new)["score"]) == ("onboarding", 50)
        assert stored(db, other_plan)["scorecard_key"] == DEFAULT_KEY
        assert stored(db, old)["scorecard_key"] == DEFAULT_KEY

    def test_an_empty_portfolio(self, db: Session) -> None:
        result = service.rescore(db, as_of=NOW, now=NOW)
        assert (result.accounts, result.scored, result.announced) == (0, 0, 0)
        assert service.distribution(db)["unscored"] == 0
        assert service.health_view(db, uuid.uuid4(), at=NOW) is None

    def test_distribution_and_preview(self, db: Session) -> None:
        install(db, TICKETS)
        people = [account(db) for _ in range(3)]
        for count, who in zip((0, 1, 3), people, strict=True):
            for k in range(count):
                ticket(db, who, NOW - timedelta(days=k + 1))
        db.commit()
        service.rescore(db, as_of=NOW, now=NOW)
        dist = service.distribution(db)
        assert {k: v["accounts"] for k, v in dist["levels"].items()} == {
            "critical": 0,
            "high": 1,
            "medium": 0,
            "low": 2,
        }
        assert sum(dist["histogram"]) == 3
        assert dist["unscored"] == 0

        rows_before = all_rows(db)
        strict = definition(component("support", 1, sig("open_tickets", linear(1, 0))))
        preview = service.preview(db, strict, as_of=NOW)
        assert preview["accounts"] == 3
        assert preview["levels"] == {"critical": 2, "high": 0, "medium": 0, "low": 1}
        assert preview["mean"] == pytest.approx(100 / 3, abs=0.1)
        # Nothing saved.
        assert all_rows(db) == rows_before
        assert service.active_cards(db)[-1].version == 2
