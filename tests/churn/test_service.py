"""The churn service on a simulated business (SQLite and PostgreSQL): the registry and its
promotion rule, refusals, predictions with explanations, outcomes and live accuracy."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tenure.accounts.models import Account, SubscriptionChange
from tenure.churn import labels, service, training
from tenure.churn.models import ChurnModel, ChurnPrediction
from tenure.churn.training import TrainingRefused
from tenure.hub.models import Outbox
from tenure.kit.actor import Actor
from tests.factories import churn as factory

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def database_url(simulated_database_url: str) -> str:
    return simulated_database_url


def _models(db: Session) -> dict[int, str]:
    return {m.version: m.status for m in db.scalars(select(ChurnModel))}


class TestRegistry:
    def test_first_model_is_active_with_its_report(self, db: Session) -> None:
        model = service.active_model(db)
        assert model is not None and model.version == 1 and model.status == "active"
        assert model.note == "activated: the first model"
        for name in ("lightgbm", "logistic_regression", "health_score"):
            figures = model.metrics[name]
            assert 0.5 < figures["roc_auc"] <= 1.0
            assert figures["examples"] == model.training["validation"]["examples"]
            assert figures["churns"] == model.training["validation"]["churns"] > 0
        # Out of time: every training snapshot's label was known at the first validation one.
        t = model.training
        last_train = datetime.fromisoformat(t["train"]["to"])
        first_valid = datetime.fromisoformat(t["validation"]["from"])
        assert last_train + timedelta(days=t["horizon_days"] + t["grace_days"]) <= first_valid
        assert hashlib.sha256(model.model_text.encode()).hexdigest() == model.model_sha256
        assert model.model_text.startswith("tree")  # LightGBM's text format, not a pickle
        assert set(model.features) >= {"active_days_30", "health_score", "plan", "mrr"}

    def test_retrain_on_same_data_is_not_worse_and_is_promoted(self, db: Session) -> None:
        v1 = service.active_model(db)
        assert v1 is not None
        report = factory.train(db)
        assert report.promoted and report.model.version == 2
        # Deterministic: the same data gives the same model and the same fingerprint.
        assert report.model.fingerprint == v1.fingerprint
        assert report.comparison is not None
        assert report.comparison["roc_auc_new"] == report.comparison["roc_auc_active"]
        assert _models(db) == {1: "retired", 2: "active"}

    def test_worse_model_is_kept_as_candidate(
        self, db: Session, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Trees that cannot split: the same score for everyone (ROC AUC 0.5), worse than v1.
        monkeypatch.setitem(training.PARAMS, "min_data_in_leaf", 10**7)
        monkeypatch.setattr(training, "MAX_ROUNDS", 1)
        report = factory.train(db)
        assert not report.promoted
        assert report.note.startswith("not activated: validation ROC AUC")
        assert "is worse than" in report.note and "of v1" in report.note
        assert _models(db) == {1: "active", 2: "candidate"}
        # "always" activates whatever the figures, "never" never does.
        forced = factory.train(db, promote="always")
        assert forced.promoted and _models(db)[forced.model.version] == "active"
        kept = factory.train(db, promote="never")
        assert not kept.promoted and _models(db)[kept.model.version] == "candidate"

    def test_activate_an_older_version(self, db: Session) -> None:
        factory.train(db, promote="always")
        service.activate(db, 1, actor=Actor.cli(), now=NOW)
        assert _models(db) == {1: "active", 2: "retired"}
        with pytest.raises(service.NotFound, match="no churn model v9"):
            service.activate(db, 9, actor=Actor.cli(), now=NOW)


class TestRefusals:
    def test_too_few_churns_saves_nothing(self, db: Session) -> None:
        with pytest.raises(TrainingRefused) as caught:
            factory.train(db, min_churns=100_000)
        message = caught.value.detail
        assert message.startswith("not enough churn examples to train:")
        assert "at least 100000 churns" in message and "training examples" in message
        assert _models(db) == {1: "active"}

    def test_one_class_says_how_many_were_found(self, db: Session) -> None:
        db.execute(
            update(SubscriptionChange)
            .where(SubscriptionChange.kind.in_(("churn", "reactivation")))
            .values(kind="expansion")
        )
        db.execute(update(Account).values(churned_at=None, status="active"))
        with pytest.raises(TrainingRefused, match=r"0 churn\(s\) among \d+ training examples"):
            factory.train(db)
        assert db.scalar(select(func.count()).select_from(ChurnModel)) == 1

    def test_too_little_history(self, db: Session) -> None:
        with pytest.raises(TrainingRefused, match="at least 3 are needed"):
            factory.train(db, horizon_days=300)

    def test_corrupted_model_refuses_to_predict_naming_the_version(self, db: Session) -> None:
        db.execute(update(ChurnModel).values(model_text="tree\nnot a model"))
        with pytest.raises(service.ModelUnusable, match="churn model v1 is corrupted"):
            service.predict(db, now=NOW)
        # Consistent checksum but unreadable text: LightGBM's refusal, still named.
        text = "tree\nversion=v4\nnot a model at all"
        db.execute(
            update(ChurnModel).values(
                model_text=text, model_sha256=hashlib.sha256(text.encode()).hexdigest()
            )
        )
        service._LOADED.clear()
        with pytest.raises(service.ModelUnusable, match="churn model v1 cannot be read"):
            service.predict(db, now=NOW)
        assert db.scalar(select(func.count()).select_from(ChurnPrediction)) == 0
        # The active model is not replaced: neither by activating a corrupted version nor by a
        # scheduled retrain that cannot compare against it.
        report = factory.train(db)
        assert not report.promoted and "v1 cannot be read" in report.note
        assert _models(db) == {1: "active", 2: "candidate"}
        db.execute(update(ChurnModel).where(ChurnModel.version == 2).values(model_text="x"))
        with pytest.raises(service.ModelUnusable, match="v2"):
            service.activate(db, 2, actor=Actor.cli(), now=NOW)
        assert _models(db) == {1: "active", 2: "candidate"}

    def test_no_active_model(self, db: Session) -> None:
        db.execute(update(ChurnModel).values(status="retired"))
        with pytest.raises(service.NoActiveModel, match="tenure churn train"):
            service.predict(db, now=NOW)


class TestPrediction:
    def test_portfolio(self, db: Session) -> None:
        result = service.predict(db, now=NOW)
        db.commit()
        assert result.model_version == 1
        assert result.as_of == datetime(2026, 6, 15, tzinfo=UTC)
        live = db.scalar(
            select(func.count()).select_from(Account).where(Account.churn_probability.is_not(None))
        )
        assert result.accounts == live > 50
        rows = list(db.scalars(select(ChurnPrediction)))
        assert len(rows) == result.accounts
        for row in rows:
            assert 0.0 < row.probability < 1.0
            assert row.risk_level == service.bands(np.array([row.probability]))[0]
            assert row.mrr_at_risk_cents == round(row.probability * row.mrr_cents)
            assert 1 <= len(row.factors) <= 5
            sizes = [abs(f["contribution"]) for f in row.factors]
            assert sizes == sorted(sizes, reverse=True)
            for f in row.factors:
                assert f["feature"] in service.get_model(db, 1).features
                assert ("raises the risk" in f["text"]) == (f["contribution"] > 0)
        # One churn.risk_changed per account (its first level).
        events = db.scalar(
            select(func.count())
            .select_from(Outbox)
            .where(Outbox.event_type == "churn.risk_changed")
        )
        assert events == result.accounts == result.announced
        # Drift measured for the portfolio.
        model = service.get_model(db, 1)
        assert model.drift is not None and set(model.drift["psi"]) == set(model.features)

    def test_rerun_same_day_replaces_and_announces_only_changes(self, db: Session) -> None:
        first = service.predict(db, now=NOW)
        again = service.predict(db, now=NOW + timedelta(hours=2))
        assert again.accounts == first.accounts and again.announced == 0
        assert db.scalar(select(func.count()).select_from(ChurnPrediction)) == first.accounts

    def test_at_risk_list_by_mrr_at_risk(self, db: Session) -> None:
        service.predict(db, now=NOW)
        rows, total = service.at_risk(db, limit=20)
        assert total > 20 and len(rows) == 20
        values = [a.churn_mrr_at_risk_cents for a in rows]
        assert values == sorted(values, reverse=True) and values[0] > 0
        high, n_high = service.at_risk(db, levels=["high", "critical"], limit=200)
        assert all(a.churn_risk in ("high", "critical") for a in high) and n_high == len(high)
        with pytest.raises(service.InvalidInput, match="unknown churn risk level 'huge'"):
            service.at_risk(db, levels=["huge"])

    def test_one_account_matches_the_portfolio_run(self, db: Session) -> None:
        service.predict(db, now=NOW)
        account = db.scalar(select(Account).where(Account.churn_probability.is_not(None)).limit(1))
        assert account is not None
        portfolio_p = account.churn_probability
        row = service.predict_account(db, account.id, now=NOW)
        assert row.probability == pytest.approx(portfolio_p, abs=1e-6)

    def test_churned_account_is_not_predicted(self, db: Session) -> None:
        gone = db.scalar(select(Account).where(Account.status == "churned").limit(1))
        assert gone is not None
        with pytest.raises(service.Conflict, match="nothing to predict"):
            service.predict_account(db, gone.id, now=NOW)


class TestOutcomes:
    def test_matured_predictions_get_their_outcome_and_live_accuracy(self, db: Session) -> None:
        # Predictions made on 1 January 2026 (data until then), matured by 1 June.
        made = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
        result = service.predict(db, now=made)
        assert result.accounts > 0
        assert service.mature_outcomes(db, now=made + timedelta(days=60)) == 0  # not yet
        done = datetime(2026, 6, 1, tzinfo=UTC)
        assert service.mature_outcomes(db, now=done) == result.accounts
        assert service.mature_outcomes(db, now=done) == 0  # idempotent
        snapshot = datetime(2026, 1, 1, tzinfo=UTC)
        churns = {
            a
            for a, at in labels.churn_events(db, until=done)
            if snapshot < at <= snapshot + timedelta(days=60)
        }
        rows = list(db.scalars(select(ChurnPrediction)))
        assert {r.account_id for r in rows if r.outcome == 1} == {
            r.account_id for r in rows if r.account_id in churns
        }
        assert any(r.outcome == 1 for r in rows) and any(r.outcome == 0 for r in rows)
        live = service.live_accuracy(db, service.get_model(db, 1))
        assert live["examples"] == len(rows) and live["churns"] == len(
            {r.account_id for r in rows} & churns
        )
        assert 0.0 <= live["roc_auc"] <= 1.0


def test_unknown_account(db: Session) -> None:
    with pytest.raises(service.NotFound):
        service.predict_account(db, uuid.uuid4(), now=NOW)


def test_portfolio_explains_low_risk_accounts_when_read(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on a large portfolio: only medium risk and above are explained in the run.
    monkeypatch.setattr(service, "SMALL_BATCH", 0)
    result = service.predict(db, now=NOW)
    assert result.accounts > 0
    rows = list(db.scalars(select(ChurnPrediction)))
    low = [r for r in rows if r.risk_level == "low"]
    assert low and all(r.factors == [] for r in low)
    assert all(r.factors for r in rows if r.risk_level != "low")
    # Read: explained then, from the same features, and kept.
    account_id = low[0].account_id
    row = service.latest_prediction(db, account_id)
    assert row is not None and 1 <= len(row.factors) <= 5
    read = [dict(f) for f in row.factors]
    db.flush()
    db.expire_all()
    kept = service.latest_prediction(db, account_id)
    assert kept is not None and kept.factors == read
    # The same as the run would have said: predicting that account alone explains it in run.
    monkeypatch.setattr(service, "SMALL_BATCH", 1000)
    alone = service.predict_account(db, account_id, now=NOW)
    assert alone.probability == pytest.approx(kept.probability, abs=1e-6)
    assert alone.factors == read


def test_portfolio_all_at_low_risk(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large portfolio where nobody reaches the medium band explains nobody in the run."""
    monkeypatch.setattr(service, "SMALL_BATCH", 0)
    result = service.predict(db, now=NOW, edges=(0.999, 0.9995, 0.9999))
    assert result.accounts > 0
    rows = list(db.scalars(select(ChurnPrediction)))
    assert {r.risk_level for r in rows} == {"low"} and all(r.factors == [] for r in rows)
    row = service.latest_prediction(db, rows[0].account_id)
    assert row is not None and row.factors
