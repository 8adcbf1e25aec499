"""The seasonal baseline: what activity is normal for a category, hemisphere and month.

Learned from the portfolio's own history (median over the accounts that were alive in
that month and had not churned by the time of learning: robust to a few power users and
blind to the accounts that were already leaving), falling back to the shipped wedding
calendar priors where fewer than MIN_ACCOUNTS accounts back a figure. A florist's quiet
January is compared with other florists' Januaries, not with June.

`expected[...@flat]` is the same statistic over the whole year (no seasonality): the
benchmark compares the two.
"""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib.resources import files
from typing import Any

import numpy as np
import numpy.typing as npt

BASELINE_SIGNALS = ("active_days", "sessions")
MIN_ACCOUNTS = 20
HISTORY_MONTHS = 24
ANY = "*"  # category of the pooled figure (every category of a hemisphere)
FLAT_MONTH = 0


@dataclass(frozen=True)
class Figure:
    expected: float
    accounts: int
    source: str  # "learned" or "prior"


Key = tuple[str, str, int, str]  # category, hemisphere, month (0 = whole year), signal


@dataclass
class Baseline:
    learned_on: date
    figures: dict[Key, Figure]

    def expected(
        self,
        categories: Sequence[str | None],
        hemispheres: Sequence[str],
        months: npt.NDArray[np.int64],
        signal: str,
    ) -> npt.NDArray[np.float64]:
        """Expected value per account (month 0 = the non-seasonal, whole-year figure)."""
        cache_: dict[tuple[str | None, str, int], float] = {}
        out = np.empty(len(categories))
        for i, (category, hemisphere, month) in enumerate(
            zip(categories, hemispheres, months.tolist(), strict=True)
        ):
            key = (category, hemisphere, month)
            value = cache_.get(key)
            if value is None:
                value = self._lookup(category, hemisphere, month, signal)
                cache_[key] = value
            out[i] = value
        return out

    def _lookup(self, category: str | None, hemisphere: str, month: int, signal: str) -> float:
        for cat in (category or ANY, ANY):
            figure = self.figures.get((cat, hemisphere, month, signal))
            if figure is not None and figure.source == "learned":
                return figure.expected
        return prior(category, hemisphere, month, signal)


@cache
def _priors() -> dict[str, Any]:
    return tomllib.loads(files("tenure.health").joinpath("baseline_priors.toml").read_text())


def prior(category: str | None, hemisphere: str, month: int, signal: str) -> float:
    data = _priors()
    if signal not in data["default"]:
        return float("nan")  # e.g. churn rates: nothing to assume without history
    base = data.get("categories", {}).get(category or "", data["default"])[signal]
    if month == FLAT_MONTH:
        return float(base)
    index = (month - 1 + (6 if hemisphere == "south" else 0)) % 12
    return float(base * data["month_factor"][index])


def _month_starts(as_of: date, months: int) -> list[date]:
    """The first days of the `months` full calendar months before `as_of`'s month, oldest
    first, plus the start of `as_of`'s month."""
    total = as_of.year * 12 + as_of.month - 1
    return [date((t) // 12, t % 12 + 1, 1) for t in range(total - months, total + 1)]


def _epoch_day(value: datetime | None) -> float:
    if value is None:
        return np.inf
    return value.astimezone(UTC).timestamp() / 86400.0


def learn(
    lifetimes: Sequence[tuple[uuid.UUID, str | None, str, datetime, datetime | None]],
    monthly: Sequence[tuple[uuid.UUID, str, int, int]],
    churns: Sequence[tuple[uuid.UUID, datetime]] = (),
    *,
    as_of: datetime,
    months: int = HISTORY_MONTHS,
    data_since: date | None = None,
) -> Baseline:
    """The baseline from account lifetimes and monthly activity (see the ingest service).

    Months that begin before `data_since` (the first recorded usage) are not used: an
    account is not quiet in a month nobody was recording."""
    starts = _month_starts(as_of.date(), months)
    month_keys = {f"{d.year:04d}-{d.month:02d}": i for i, d in enumerate(starts[:-1])}
    n_months = len(starts) - 1
    as_of_day = as_of.timestamp() / 86400.0
    index = {row[0]: i for i, row in enumerate(lifetimes)}
    n = len(lifetimes)
    signup = np.array([_epoch_day(row[3]) for row in lifetimes])
    churned = np.array([_epoch_day(row[4]) for row in lifetimes])
    categories = [row[1] or ANY for row in lifetimes]
    hemispheres = [row[2] for row in lifetimes]

    values = {s: np.zeros((n, n_months)) for s in BASELINE_SIGNALS}
    for account_id, month, active_days, sessions in monthly:
        i = index.get(account_id)
        m = month_keys.get(month)
        if i is None or m is None:
            continue
        values["active_days"][i, m] = active_days
        values["sessions"][i, m] = sessions

    start_days = np.array([_epoch_day(datetime(d.year, d.month, 1, tzinfo=UTC)) for d in starts])
    lengths = np.diff(start_days)
    # Alive for the whole month, and not churned by the time of learning.
    alive = (signup[:, None] <= start_days[None, :-1]) & (churned[:, None] >= start_days[None, 1:])
    alive &= (churned > as_of_day)[:, None]
    if data_since is not None:
        recorded = start_days[:-1] >= _epoch_day(
            datetime(data_since.year, data_since.month, data_since.day, tzinfo=UTC)
        )
        alive &= recorded[None, :]
    calendar_month = np.array([d.month for d in starts[:-1]])
    per_30 = 30.0 / lengths

    figures: dict[Key, Figure] = {}
    cat_names = [*sorted(set(categories) - {ANY}), ANY]
    hem_names = sorted(set(hemispheres))
    cat_code = {c: k for k, c in enumerate(cat_names)}
    hem_code = {h: k for k, h in enumerate(hem_names)}
    cat_of = np.array([cat_code[c] for c in categories], dtype=np.int64)
    hem_of = np.array([hem_code[h] for h in hemispheres], dtype=np.int64)
    rows, cols = np.nonzero(alive)
    n_cat, n_hem = len(cat_names), len(hem_names)
    pooled = cat_code[ANY]
    month_of = calendar_month[cols].astype(np.int64)
    # Every observation counts four times: its category and the pool, its month and the year.
    group = np.concatenate(
        [
            (c_arr * n_hem + hem_of[rows]) * 13 + m_arr
            for c_arr in (cat_of[rows], np.full(rows.size, pooled))
            for m_arr in (month_of, np.zeros(rows.size, dtype=np.int64))
        ]
    )
    who = np.tile(rows, 4)
    n_groups = n_cat * n_hem * 13
    # Distinct accounts per group.
    pairs = np.unique(group * (n + 1) + who)
    accounts = np.bincount(pairs // (n + 1), minlength=n_groups)
    for signal in BASELINE_SIGNALS:
        observed = np.tile((values[signal] * per_30[None, :])[rows, cols], 4)
        order = np.lexsort((observed, group))
        sorted_groups = group[order]
        sorted_values = observed[order]
        bounds = np.searchsorted(sorted_groups, np.arange(n_groups + 1))
        for g in range(n_groups):
            lo, hi = bounds[g], bounds[g + 1]
            cat, rest = divmod(g, n_hem * 13)
            hem, month_no = divmod(rest, 13)
            key = (cat_names[cat], hem_names[hem], month_no, signal)
            count = int(accounts[g])
            if count >= MIN_ACCOUNTS and hi > lo:
                chunk = sorted_values[lo:hi]
                mid = (hi - lo) // 2
                median = chunk[mid] if (hi - lo) % 2 else (chunk[mid - 1] + chunk[mid]) / 2
                figures[key] = Figure(float(median), count, "learned")
            elif hi > lo or count:
                category = None if cat_names[cat] == ANY else cat_names[cat]
                figures[key] = Figure(
                    prior(category, hem_names[hem], month_no, signal), count, "prior"
                )
    _learn_churn_rates(
        figures,
        churns,
        starts=start_days,
        calendar_month=calendar_month,
        signup=signup,
        churned=churned,
        index=index,
        cat_names=cat_names,
        hem_names=hem_names,
        cat_of=cat_of,
        hem_of=hem_of,
        recorded_from=(
            _epoch_day(datetime(data_since.year, data_since.month, data_since.day, tzinfo=UTC))
            if data_since is not None
            else -np.inf
        ),
    )
    return Baseline(as_of.date(), figures)


def _learn_churn_rates(
    figures: dict[Key, Figure],
    churns: Sequence[tuple[uuid.UUID, datetime]],
    *,
    starts: npt.NDArray[np.float64],
    calendar_month: npt.NDArray[np.int64],
    signup: npt.NDArray[np.float64],
    churned: npt.NDArray[np.float64],
    index: dict[uuid.UUID, int],
    cat_names: list[str],
    hem_names: list[str],
    cat_of: npt.NDArray[np.int64],
    hem_of: npt.NDArray[np.int64],
    recorded_from: float,
) -> None:
    """Share of accounts of a segment that cancel in each calendar month (all years seen):
    the season ahead of an account, learned from its peers' past."""
    usable = starts[:-1] >= recorded_from
    # Subscribed at the start of the month (a later cancellation still counts as at risk).
    at_risk = (signup[:, None] <= starts[None, :-1]) & (churned[:, None] >= starts[None, :-1])
    at_risk &= usable[None, :]
    cancelled = np.zeros_like(at_risk)
    for account_id, when in churns:
        i = index.get(account_id)
        if i is None:
            continue
        day = _epoch_day(when)
        m = int(np.searchsorted(starts, day, side="right")) - 1
        if 0 <= m < at_risk.shape[1] and usable[m]:
            cancelled[i, m] = True
            at_risk[i, m] = True
    pooled = cat_names.index(ANY)
    for h, hem in enumerate(hem_names):
        for c, cat in enumerate(cat_names):
            rows = hem_of == h if c == pooled else (hem_of == h) & (cat_of == c)
            if not rows.any():
                continue
            for month in range(1, 13):
                cols = calendar_month == month
                exposed = int(at_risk[np.ix_(rows, cols)].sum())
                if exposed >= MIN_ACCOUNTS:
                    lost = int(cancelled[np.ix_(rows, cols)].sum())
                    figures[(cat, hem, month, "churn_rate")] = Figure(
                        lost / exposed, exposed, "learned"
                    )


def window_month(as_of: datetime, days_back: int = 15) -> int:
    """The calendar month a 30-day window ending at `as_of` mostly falls in."""
    return (as_of - timedelta(days=days_back)).month
