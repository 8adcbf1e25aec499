"""Usage signals for health scoring: the same figures whether read for a few accounts (their
rows, summed in Python) or for many (grouped queries), on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tenure.ingest import repository
from tenure.ingest import service as ingest_service
from tenure.ingest.catalogue import load_catalogue
from tenure.ingest.rollup import ALL_EVENTS
from tests.conftest import NOW
from tests.factories.accounts import make_account

CATALOGUE = load_catalogue()
SESSION_EVENT = CATALOGUE.activity.session_events[0]
KEY_EVENTS = [f.events[0] for f in CATALOGUE.key_features]
DAY = date(2026, 6, 30)


def _load(db: Session) -> list[Any]:
    rng = random.Random(5)
    accounts = [make_account(db, now=NOW) for _ in range(4)]
    db.flush()
    columns: dict[str, list[Any]] = {"account_id": [], "day": [], "metric": [], "count": []}

    def add(account: Any, day: date, metric: str, count: int) -> None:
        columns["account_id"].append(account.id)
        columns["day"].append(day)
        columns["metric"].append(metric)
        columns["count"].append(count)

    for k, account in enumerate(accounts[:3]):
        for back in range(0, 130):
            if rng.random() < 0.25 + 0.2 * k:
                day = DAY - timedelta(days=back)
                add(account, day, ALL_EVENTS, rng.randint(1, 9))
                add(account, day, SESSION_EVENT, rng.randint(0, 3))
                for event in rng.sample(KEY_EVENTS, rng.randint(0, 2)):
                    add(account, day, event, 1)
    ingest_service.bulk_insert_usage(db, columns)
    db.commit()
    return accounts


def test_few_and_many_accounts_give_the_same_signals(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts = _load(db)
    ids = [a.id for a in accounts]
    n = len(CATALOGUE.key_features)
    few = ingest_service.usage_signals(db, day=DAY, account_ids=ids, n_features=n)
    monkeypatch.setattr(repository, "FEW", 0)
    many = ingest_service.usage_signals(db, day=DAY, account_ids=ids, n_features=n)

    def normal(rows: list[tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
        out = {}
        for a, *rest in rows:
            last = rest[-1] if isinstance(rest[-1], date) else date.fromisoformat(rest[-1])
            out[a] = (*rest[:-1], last)
        return out

    assert normal(few) == normal(many)
    # The fourth account has no usage: no row.
    assert len(few) == 3
    for _, days30, days_before, sessions30, f30, f90, last in few:
        assert 0 < days30 <= 30 and 0 < days_before <= 30
        assert 0 <= f30 <= f90 <= n
        assert sessions30 >= 0 and last is not None
