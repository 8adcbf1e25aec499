"""Churn: the base rate, what announces it, how predictable it is, and the treatment hook."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime

import numpy as np
import numpy.typing as npt
import pytest

from tenure.sim import AccountBundle, SimConfig, SubscriptionRecord, generate
from tenure.sim.catalog import PEAK_MONTHS

CONFIG = SimConfig(accounts=600, months=24, seed=5)
DAY = 86_400
HORIZON = 60 * DAY


@pytest.fixture(scope="module")
def bundles() -> list[AccountBundle]:
    return list(generate(CONFIG))


def _paying_at(changes: list[SubscriptionRecord], at: int) -> bool:
    paying = False
    for change in changes:
        if change.occurred_at.timestamp() >= at:
            break
        if change.kind in ("new", "reactivation"):
            paying = True
        elif change.kind == "churn":
            paying = False
    return paying


def _churn_times(bundle: AccountBundle) -> list[int]:
    return [int(s.occurred_at.timestamp()) for s in bundle.subscriptions if s.kind == "churn"]


def _month_starts() -> list[int]:
    """Epoch seconds of each calendar month start in the period, and of its end."""
    starts = []
    day = CONFIG.start
    while day < CONFIG.end:
        starts.append(day)
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return [
        int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) for d in [*starts, CONFIG.end]
    ]


def _monthly_rates(bundles: list[AccountBundle], hemisphere: str | None = None) -> list[float]:
    bounds = _month_starts()
    rates = []
    for begin, end in itertools.pairwise(bounds):
        paying = churned = 0
        for b in bundles:
            if hemisphere and b.account.hemisphere != hemisphere:
                continue
            if _paying_at(b.subscriptions, begin):
                paying += 1
                churned += any(begin <= t < end for t in _churn_times(b))
        rates.append(churned / paying)
    return rates


def auc(score: npt.NDArray[np.float64], label: npt.NDArray[np.bool_]) -> float:
    """ROC AUC as the Mann-Whitney statistic, with average ranks for ties."""
    order = np.argsort(score, kind="mergesort")
    _, inverse, counts = np.unique(score[order], return_inverse=True, return_counts=True)
    average = np.bincount(inverse, weights=np.arange(1, len(score) + 1)) / counts
    ranks = np.empty(len(score))
    ranks[order] = average[inverse]
    positives = int(label.sum())
    negatives = len(label) - positives
    return float((ranks[label].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _snapshots(bundles: list[AccountBundle]) -> dict[str, npt.NDArray[np.float64]]:
    """Observable signals of paying accounts at monthly snapshots, and the 60-day outcome."""
    start = int(CONFIG.start_at.timestamp())
    end = int(CONFIG.end_at.timestamp())
    times = [t for t in range(start + 90 * DAY, end - HORIZON, 30 * DAY)]
    rows: dict[str, list[float]] = {
        k: [] for k in ("label", "recent", "earlier", "nps", "tickets", "sentiment", "failed")
    }
    for b in bundles:
        stamps = b.events.timestamps
        churns = _churn_times(b)
        nps = [(s.responded_at.timestamp(), s.score) for s in b.surveys if s.kind == "nps"]
        tickets = [(t.opened_at.timestamp(), t.sentiment or 0.0) for t in b.support]
        failed = [s.occurred_at.timestamp() for s in b.subscriptions if s.kind == "failed_payment"]
        for at in times:
            if (
                not _paying_at(b.subscriptions, at)
                or b.account.signup_at.timestamp() > at - 90 * DAY
            ):
                continue
            answers = [score for t, score in nps if t < at]
            recent_tickets = [s for t, s in tickets if at - 60 * DAY <= t < at]
            rows["label"].append(any(at < t <= at + HORIZON for t in churns))
            rows["recent"].append(((stamps >= at - 30 * DAY) & (stamps < at)).sum())
            rows["earlier"].append(((stamps >= at - 90 * DAY) & (stamps < at - 30 * DAY)).sum())
            rows["nps"].append(answers[-1] if answers else np.nan)
            rows["tickets"].append(len(recent_tickets))
            rows["sentiment"].append(min(recent_tickets, default=np.nan))
            rows["failed"].append(sum(at - 60 * DAY <= t < at for t in failed))
    return {k: np.asarray(v, dtype=np.float64) for k, v in rows.items()}


@pytest.fixture(scope="module")
def snapshots(bundles: list[AccountBundle]) -> dict[str, npt.NDArray[np.float64]]:
    return _snapshots(bundles)


def test_monthly_logo_churn_is_in_the_wedding_range(bundles: list[AccountBundle]) -> None:
    rates = _monthly_rates(bundles)
    assert 0.03 <= float(np.mean(rates)) <= 0.08


def test_off_season_silence_does_not_drive_churn(bundles: list[AccountBundle]) -> None:
    bounds = _month_starts()
    counts = {True: [0, 0], False: [0, 0]}  # in peak season -> [paying, churned]
    for b in bundles:
        peak_months = PEAK_MONTHS[b.account.hemisphere]
        churns = _churn_times(b)
        for begin, end in itertools.pairwise(bounds):
            if _paying_at(b.subscriptions, begin):
                month = int(np.datetime64(begin, "s").astype("datetime64[M]").astype(int)) % 12 + 1
                tally = counts[month in peak_months]
                tally[0] += 1
                tally[1] += any(begin <= t < end for t in churns)
    peak_rate = counts[True][1] / counts[True][0]
    off_rate = counts[False][1] / counts[False][0]
    # Usage in the off-season is far lower (see test_calendar); churn is not higher.
    assert 0.75 < off_rate / peak_rate < 1.33


def test_churners_look_different_before_they_leave(
    snapshots: dict[str, npt.NDArray[np.float64]],
) -> None:
    churn = snapshots["label"].astype(bool)
    trend = np.log((snapshots["recent"] + 1) / (snapshots["earlier"] / 2 + 1))
    assert trend[churn].mean() < trend[~churn].mean() - 0.15
    nps = snapshots["nps"]
    assert np.nanmean(nps[churn]) < np.nanmean(nps[~churn]) - 0.4
    assert snapshots["tickets"][churn].mean() > 1.2 * snapshots["tickets"][~churn].mean()
    worst = snapshots["sentiment"]
    assert np.nanmean(worst[churn]) < np.nanmean(worst[~churn]) - 0.15
    assert snapshots["failed"][churn].mean() > 1.3 * snapshots["failed"][~churn].mean()


def test_a_simple_activity_score_predicts_churn_but_not_perfectly(
    snapshots: dict[str, npt.NDArray[np.float64]],
) -> None:
    churn = snapshots["label"].astype(bool)
    risk = -np.log((snapshots["recent"] + 1) / (snapshots["earlier"] / 2 + 1))
    assert 0.6 <= auc(risk, churn) <= 0.95


def test_churn_has_reasons_and_some_accounts_come_back(bundles: list[AccountBundle]) -> None:
    reasons = [s.reason for b in bundles for s in b.subscriptions if s.kind == "churn"]
    closed = reasons.count("business_closed") / len(reasons)
    assert len(set(reasons)) >= 6
    # A share of churn that nothing in the data could announce.
    assert 0.05 < closed < 0.35
    assert sum(s.kind == "reactivation" for b in bundles for s in b.subscriptions) > 0


class TestTreatment:
    BASE = SimConfig(accounts=200, months=12, seed=9)

    def _churns(self, config: SimConfig) -> list[list[int]]:
        return [_churn_times(b) for b in generate(config)]

    def test_treating_one_account_leaves_the_others_untouched(self) -> None:
        treated = dataclasses.replace(
            self.BASE, treatment_effect=0.9, treated={"acc_000005": self.BASE.start}
        )
        before = list(generate(self.BASE, indexes=range(10)))
        after = list(generate(treated, indexes=range(10)))
        for old, new in zip(before, after, strict=True):
            if old.account.external_id != "acc_000005":
                assert old.subscriptions == new.subscriptions and old.truth == new.truth
        assert after[4].truth.treated_on == self.BASE.start
        start = self.BASE.start
        assert after[4].truth.hazard_on(start) == pytest.approx(
            0.1 * before[4].truth.hazard_on(start)
        )
        assert all(
            h2 <= h1 for h1, h2 in zip(before[4].truth.hazard, after[4].truth.hazard, strict=True)
        )

    def test_the_hazard_shrinks_by_the_effect(self) -> None:
        everyone = {f"acc_{i + 1:06d}": self.BASE.start for i in range(self.BASE.accounts)}
        untreated = sum(map(len, self._churns(self.BASE)))
        half = dataclasses.replace(self.BASE, treatment_effect=0.5, treated=everyone)
        full = dataclasses.replace(self.BASE, treatment_effect=1.0, treated=everyone)
        assert 0.3 * untreated < sum(map(len, self._churns(half))) < 0.75 * untreated
        assert sum(map(len, self._churns(full))) == 0


def test_annual_payers_leave_at_the_end_of_a_paid_term(bundles: list[AccountBundle]) -> None:
    """A yearly subscription runs to the end of its term: an annual payer's churn falls on
    an anniversary of its start (the conversion, or the latest reactivation)."""

    def offsets(bundle: AccountBundle) -> list[int]:
        out, start = [], None
        for change in bundle.subscriptions:
            if change.kind in ("new", "reactivation"):
                start = change.occurred_at
            elif change.kind == "churn" and start is not None:
                # Days between the two local times, rounded: both fall within working hours.
                out.append(round((change.occurred_at - start).total_seconds() / DAY))
        return out

    annual = [
        o for b in bundles if b.account.traits["billing_interval"] == "annual" for o in offsets(b)
    ]
    monthly = [
        o for b in bundles if b.account.traits["billing_interval"] == "monthly" for o in offsets(b)
    ]
    assert len(annual) >= 20 and len(monthly) >= 100

    def on_anniversary(days: int) -> bool:
        return days >= 364 and min(days % 365, 365 - days % 365) <= 1

    assert all(on_anniversary(d) for d in annual), sorted(annual)
    # Monthly payers leave any day: most churns are nowhere near an anniversary.
    assert sum(on_anniversary(d) for d in monthly) < 0.1 * len(monthly)
