"""The wedding calendar shows in the usage: seasons, engagement season, weekday habits."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pytest

from tenure.sim import AccountBundle, SimConfig, generate
from tenure.sim.catalog import ENGAGEMENT_MONTHS, INQUIRY_FEATURES, PEAK_MONTHS

CONFIG = SimConfig(accounts=500, months=24, seed=11)
DAY = 86_400


@pytest.fixture(scope="module")
def bundles() -> list[AccountBundle]:
    return list(generate(CONFIG))


def _days() -> tuple[int, int]:
    start = int(CONFIG.start_at.timestamp())
    return start, (int(CONFIG.end_at.timestamp()) - start) // DAY


def _subscribed(bundle: AccountBundle) -> npt.NDArray[np.bool_]:
    """Days on which the account could use the product, read from its records."""
    start, n = _days()
    on = np.zeros(n, dtype=bool)
    since: int | None = int(bundle.account.signup_at.timestamp())
    for change in bundle.subscriptions:
        at = int(change.occurred_at.timestamp())
        if change.kind == "churn" and since is not None:
            on[max((since - start) // DAY, 0) : max((at - start) // DAY, 0)] = True
            since = None
        elif change.kind == "reactivation":
            since = at
    if since is not None:
        on[max((since - start) // DAY, 0) :] = True
    return on


def _calendar_months() -> npt.NDArray[np.int64]:
    _, n = _days()
    days = np.datetime64(CONFIG.start.isoformat()) + np.arange(n)
    return np.asarray(days.astype("datetime64[M]").astype(np.int64) % 12 + 1)


def _daily(
    bundles: list[AccountBundle], hemisphere: str, names: frozenset[str] | None = None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Events and subscribed accounts per day, for a hemisphere."""
    start, n = _days()
    events = np.zeros(n)
    accounts = np.zeros(n)
    for b in bundles:
        if b.account.hemisphere != hemisphere:
            continue
        accounts += _subscribed(b)
        day = (b.events.timestamps - start) // DAY
        if names is not None:
            keep = np.isin(np.asarray(b.events.names)[b.events.name_codes], sorted(names))
            day = day[keep]
        events += np.bincount(day, minlength=n)
    return events, accounts


@pytest.mark.parametrize("hemisphere", ["north", "south"])
def test_peak_season_is_busier_than_off_season(
    bundles: list[AccountBundle], hemisphere: str
) -> None:
    events, accounts = _daily(bundles, hemisphere)
    peak = np.isin(_calendar_months(), sorted(PEAK_MONTHS[hemisphere]))
    ratio = (events[peak].sum() / accounts[peak].sum()) / (
        events[~peak].sum() / accounts[~peak].sum()
    )
    assert ratio > 1.3


@pytest.mark.parametrize("hemisphere", ["north", "south"])
def test_inquiries_spike_in_engagement_season(
    bundles: list[AccountBundle], hemisphere: str
) -> None:
    inquiries, accounts = _daily(bundles, hemisphere, INQUIRY_FEATURES)
    events, _ = _daily(bundles, hemisphere)
    season = np.isin(_calendar_months(), sorted(ENGAGEMENT_MONTHS))
    per_account = (inquiries[season].sum() / accounts[season].sum()) / (
        inquiries[~season].sum() / accounts[~season].sum()
    )
    share = (inquiries[season].sum() / events[season].sum()) / (
        inquiries[~season].sum() / events[~season].sum()
    )
    # Even in the northern off-season, when everything else is quiet, inquiries go up.
    assert per_account > 1.15
    assert share > 1.6


def _weekday_profile(bundles: list[AccountBundle], category: str) -> npt.NDArray[np.float64]:
    counts = np.zeros(7)
    for b in bundles:
        if b.account.category != category or len(b.events) == 0:
            continue
        middle = datetime.fromtimestamp(int(b.events.timestamps[len(b.events) // 2]))
        offset = ZoneInfo(b.account.timezone).utcoffset(middle)
        assert offset is not None
        local_days = (b.events.timestamps + int(offset.total_seconds())) // DAY
        counts += np.bincount((local_days + 3) % 7, minlength=7)  # 1970-01-01 was a Thursday
    return counts / counts.mean()


def test_photographers_work_the_app_midweek(bundles: list[AccountBundle]) -> None:
    photo = _weekday_profile(bundles, "photographer")
    planner = _weekday_profile(bundles, "planner")
    photo_ratio = photo[1:4].mean() / photo[5:7].mean()
    planner_ratio = planner[1:4].mean() / planner[5:7].mean()
    assert photo_ratio > 1.8
    assert planner_ratio < 1.5 < photo_ratio
