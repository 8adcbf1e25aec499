from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, inspect
from sqlalchemy.orm import Session

from tenure.db import downgrade, upgrade
from tenure.kit.actor import Actor
from tenure.sim import catalog
from tenure.support import repository, service
from tenure.support.schemas import (
    CHANNELS,
    INTERACTION_TYPES,
    PRIORITIES,
    STATUSES,
    SupportInteractionUpsert,
)
from tests.conftest import NOW
from tests.factories.accounts import make_account
from tests.factories.support import make_interaction

ALLOWED = {
    ("open", "pending"),
    ("open", "resolved"),
    ("open", "closed"),
    ("pending", "open"),
    ("pending", "resolved"),
    ("pending", "closed"),
    ("resolved", "open"),
    ("resolved", "closed"),
    ("closed", "open"),
}


def test_the_api_accepts_exactly_what_the_simulator_produces() -> None:
    assert INTERACTION_TYPES == catalog.SUPPORT_TYPES
    assert set(CHANNELS) == set(catalog.SUPPORT_CHANNELS)
    assert PRIORITIES == catalog.PRIORITIES


def test_status_transitions() -> None:
    for current in STATUSES:
        for target in STATUSES:
            if current == target or (current, target) in ALLOWED:
                service.check_transition(current, target)
                continue
            with pytest.raises(service.InvalidTransition) as caught:
                service.check_transition(current, target)
            assert caught.value.status == 422
            assert caught.value.extra["from"] == current
            assert caught.value.extra["to"] == target
            assert caught.value.extra["field"] == "status"


def test_migration_0003_adds_and_removes_the_listing_indexes(engine: Engine) -> None:
    def indexes() -> set[str]:
        inspector = inspect(engine)
        return {
            ix["name"] or ""
            for table in ("support_interactions", "survey_responses")
            for ix in inspector.get_indexes(table)
        }

    new = {"ix_support_interactions_opened", "ix_survey_responses_responded"}
    assert new <= indexes()
    downgrade(engine, "0002")
    assert not new & indexes()
    assert "ix_support_interactions_account_opened" in indexes()
    upgrade(engine)
    assert new <= indexes()


def test_an_upsert_that_loses_the_insert_race_updates_the_winner(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = make_account(db, now=NOW)
    winner = make_interaction(db, account, now=NOW, external_id="zd_1", subject="first")
    db.commit()
    lookups: list[str] = []
    real_lookup = repository.interaction_by_external_id

    def late_lookup(session: Session, external_id: str) -> Any:
        # The first read happens before the other request's insert is visible.
        lookups.append(external_id)
        return None if len(lookups) == 1 else real_lookup(session, external_id)

    monkeypatch.setattr(repository, "interaction_by_external_id", late_lookup)
    data = SupportInteractionUpsert(
        account_id=account.id, type="bug", channel="chat", subject="second"
    )
    row, created = service.upsert_interaction(
        db, "zd_1", data, actor=Actor.system("tests"), now=NOW
    )
    db.commit()
    assert created is False and len(lookups) == 2
    assert row.id == winner.id and row.subject == "second"
