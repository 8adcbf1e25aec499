"""The churn jobs the worker runs: weekly retrain, daily portfolio prediction, outcomes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from tenure.churn import tasks
from tenure.churn.models import ChurnModel, ChurnPrediction
from tenure.clock import FixedClock
from tenure.config import Settings
from tenure.db import make_session_factory
from tenure.worker.jobs import JobContext, schedule
from tenure.worker.runtime import load_jobs


@pytest.fixture
def database_url(simulated_database_url: str) -> str:
    return simulated_database_url


@pytest.fixture
def ctx(settings: Settings, engine: Engine, clock: FixedClock) -> JobContext:
    tuned = settings.model_copy(update={"churn_min_churns": 10})
    return JobContext(tuned, engine, make_session_factory(engine), clock)


def test_jobs_are_scheduled(settings: Settings) -> None:
    load_jobs()
    crons = schedule(settings)
    assert crons["churn.retrain"] == "30 3 * * 0"  # weekly
    assert crons["churn.predict_portfolio"] == "40 2 * * *"
    assert crons["churn.mature_outcomes"] == "50 2 * * *"


def test_retrain_predict_and_mature(ctx: JobContext, db: Session, clock: FixedClock) -> None:
    assert tasks.retrain(ctx) == 2
    statuses = dict(db.execute(select(ChurnModel.version, ChurnModel.status)).all())
    assert statuses == {1: "retired", 2: "active"}  # same data: not worse, promoted
    db.rollback()  # end the read transaction: see what the jobs commit
    made = tasks.predict_portfolio(ctx)
    assert made > 0
    assert db.scalar(select(func.count()).select_from(ChurnPrediction)) == made
    assert tasks.predict_portfolio(ctx) == made  # a rerun the same day replaces
    db.rollback()
    assert db.scalar(select(func.count()).select_from(ChurnPrediction)) == made
    assert tasks.mature_outcomes(ctx) == 0
    clock.advance(timedelta(days=75))
    assert tasks.mature_outcomes(ctx) == made


def test_retrain_without_enough_churns_keeps_the_active_model(ctx: JobContext, db: Session) -> None:
    strict = JobContext(
        ctx.settings.model_copy(update={"churn_min_churns": 100_000}),
        ctx.engine,
        ctx.sessions,
        ctx.clock,
    )
    with capture_logs() as logged:
        assert tasks.retrain(strict) == 0
    assert db.scalar(select(func.count()).select_from(ChurnModel)) == 1
    (entry,) = [e for e in logged if e["event"] == "churn.retrain.refused"]
    assert entry["log_level"] == "warning"
    assert entry["reason"].startswith("not enough churn examples to train: ")
