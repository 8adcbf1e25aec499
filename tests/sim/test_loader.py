"""The bulk path writes exactly what the simulator generated, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.orm import Session

from tenure.accounts.models import Account, Contact, SubscriptionChange
from tenure.ingest.models import Event, UsageDaily
from tenure.ingest.rollup import ALL_EVENTS
from tenure.sim import SimConfig, generate
from tenure.sim.loader import load
from tenure.support.models import SupportInteraction, SurveyResponse

CONFIG = SimConfig(accounts=40, months=6, seed=11, end=date(2026, 10, 1))
NOW = datetime(2026, 10, 1, tzinfo=UTC)
HIDDEN = {
    "fit",
    "health",
    "hazard",
    "latent",
    "price_sensitivity",
    "foreseeable",
    "truth",
    "onboarding_completed",
    "wind_down_days",
    "treated_on",
}


def _count(db: Session, model: type) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def test_loads_everything_the_simulator_generates(engine: Engine, db: Session) -> None:
    bundles = list(generate(CONFIG))
    stats = load(engine, CONFIG, now=NOW, show_progress=False, chunk_accounts=7)
    expected_events = sum(len(b.events) for b in bundles)
    assert stats.accounts == _count(db, Account) == 40
    assert stats.contacts == _count(db, Contact) == sum(len(b.contacts) for b in bundles)
    assert stats.events == _count(db, Event) == expected_events > 0
    assert _count(db, SubscriptionChange) == sum(len(b.subscriptions) for b in bundles)
    assert _count(db, SupportInteraction) == sum(len(b.support) for b in bundles)
    assert _count(db, SurveyResponse) == sum(len(b.surveys) for b in bundles)
    rolled = db.scalar(select(func.sum(UsageDaily.count)).where(UsageDaily.metric == ALL_EVENTS))
    assert rolled == expected_events

    first = bundles[0]
    account = db.scalars(
        select(Account).where(Account.external_id == first.account.external_id)
    ).one()
    assert account.name == first.account.name and account.signup_at == first.account.signup_at
    event = db.scalars(
        select(Event).where(Event.account_id == account.id).order_by(Event.timestamp).limit(1)
    ).one()
    assert event.contact_id is not None and event.timestamp.tzinfo == UTC

    children = [b for b in bundles if b.account.parent_external_id]
    for child in children:
        row = db.scalars(
            select(Account).where(Account.external_id == child.account.external_id)
        ).one()
        parent = db.get(Account, row.parent_id)
        assert parent is not None and parent.external_id == child.account.parent_external_id


def test_hidden_truth_never_reaches_the_database(engine: Engine, db: Session) -> None:
    load(engine, CONFIG, now=NOW, show_progress=False)
    columns = {
        c["name"] for t in inspect(engine).get_table_names() for c in inspect(engine).get_columns(t)
    }
    assert not columns & HIDDEN
    for account in db.scalars(select(Account)):
        assert not set(account.traits) & HIDDEN
    for event in db.scalars(select(Event).limit(2000)):
        assert not set(event.properties) & HIDDEN
