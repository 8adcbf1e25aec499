"""A simulated business with a trained churn model, built once per test session and copied
for each test (a SQLite file copy; PostgreSQL's CREATE DATABASE ... TEMPLATE)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Engine

from tenure.churn import service
from tenure.churn.service import TrainReport
from tenure.db import make_session_factory
from tenure.kit.actor import Actor
from tenure.sim import SimConfig
from tenure.sim.loader import load

# Data ends on 1 June 2026; the tests' clock says 15 June 2026.
SIM_END = date(2026, 6, 1)
SIM = SimConfig(accounts=200, months=14, seed=11, end=SIM_END)
TRAINED_AT = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
MIN_CHURNS = 10


def train(session: object, **overrides: object) -> TrainReport:
    """Train on the simulated business with the test-size thresholds."""
    kwargs: dict[str, object] = {"now": TRAINED_AT, "actor": Actor.cli(), "min_churns": MIN_CHURNS}
    kwargs.update(overrides)
    return service.train_model(session, **kwargs)  # type: ignore[arg-type]


def build(engine: Engine) -> None:
    """Load the simulated business into a migrated, empty database and train model v1."""
    load(engine, SIM, now=datetime(2026, 6, 1, tzinfo=UTC), show_progress=False)
    with make_session_factory(engine)() as session:
        train(session)
        session.commit()
