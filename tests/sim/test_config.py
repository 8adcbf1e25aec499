from __future__ import annotations

from datetime import date, datetime

import pytest

from tenure.sim import SimConfig


class TestValidation:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"accounts": 0}, "accounts must be"),
            ({"accounts": -3}, "accounts must be"),
            ({"accounts": 1_000_001}, "accounts must be"),
            ({"accounts": 2.5}, "accounts must be"),
            ({"accounts": True}, "accounts must be"),
            ({"months": 0}, "months must be"),
            ({"months": 121}, "months must be"),
            ({"seed": -1}, "seed must be"),
            ({"profile": "bakery"}, "profile must be"),
            ({"treatment_effect": 1.5}, "treatment_effect must be"),
            ({"treatment_effect": -0.1}, "treatment_effect must be"),
            ({"end": datetime(2026, 11, 1)}, "end must be a date"),
            ({"treated": {"acc_000001": "2026-01-01"}}, "treated must map"),
        ],
    )
    def test_bad_values_raise_one_line_value_error(
        self, kwargs: dict[str, object], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message) as info:
            SimConfig(**kwargs)  # type: ignore[arg-type]
        assert "\n" not in str(info.value)

    def test_limits_are_accepted(self) -> None:
        SimConfig(accounts=1, months=1, seed=0)
        SimConfig(accounts=1_000_000, months=120, seed=2**40, treatment_effect=1)


class TestPeriod:
    def test_period_ends_at_end_and_spans_months(self) -> None:
        config = SimConfig(months=18)
        assert config.end == date(2026, 11, 1)
        assert config.start == date(2025, 5, 1)
        assert config.start_at.tzinfo is not None and config.end_at.utcoffset().total_seconds() == 0

    def test_period_crosses_years(self) -> None:
        assert SimConfig(months=13, end=date(2026, 1, 1)).start == date(2024, 12, 1)
