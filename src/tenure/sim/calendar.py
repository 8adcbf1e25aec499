"""The simulated period as a grid of local days, with the wedding calendar laid over it.

Built once per run and shared by every account, so per-account code only indexes arrays.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from tenure.sim import catalog
from tenure.sim.records import SimConfig

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

SECONDS_PER_DAY = 86_400
DAYS_PER_MONTH = 30.4375


class Calendar:
    """Day index d = 0..n_days-1 stands for the local date start + d in every timezone."""

    def __init__(self, config: SimConfig) -> None:
        self.start = config.start
        self.end = config.end
        self.n_days = (config.end - config.start).days
        self.start_epoch = _epoch(config.start)
        self.end_epoch = _epoch(config.end)
        days = np.arange(self.n_days, dtype=np.int64)
        self.day_epoch: IntArray = self.start_epoch + days * SECONDS_PER_DAY
        dates = np.datetime64(config.start.isoformat(), "D") + days
        months = dates.astype("datetime64[M]")
        self.month_of_day: IntArray = (months.astype(np.int64) % 12 + 1).astype(np.int64)
        # 1970-01-01 was a Thursday: shift so that Monday is 0.
        self.weekday: IntArray = (dates.astype(np.int64) + 3) % 7

        # Knots of the monthly latent process: the first day of each calendar month touched by
        # the period, plus the end.
        first_month = np.datetime64(config.start.isoformat(), "M")
        last_month = np.datetime64(config.end.isoformat(), "M")
        month_starts = np.arange(first_month, last_month + 1).astype("datetime64[D]")
        knot_days = (month_starts - np.datetime64(config.start.isoformat(), "D")).astype(np.int64)
        keep = (knot_days >= 0) & (knot_days < self.n_days)
        self.month_start_days: IntArray = knot_days[keep]
        if self.month_start_days.size == 0 or self.month_start_days[0] != 0:
            self.month_start_days = np.concatenate(([0], self.month_start_days))
        self.month_start_dates: list[date] = [
            config.start + timedelta(days=int(d)) for d in self.month_start_days
        ]
        self.knot_days: IntArray = np.concatenate((self.month_start_days, [self.n_days]))

        self.engagement: BoolArray = np.isin(self.month_of_day, sorted(catalog.ENGAGEMENT_MONTHS))
        self.peak: dict[str, BoolArray] = {
            hem: np.isin(self.month_of_day, sorted(months_))
            for hem, months_ in catalog.PEAK_MONTHS.items()
        }
        north = np.asarray(catalog.SEASON_NORTH, dtype=np.float64)
        south = np.roll(north, 6)
        self._season_base = {
            "north": north[self.month_of_day - 1],
            "south": south[self.month_of_day - 1],
        }
        # Christmas week is quiet for everyone, whatever the season.
        md = self.month_of_day * 100 + (dates - months.astype("datetime64[D]")).astype(np.int64) + 1
        self.holiday_factor: FloatArray = np.where((md >= 1224) | (md <= 101), 0.6, 1.0)
        # Suppliers sign up when the inquiries of engagement season arrive.
        signup_weight = np.where(self.engagement | (self.month_of_day == 3), 1.35, 1.0)
        self.signup_cdf: FloatArray = np.cumsum(signup_weight) / signup_weight.sum()
        self._season: dict[tuple[str, str], FloatArray] = {}
        self._weekday: dict[str, FloatArray] = {}
        self._offsets: dict[str, IntArray] = {}

    def season(self, hemisphere: str, category: str) -> FloatArray:
        """Expected activity multiplier per day for a category in a hemisphere (mean ~1)."""
        key = (hemisphere, category)
        cached = self._season.get(key)
        if cached is None:
            amplitude = catalog.SEASON_AMPLITUDE[category]
            cached = 1.0 + amplitude * (self._season_base[hemisphere] - 1.0)
            self._season[key] = cached
        return cached

    def weekday_factor(self, category: str) -> FloatArray:
        cached = self._weekday.get(category)
        if cached is None:
            pattern = np.asarray(catalog.WEEKDAY_PATTERN[category], dtype=np.float64)
            pattern = pattern / pattern.mean()
            cached = pattern[self.weekday]
            self._weekday[category] = cached
        return cached

    def utc_offsets(self, timezone: str) -> IntArray:
        """UTC offset in seconds at local noon of each day (DST-aware)."""
        cached = self._offsets.get(timezone)
        if cached is None:
            zone = ZoneInfo(timezone)
            values = []
            # Offsets change at most twice a year: probe once per day, cheap and exact enough.
            for d in range(self.n_days):
                day = self.start + timedelta(days=d)
                noon = datetime(day.year, day.month, day.day, 12, tzinfo=zone)
                offset = noon.utcoffset()
                values.append(int(offset.total_seconds()) if offset else 0)
            cached = np.asarray(values, dtype=np.int64)
            self._offsets[timezone] = cached
        return cached

    def local_to_epoch(
        self, timezone: str, day: IntArray, seconds: IntArray | FloatArray
    ) -> IntArray:
        """UTC epoch seconds of local wall-clock times `seconds` after midnight of `day`."""
        offsets = self.utc_offsets(timezone)
        clipped = np.clip(day, 0, self.n_days - 1)
        return (
            self.start_epoch
            + day.astype(np.int64) * SECONDS_PER_DAY
            + np.asarray(seconds).astype(np.int64)
            - offsets[clipped]
        )

    def day_of(self, at: date) -> int:
        return (at - self.start).days


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
