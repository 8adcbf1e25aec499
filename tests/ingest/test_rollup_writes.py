"""The rollup writes of the tracking path (`ingest.repository.add_usage`,
`insert_active_days`) and the bulk conversion they go through (`kit.bulk`), on both engines."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from tenure.ingest import repository as repo
from tenure.ingest.models import Event, UsageDaily, UsageDay, UsageFirst
from tenure.ingest.rollup import ALL_EVENTS
from tenure.kit import bulk
from tests.conftest import NOW
from tests.factories.accounts import make_account, make_contact

D1, D2, D3 = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 1)


def _usage(db: Session, model: Any, *columns: Any) -> set[tuple[Any, ...]]:
    return {tuple(r) for r in db.execute(select(*columns))}


class TestAddUsage:
    def test_counts_add_up_and_summaries_follow(self, db: Session) -> None:
        a, b = make_account(db, now=NOW).id, make_account(db, now=NOW).id
        db.flush()
        repo.add_usage(
            db,
            Counter(
                {
                    (a, D1, ALL_EVENTS): 3,
                    (a, D1, "login"): 2,
                    (a, D1, "invoice_sent"): 1,
                    (a, D2, ALL_EVENTS): 1,
                    (b, D2, ALL_EVENTS): 4,
                }
            ),
        )
        repo.add_usage(db, Counter({(a, D1, ALL_EVENTS): 2, (b, D3, "form_created"): 1}))
        db.flush()

        daily = _usage(
            db,
            UsageDaily,
            UsageDaily.account_id,
            UsageDaily.day,
            UsageDaily.metric,
            UsageDaily.count,
        )
        assert daily == {
            (a, D1, ALL_EVENTS, 5),
            (a, D1, "login", 2),
            (a, D1, "invoice_sent", 1),
            (a, D2, ALL_EVENTS, 1),
            (b, D2, ALL_EVENTS, 4),
            (b, D3, "form_created", 1),
        }
        days = {
            (r[0], r[1]): (r[2], r[3], r[4] != 0)
            for r in _usage(
                db,
                UsageDay,
                UsageDay.account_id,
                UsageDay.day,
                UsageDay.events,
                UsageDay.sessions,
                UsageDay.features,
            )
        }
        assert days == {
            (a, D1): (5, 2, True),  # invoice_sent is a key feature, login a session
            (a, D2): (1, 0, False),
            (b, D2): (4, 0, False),
            (b, D3): (0, 0, True),
        }
        firsts = _usage(
            db, UsageFirst, UsageFirst.account_id, UsageFirst.metric, UsageFirst.first_day
        )
        assert (b, ALL_EVENTS, D2) in firsts
        assert (a, ALL_EVENTS, D1) in firsts
        assert (b, "form_created", D3) in firsts

    def test_nothing_to_add_writes_nothing(self, db: Session) -> None:
        repo.add_usage(db, Counter())
        assert db.scalar(select(UsageDaily.account_id)) is None


class TestInsertActiveDays:
    def test_returns_only_new_contact_days_as_given(self, db: Session) -> None:
        account = make_account(db, now=NOW)
        contacts = [make_contact(db, account, now=NOW) for _ in range(2)]
        db.flush()
        a, c1, c2 = account.id, contacts[0].id, contacts[1].id
        first = repo.insert_active_days(db, {(a, D1, c1), (a, D1, c2), (a, D2, c1)})
        assert sorted(first, key=str) == sorted([(a, D1), (a, D1), (a, D2)], key=str)
        assert all(type(x) is uuid.UUID and type(d) is date for x, d in first)
        again = repo.insert_active_days(db, {(a, D1, c1), (a, D3, c2)})
        assert again == [(a, D3)]
        assert repo.insert_active_days(db, set()) == []


class TestConversionOncePerValue:
    def test_same_results_as_converting_every_value(self) -> None:
        calls: list[Any] = []

        def process(value: Any) -> Any:
            calls.append(value)
            return repr(value)

        shared = datetime(2026, 3, 2, 12, 0)
        values = [shared, datetime(2026, 3, 2, 12, 0), shared, None, shared]
        assert bulk._each_once(process, values) == [repr(v) for v in values]
        assert len(calls) == 3  # the shared object once; the equal copy and None apart

    def test_dates_by_value_and_arrays(self) -> None:
        days = [D1 + timedelta(days=0), date(2026, 3, 2), D2]
        assert bulk._each_once(str, days) == ["2026-03-02", "2026-03-02", "2026-03-03"]
        numbers = np.array([7, 7, 8])
        assert bulk._each_once(lambda v: int(v) * 2, numbers) == [14, 14, 16]


class TestInsertNewEvents:
    @staticmethod
    def _row(message_id: str, name: str, source: str = "src") -> dict[str, Any]:
        return {
            "source": source,
            "message_id": message_id,
            "account_id": None,
            "contact_id": None,
            "user_external_id": "u1",
            "anonymous_id": None,
            "group_external_id": None,
            "type": "track",
            "name": name,
            "properties": {},
            "context": {},
            "timestamp": NOW,
            "sent_at": None,
            "received_at": NOW,
            "flags": [],
        }

    def test_stored_ids_and_repeats_are_skipped_the_first_copy_kept(self, db: Session) -> None:
        assert repo.insert_new_events(db, [self._row("m1", "a"), self._row("m2", "a")]) == {
            "m1",
            "m2",
        }
        rows = [
            self._row("m2", "again"),
            self._row("m3", "first"),
            self._row("m3", "second"),
            self._row("m1", "other source", source="other"),
        ]
        assert repo.insert_new_events(db, rows) == {"m3", "m1"}
        assert repo.insert_new_events(db, rows) == set()
        stored = {tuple(r) for r in db.execute(select(Event.source, Event.message_id, Event.name))}
        assert stored == {
            ("src", "m1", "a"),
            ("src", "m2", "a"),
            ("src", "m3", "first"),
            ("other", "m1", "other source"),
        }
