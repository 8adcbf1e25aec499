"""Money: integer minor units, and conversion to one reporting currency.

Accounts are billed in their own currency (prices are localised, not converted), but a CS
leader compares and sums MRR in one currency. Rates are the value of one unit in USD; the
defaults are rough mid-2026 figures meant to be overridden (TENURE_FX_RATES).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tenure.kit.errors import InvalidInput

DEFAULT_USD_VALUE: dict[str, float] = {
    "USD": 1.0,
    "EUR": 1.08,
    "GBP": 1.27,
    "CHF": 1.12,
    "CAD": 0.73,
    "AUD": 0.66,
    "NZD": 0.60,
    "ZAR": 0.055,
    "BRL": 0.18,
    "ARS": 0.001,
    "MXN": 0.055,
    "CLP": 0.00105,
    "COP": 0.00025,
    "JPY": 0.0066,
    "CNY": 0.14,
    "INR": 0.012,
    "SGD": 0.74,
    "HKD": 0.128,
    "SEK": 0.095,
    "NOK": 0.093,
    "DKK": 0.145,
    "PLN": 0.25,
    "CZK": 0.043,
    "HUF": 0.0027,
    "ILS": 0.27,
    "AED": 0.272,
    "SAR": 0.266,
    "TRY": 0.03,
    "KRW": 0.00073,
    "THB": 0.028,
    "PHP": 0.0175,
    "IDR": 0.000062,
    "MYR": 0.21,
    "NGN": 0.00065,
    "KES": 0.0077,
}


@dataclass(frozen=True)
class FxRates:
    base: str = "USD"
    usd_value: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_USD_VALUE))

    @classmethod
    def with_overrides(cls, base: str, overrides: Mapping[str, float]) -> FxRates:
        values = {**DEFAULT_USD_VALUE, **{k.upper(): v for k, v in overrides.items()}}
        if base not in values:
            raise InvalidInput(f"no exchange rate for reporting currency {base}")
        return cls(base=base, usd_value=values)

    def knows(self, currency: str) -> bool:
        return currency in self.usd_value

    def to_base(self, cents: int, currency: str) -> int:
        """Minor units of `currency` converted to minor units of the reporting currency."""
        if currency == self.base:
            return cents
        try:
            rate = self.usd_value[currency] / self.usd_value[self.base]
        except KeyError as exc:
            raise InvalidInput(
                f"no exchange rate for {currency}; add it to TENURE_FX_RATES", field="currency"
            ) from exc
        return round(cents * rate)


DEFAULT_FX = FxRates()
