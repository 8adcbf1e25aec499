from __future__ import annotations

import pytest

from tenure.config import Settings
from tenure.kit.errors import InvalidInput
from tenure.kit.money import FxRates


def test_converts_through_usd_values() -> None:
    fx = FxRates.with_overrides("EUR", {"ARS": 0.00108})
    assert fx.to_base(7900, "EUR") == 7900
    assert fx.to_base(10_000, "USD") == round(10_000 / 1.08)
    assert fx.to_base(1_000_000, "ARS") == 1000


def test_unknown_currency_names_the_fix() -> None:
    with pytest.raises(InvalidInput, match="TENURE_FX_RATES"):
        FxRates().to_base(100, "XXX")


def test_settings_read_overrides_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENURE_FX_RATES", '{"ars": 0.002}')
    monkeypatch.setenv("TENURE_REPORTING_CURRENCY", "GBP")
    fx = Settings().fx()
    assert fx.base == "GBP"
    assert fx.to_base(1_270_000, "ARS") == 2000
