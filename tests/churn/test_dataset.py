"""Point-in-time datasets: snapshots, the leakage test (data added after a snapshot changes
no feature of it), labels and maturity, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from tenure.accounts import service as accounts_service
from tenure.accounts.models import Account, SubscriptionChange
from tenure.accounts.schemas import AccountUpdate
from tenure.churn import features as F
from tenure.churn.dataset import Dataset, build_dataset, monthly_snapshots
from tenure.config import Settings
from tenure.health.models import SeasonalBaseline
from tenure.ingest import service as ingest_service
from tenure.ingest.catalogue import load_catalogue
from tenure.ingest.models import ActiveDay, UsageDaily, UsageDay
from tenure.ingest.rollup import ALL_EVENTS
from tenure.kit.actor import Actor
from tenure.sim import SimConfig
from tenure.sim.loader import load
from tenure.support import service as support_service
from tenure.support.models import SupportInteraction, SurveyResponse
from tenure.support.schemas import SupportInteractionUpdate
from tests.factories.accounts import make_account
from tests.factories.support import make_interaction, make_survey

CATALOGUE = load_catalogue()
SESSION_EVENT = CATALOGUE.activity.session_events[0]
FEATURE_EVENTS = [feature.events[0] for feature in CATALOGUE.key_features]
SIGNUP = datetime(2025, 3, 1, tzinfo=UTC)
SNAPSHOT = datetime(2026, 4, 1, tzinfo=UTC)
UNTIL = datetime(2026, 9, 1, tzinfo=UTC)
DAY = timedelta(days=1)
ACTOR = Actor.system("tests")


def usage(db: Session, who: Account, days: Iterable[date], *, sessions: int = 2) -> None:
    columns: dict[str, list[Any]] = {"account_id": [], "day": [], "metric": [], "count": []}
    for day in days:
        for metric, count in (
            (ALL_EVENTS, sessions + 2),
            (SESSION_EVENT, sessions),
            (FEATURE_EVENTS[0], 1),
            (FEATURE_EVENTS[1], 1),
        ):
            columns["account_id"].append(who.id)
            columns["day"].append(day)
            columns["metric"].append(metric)
            columns["count"].append(count)
    db.flush()
    ingest_service.bulk_insert_usage(db, columns)


def change(db: Session, who: Account, kind: str, before: int, after: int, at: datetime) -> None:
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


def daily(start: datetime, end: datetime, every: int = 1) -> list[date]:
    out, day = [], start.date()
    while day < end.date():
        out.append(day)
        day += timedelta(days=every)
    return out


def assert_same_features(a: Dataset, b: Dataset) -> None:
    assert a.features == b.features
    assert a.account_ids == b.account_ids
    assert a.snapshots == b.snapshots
    for j, name in enumerate(a.features):
        # PostgreSQL may sum a mean's rows in another order: 1e-17 apart is the same value.
        np.testing.assert_allclose(a.X[:, j], b.X[:, j], rtol=1e-12, atol=0, err_msg=name)


def test_monthly_snapshots() -> None:
    got = monthly_snapshots(date(2025, 11, 15), date(2026, 2, 1))
    assert got == [
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 2, 1, tzinfo=UTC),
    ]
    assert monthly_snapshots(date(2026, 1, 1), date(2026, 2, 14), day=15) == [
        datetime(2026, 1, 15, tzinfo=UTC)
    ]


def test_catalogue_names_are_unique_and_documented() -> None:
    features = F.catalogue(["engagement", "support"])
    names = [f.name for f in features]
    assert len(names) == len(set(names))
    assert all(f.meaning and f.window for f in features)
    assert names[-2:] == ["health_engagement", "health_support"]


class TestLeakage:
    def test_data_after_the_snapshot_changes_no_feature(self, db: Session) -> None:
        steady, leaving, quiet = (
            make_account(db, now=SIGNUP, signup_at=SIGNUP, category=c, plan=p)
            for c, p in (("florist", "starter"), ("baker", "professional"), ("venue", "scale"))
        )
        db.flush()
        for who in (steady, leaving, quiet):
            change(db, who, "new", 0, 7900, SIGNUP)
        usage(db, steady, daily(SIGNUP, SNAPSHOT, every=2))
        usage(db, leaving, daily(SNAPSHOT - 120 * DAY, SNAPSHOT, every=3), sessions=1)
        usage(db, quiet, daily(SIGNUP, SIGNUP + 60 * DAY))
        change(db, leaving, "contraction", 7900, 4900, SNAPSHOT - 40 * DAY)
        change(db, leaving, "failed_payment", 4900, 4900, SNAPSHOT - 20 * DAY)
        open_ticket = make_interaction(
            db, leaving, now=SNAPSHOT - 15 * DAY, opened_at=SNAPSHOT - 15 * DAY, sentiment=-0.4
        )
        make_survey(db, steady, now=SNAPSHOT - 30 * DAY, responded_at=SNAPSHOT - 30 * DAY)
        make_survey(db, leaving, now=SNAPSHOT - 50 * DAY, responded_at=SNAPSHOT - 50 * DAY, score=3)
        db.commit()
        snapshots = [SNAPSHOT - 31 * DAY, SNAPSHOT]
        first = build_dataset(db, snapshots=snapshots, until=UNTIL)
        assert first.n == 6
        assert first.y.tolist() == [0, 0, 0, 0, 0, 0]

        # Everything that can happen after the snapshot, from its very first instant.
        usage(db, steady, daily(SNAPSHOT, SNAPSHOT + 60 * DAY), sessions=9)
        usage(db, leaving, [SNAPSHOT.date()], sessions=5)
        usage(db, quiet, daily(SNAPSHOT, SNAPSHOT + 10 * DAY))
        make_interaction(db, steady, now=SNAPSHOT, opened_at=SNAPSHOT, escalated=True)
        support_service.update_interaction(
            db,
            open_ticket.id,
            SupportInteractionUpdate(status="resolved"),
            actor=ACTOR,
            now=SNAPSHOT + DAY,
        )
        make_survey(db, steady, now=SNAPSHOT, responded_at=SNAPSHOT, score=0)
        make_survey(
            db, quiet, now=SNAPSHOT + DAY, responded_at=SNAPSHOT + DAY, kind="csat", score=1
        )
        change(db, steady, "expansion", 7900, 12900, SNAPSHOT)
        change(db, leaving, "failed_payment", 4900, 4900, SNAPSHOT + DAY)
        change(db, leaving, "churn", 4900, 0, SNAPSHOT + 10 * DAY)
        accounts_service.update_account(
            db, leaving.id, AccountUpdate(status="churned"), actor=ACTOR, now=SNAPSHOT + 10 * DAY
        )
        late = make_account(
            db, now=SNAPSHOT + DAY, signup_at=SNAPSHOT + DAY, category="oddity", plan="new"
        )
        db.flush()
        change(db, late, "new", 0, 9900, SNAPSHOT + DAY)
        usage(db, late, daily(SNAPSHOT + DAY, SNAPSHOT + 30 * DAY))
        db.commit()

        second = build_dataset(db, snapshots=snapshots, until=UNTIL)
        assert_same_features(first, second)
        assert second.codes == first.codes
        # Labels may change: that is what they are for.
        # The churn ten days after the snapshot is within 60 days of both snapshots.
        churned = [a == leaving.id for a in second.account_ids]
        assert second.y.tolist() == [int(c) for c in churned]
        # Nothing was stored on the way (the baseline is learned at each snapshot).
        assert db.scalar(select(SeasonalBaseline.learned_on).limit(1)) is None

    def test_features_say_what_was_known(self, db: Session) -> None:
        who = make_account(db, now=SIGNUP, signup_at=SIGNUP, plan="starter")
        db.flush()
        change(db, who, "new", 0, 7900, SIGNUP)
        change(db, who, "contraction", 7900, 4900, SNAPSHOT - 10 * DAY)
        change(db, who, "failed_payment", 4900, 4900, SNAPSHOT - 5 * DAY)
        usage(db, who, [SNAPSHOT.date() - timedelta(days=k) for k in (1, 3, 20, 60)], sessions=2)
        db.commit()
        ds = build_dataset(db, snapshots=[SNAPSHOT], until=UNTIL)
        row = dict(zip(ds.features, ds.X[0].tolist(), strict=True))
        assert row["active_days_7"] == 2
        assert row["active_days_30"] == 3
        assert row["active_days_90"] == 4
        assert row["sessions_7"] == 4
        assert row["events_90"] == 16
        assert row["days_since_seen"] == 0  # active on the last day before the snapshot
        assert row["mrr"] == 49.0
        assert row["failed_payments_90"] == 1
        assert row["downgrades_90"] == 1
        assert row["plan"] == 0 and ds.codes["plan"] == ["starter"]
        assert row["tenure_days"] == pytest.approx((SNAPSHOT - SIGNUP).days)
        assert 0 <= row["health_score"] <= 100

    def test_renewal_and_adoption(self, db: Session) -> None:
        yearly = make_account(
            db, now=SIGNUP, signup_at=SIGNUP, traits={"billing_interval": "Annual"}
        )
        monthly = make_account(
            db, now=SIGNUP, signup_at=SIGNUP, traits={"billing_interval": "monthly"}
        )
        # Signed up after the data began: its onboarding window is known.
        newcomer = make_account(db, now=SNAPSHOT - 100 * DAY, signup_at=SNAPSHOT - 100 * DAY)
        db.flush()
        change(db, yearly, "new", 0, 6500, SIGNUP)
        change(db, monthly, "new", 0, 7900, SIGNUP)
        change(db, newcomer, "new", 0, 7900, SNAPSHOT - 100 * DAY)
        # A reactivation starts a new term.
        change(db, monthly, "churn", 7900, 0, SNAPSHOT - 50 * DAY)
        change(db, monthly, "reactivation", 0, 7900, SNAPSHOT - 40 * DAY)
        usage(db, yearly, [SIGNUP.date() + timedelta(days=30)])
        usage(db, yearly, [SNAPSHOT.date() - DAY])
        usage(db, monthly, [SNAPSHOT.date() - 2 * DAY])
        # The newcomer adopts two key features within its first 60 days, a third later,
        # and a fourth only after the snapshot.
        db.flush()
        for days_in, event in ((5, 0), (50, 1), (80, 2), (101, 3)):
            ingest_service.bulk_insert_usage(
                db,
                {
                    "account_id": [newcomer.id],
                    "day": [(SNAPSHOT - 100 * DAY).date() + timedelta(days=days_in)],
                    "metric": [FEATURE_EVENTS[event]],
                    "count": [1],
                },
            )
        db.commit()
        ds = build_dataset(db, snapshots=[SNAPSHOT], until=UNTIL)
        rows = {
            a: dict(zip(ds.features, x.tolist(), strict=True))
            for a, x in zip(ds.account_ids, ds.X, strict=True)
        }
        y, m, new = rows[yearly.id], rows[monthly.id], rows[newcomer.id]
        assert (y["annual_billing"], m["annual_billing"]) == (1.0, 0.0)
        assert np.isnan(new["annual_billing"])  # no billing_interval trait
        # 2025-03-01 + 365 days = 2026-03-01, a month before the snapshot: the second
        # term ends 334 days after it (the instant before the snapshot is ~1 day earlier).
        assert y["days_to_renewal"] == pytest.approx(365 - (SNAPSHOT - SIGNUP).days + 365, abs=0.01)
        # Reactivated 40 days before: the second monthly term ends ~20.9 days after.
        assert m["days_to_renewal"] == pytest.approx(2 * F.MONTH_DAYS - 40, abs=0.01)
        assert y["key_features_adopted"] == 2 and m["key_features_adopted"] == 2
        assert new["key_features_adopted"] == 3
        # Onboarding progress is only known for signups after the data began.
        assert np.isnan(y["onboarding_progress"]) and np.isnan(m["onboarding_progress"])
        assert new["onboarding_progress"] == pytest.approx(2 / len(CATALOGUE.key_features))


class TestRowsAndLabels:
    def test_churned_accounts_leave_and_labels_mature(self, db: Session) -> None:
        staying, gone, back = (make_account(db, now=SIGNUP, signup_at=SIGNUP) for _ in range(3))
        db.flush()
        for who in (staying, gone, back):
            change(db, who, "new", 0, 7900, SIGNUP)
        change(db, gone, "churn", 7900, 0, datetime(2026, 2, 10, tzinfo=UTC))
        # Gone at the March snapshot, back before April's.
        change(db, back, "churn", 7900, 0, datetime(2026, 2, 20, tzinfo=UTC))
        change(db, back, "reactivation", 0, 7900, datetime(2026, 3, 20, tzinfo=UTC))
        db.commit()
        snaps = monthly_snapshots(date(2026, 2, 1), date(2026, 4, 1))
        ds = build_dataset(db, snapshots=snaps, until=datetime(2026, 5, 10, tzinfo=UTC))
        rows = list(zip(ds.snapshots, ds.account_ids, ds.y.tolist(), strict=True))
        feb, mar, apr = snaps
        expected = {
            (feb, staying.id, 0),
            (feb, gone.id, 1),
            (feb, back.id, 1),
            (mar, staying.id, 0),
            (apr, staying.id, 0),
            (apr, back.id, 0),
        }
        assert set(rows) == expected and len(rows) == len(expected)
        # Mature when snapshot + 60 + 14 days <= until: only February's rows.
        matured = {s for s, m in zip(ds.snapshots, ds.matured.tolist(), strict=True) if m}
        assert matured == {feb}
        assert ds.X.shape == (6, len(ds.features))


SIM_END = date(2026, 10, 1)


def test_simulated_business(engine: Engine, db: Session) -> None:
    load(
        engine,
        SimConfig(accounts=60, months=10, seed=5, end=SIM_END),
        now=datetime(2026, 10, 1, tzinfo=UTC),
        show_progress=False,
    )
    snaps = monthly_snapshots(date(2026, 3, 1), date(2026, 9, 1))
    ds = build_dataset(db, snapshots=snaps)
    assert ds.until == datetime(2026, 10, 1, tzinfo=UTC)
    assert ds.n > 6 * 30
    assert ds.X.dtype == np.float64 and ds.y.dtype == np.int64
    assert set(ds.y.tolist()) <= {0, 1}
    assert ds.matured.tolist() == [s + timedelta(days=74) <= ds.until for s in ds.snapshots]
    # Usage windows nest: 7 within 30 within 90.
    col = {name: ds.X[:, j] for j, name in enumerate(ds.features)}
    assert np.all(col["active_days_7"] <= col["active_days_30"])
    assert np.all(col["active_days_30"] <= col["active_days_90"])
    assert np.all(col["events_30"] <= col["events_90"])
    # The same snapshot built alone gives the same rows (snapshots are independent).
    alone = build_dataset(db, snapshots=[snaps[2]], until=ds.until)
    mask = np.array([s == snaps[2] for s in ds.snapshots])
    # (Plan and category codes follow first appearance, so only the other columns compare.)
    same = [j for j, name in enumerate(ds.features) if name not in ("plan", "category")]
    np.testing.assert_array_equal(alone.X[:, same], ds.X[mask][:, same])
    assert alone.account_ids == [a for a, m in zip(ds.account_ids, mask, strict=True) if m]


def test_simulated_future_changes_no_feature(engine: Engine, db: Session) -> None:
    """The leakage test on a realistic business (several currencies, reactivations, tickets
    resolved later): features at a snapshot built with the months after it, then with all
    of those months taken away, are identical."""
    load(
        engine,
        SimConfig(accounts=60, months=10, seed=8, end=SIM_END),
        now=datetime(2026, 10, 1, tzinfo=UTC),
        show_progress=False,
    )
    snapshot = datetime(2026, 6, 1, tzinfo=UTC)
    snaps = [datetime(2026, 5, 1, tzinfo=UTC), snapshot]
    until = datetime(2026, 10, 1, tzinfo=UTC)
    full = build_dataset(db, snapshots=snaps, until=until)
    assert full.n > 60 and full.y.sum() > 0

    day = snapshot.date()
    db.execute(delete(SubscriptionChange).where(SubscriptionChange.occurred_at >= snapshot))
    db.execute(delete(SurveyResponse).where(SurveyResponse.responded_at >= snapshot))
    db.execute(delete(SupportInteraction).where(SupportInteraction.opened_at >= snapshot))
    db.execute(
        update(SupportInteraction)
        .where(SupportInteraction.resolved_at >= snapshot)
        .values(resolved_at=None, status="open")
    )
    for model in (UsageDaily, UsageDay, ActiveDay):
        db.execute(delete(model).where(model.day >= day))
    ingest_service.rebuild_usage_firsts(db)
    db.execute(
        update(Account)
        .where(Account.churned_at >= snapshot)
        .values(churned_at=None, status="active")
    )
    db.commit()
    cut = build_dataset(db, snapshots=snaps, until=until)
    assert_same_features(full, cut)
    assert cut.codes == full.codes
    # June's churns were all in the future that was taken away; May's month remains.
    june = np.array([s == snapshot for s in cut.snapshots])
    assert full.y[june].sum() > 0 and cut.y[june].sum() == 0


def test_mrr_at_a_snapshot_is_in_the_reporting_currency_after_a_churn(db: Session) -> None:
    """A churned account pays nothing now: its MRR at an earlier snapshot is still the
    amount it paid then, converted at its currency's rate (not counted in its own cents)."""
    from tenure.kit.money import DEFAULT_FX

    peso = make_account(db, now=SIGNUP, signup_at=SIGNUP, currency="ARS", mrr_cents=0)
    quiet = make_account(db, now=SIGNUP, signup_at=SIGNUP, currency="ARS", mrr_cents=0)
    db.flush()
    change(db, peso, "new", 0, 4_500_000, SIGNUP)
    change(db, peso, "churn", 4_500_000, 0, SNAPSHOT + 10 * DAY)
    # No change before the snapshot: it paid what its first later change started from.
    change(db, quiet, "churn", 3_000_000, 0, SNAPSHOT + 20 * DAY)
    db.commit()
    ds = build_dataset(db, snapshots=[SNAPSHOT], until=UNTIL)
    mrr = {a: ds.X[i, ds.features.index("mrr")] for i, a in enumerate(ds.account_ids)}
    assert mrr[peso.id] == DEFAULT_FX.to_base(4_500_000, "ARS") / 100
    assert mrr[quiet.id] == DEFAULT_FX.to_base(3_000_000, "ARS") / 100
    assert 0 < mrr[peso.id] < 45_000 / 10  # far below the peso amount read as dollars


def test_a_churned_account_s_past_mrr_uses_the_installation_s_rates(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENURE_FX_RATES", '{"ARS": 0.002}')
    monkeypatch.setattr("tenure.churn.dataset.get_settings", Settings)
    peso = make_account(db, now=SIGNUP, signup_at=SIGNUP, currency="ARS", mrr_cents=0)
    db.flush()
    change(db, peso, "new", 0, 4_500_000, SIGNUP)
    change(db, peso, "churn", 4_500_000, 0, SNAPSHOT + 10 * DAY)
    db.commit()
    ds = build_dataset(db, snapshots=[SNAPSHOT], until=UNTIL)
    # 45,000.00 pesos at 0.002 dollars each.
    assert ds.X[0, ds.features.index("mrr")] == pytest.approx(90.0)
