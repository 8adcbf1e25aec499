from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tenure.clock import FixedClock, SystemClock


def test_fixed_clock_moves_only_when_told() -> None:
    clock = FixedClock(datetime(2026, 1, 1, 9, tzinfo=timezone(timedelta(hours=2))))
    assert clock.now() == datetime(2026, 1, 1, 7, tzinfo=UTC)
    assert clock.now().tzinfo == UTC
    clock.advance(timedelta(days=1))
    assert clock.now() == datetime(2026, 1, 2, 7, tzinfo=UTC)


def test_fixed_clock_rejects_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FixedClock(datetime(2026, 1, 1))


def test_system_clock_is_aware_utc() -> None:
    assert SystemClock().now().tzinfo == UTC
