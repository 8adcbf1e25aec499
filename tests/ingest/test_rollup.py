from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np

from tenure.ingest.rollup import ACTIVE_USERS, ALL_EVENTS, daily_counts


def _epochs(*stamps: datetime) -> np.ndarray:
    return np.array([int(s.timestamp()) for s in stamps], dtype=np.int64)


def test_counts_per_local_day_metric_and_active_users() -> None:
    # 23:30 UTC on 1 March is already 2 March in Sydney (UTC+11 in March).
    epochs = _epochs(
        datetime(2026, 3, 1, 23, 30, tzinfo=UTC),
        datetime(2026, 3, 2, 1, 0, tzinfo=UTC),
        datetime(2026, 3, 2, 2, 0, tzinfo=UTC),
        datetime(2026, 3, 2, 20, 0, tzinfo=UTC),
    )
    names = np.array([0, 0, 1, 0])
    who = np.array([0, 1, 1, 0])
    sydney = {
        (c.day, c.metric): c.count
        for c in daily_counts(epochs, names, ["login", "invoice_sent"], who, "Australia/Sydney")
    }
    assert sydney == {
        (date(2026, 3, 2), "login"): 2,
        (date(2026, 3, 2), "invoice_sent"): 1,
        (date(2026, 3, 2), ALL_EVENTS): 3,
        (date(2026, 3, 2), ACTIVE_USERS): 2,
        (date(2026, 3, 3), "login"): 1,
        (date(2026, 3, 3), ALL_EVENTS): 1,
        (date(2026, 3, 3), ACTIVE_USERS): 1,
    }
    utc = {
        (c.day, c.metric): c.count
        for c in daily_counts(epochs, names, ["login", "invoice_sent"], who, None)
    }
    assert utc[(date(2026, 3, 1), "login")] == 1
    assert utc[(date(2026, 3, 2), ALL_EVENTS)] == 3


def test_no_events_no_rows() -> None:
    empty = np.array([], dtype=np.int64)
    assert daily_counts(empty, empty, [], empty, "Europe/London") == []
