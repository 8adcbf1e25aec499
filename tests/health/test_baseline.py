"""The seasonal baseline: learned medians, data_since, fallbacks to priors, churn rates."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import numpy as np
import pytest

from tenure.health.baseline import (
    ANY,
    FLAT_MONTH,
    MIN_ACCOUNTS,
    Baseline,
    learn,
    prior,
    window_month,
)

AS_OF = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
LONG_AGO = datetime(2023, 1, 1, tzinfo=UTC)
# With 12 months of history as of June 2026 every calendar month appears exactly once:
# June 2025 ... May 2026.
MONTHS = 12

Lifetime = tuple[uuid.UUID, str | None, str, datetime, datetime | None]
Monthly = tuple[uuid.UUID, str, int, int]


def accounts(
    n: int,
    category: str | None = "florist",
    hemisphere: str = "north",
    *,
    signup: datetime = LONG_AGO,
    churned: datetime | None = None,
) -> list[Lifetime]:
    return [(uuid.uuid4(), category, hemisphere, signup, churned) for _ in range(n)]


def months_of(as_of: datetime = AS_OF) -> list[str]:
    """'YYYY-MM' of the 12 months the baseline learns from."""
    total = as_of.year * 12 + as_of.month - 1
    return [f"{t // 12:04d}-{t % 12 + 1:02d}" for t in range(total - MONTHS, total)]


def activity(
    group: list[Lifetime], month: str, days: list[int], sessions: list[int] | None = None
) -> list[Monthly]:
    sessions = sessions if sessions is not None else [2 * d for d in days]
    return [(a[0], month, d, s) for a, d, s in zip(group, days, sessions, strict=True)]


def figure(b: Baseline, category: str, hemisphere: str, month: int, signal: str) -> float:
    return float(b.expected([category], [hemisphere], np.array([month]), signal)[0])


class TestLearned:
    def test_median_per_category_hemisphere_and_month(self) -> None:
        florists = accounts(25)
        photographers = accounts(25, "photographer")
        southern = accounts(25, hemisphere="south")
        monthly = (
            activity(florists, "2025-06", list(range(1, 26)))  # median 13
            + activity(florists, "2025-11", [4] * 25)
            + activity(photographers, "2025-06", [30] * 25)
            + activity(southern, "2025-06", [3] * 25)
        )
        b = learn(florists + photographers + southern, monthly, as_of=AS_OF, months=MONTHS)

        june = b.figures[("florist", "north", 6, "active_days")]
        assert (june.expected, june.accounts, june.source) == (13, 25, "learned")
        assert b.figures[("florist", "north", 6, "sessions")].expected == 26
        assert figure(b, "florist", "north", 6, "active_days") == 13
        assert figure(b, "florist", "north", 11, "active_days") == 4
        # A month without any usage row is a month of no activity, not unknown.
        assert figure(b, "florist", "north", 9, "active_days") == 0
        assert figure(b, "photographer", "north", 6, "active_days") == 30
        assert figure(b, "florist", "south", 6, "active_days") == 3
        # The pooled figure of a hemisphere: every category together (1..25 and 25 x 30).
        pooled = b.figures[(ANY, "north", 6, "active_days")]
        assert pooled.accounts == 50
        assert pooled.expected == pytest.approx((25 + 30) / 2)

    def test_the_whole_year_figure(self) -> None:
        florists = accounts(21)
        monthly = [
            row
            for month in months_of()
            for row in activity(florists, month, [10 if month.endswith("-04") else 0] * 21)
        ]
        b = learn(florists, monthly, as_of=AS_OF, months=MONTHS)
        flat = b.figures[("florist", "north", FLAT_MONTH, "active_days")]
        # 12 observations per account, one of them 10: the median is 0.
        assert flat.source == "learned"
        assert flat.expected == 0
        assert figure(b, "florist", "north", 4, "active_days") == 10

    def test_figures_are_per_30_days(self) -> None:
        florists = accounts(20)
        b = learn(florists, activity(florists, "2026-01", [31] * 20), as_of=AS_OF, months=MONTHS)
        # Active every day of January (31 days) is 30 days of 30.
        assert figure(b, "florist", "north", 1, "active_days") == pytest.approx(30)

    def test_only_surviving_accounts_count(self) -> None:
        staying = accounts(25)
        gone = accounts(5, churned=datetime(2026, 3, 1, tzinfo=UTC))
        late = accounts(5, signup=datetime(2025, 6, 10, tzinfo=UTC))
        monthly = (
            activity(staying, "2025-06", list(range(1, 26)))
            + activity(gone, "2025-06", [30] * 5)
            # Signed up mid-June: not alive for the whole month.
            + activity(late, "2025-06", [30] * 5)
        )
        b = learn(staying + gone + late, monthly, as_of=AS_OF, months=MONTHS)
        june = b.figures[("florist", "north", 6, "active_days")]
        assert june.accounts == 25
        assert june.expected == 13

    def test_accounts_churned_after_the_time_of_learning_still_count(self) -> None:
        # Learning as of last year must not know who churns later (a backfill).
        group = accounts(20, churned=datetime(2026, 3, 1, tzinfo=UTC))
        b = learn(
            group,
            activity(group, "2025-06", [7] * 20),
            as_of=datetime(2025, 8, 1, tzinfo=UTC),
            months=MONTHS,
        )
        assert b.figures[("florist", "north", 6, "active_days")].source == "learned"
        assert figure(b, "florist", "north", 6, "active_days") == 7

    def test_activity_after_the_time_of_learning_is_ignored(self) -> None:
        group = accounts(20)
        monthly = activity(group, "2025-06", [7] * 20) + activity(group, "2026-06", [30] * 20)
        b = learn(group, monthly, as_of=AS_OF, months=MONTHS)
        assert figure(b, "florist", "north", 6, "active_days") == 7
        assert b.learned_on == AS_OF.date()

    def test_unknown_accounts_and_months_are_ignored(self) -> None:
        group = accounts(20)
        strangers = [(uuid.uuid4(), "2025-06", 30, 60), (group[0][0], "2019-06", 30, 60)]
        monthly = activity(group, "2025-06", [7] * 20) + strangers
        b = learn(group, monthly, as_of=AS_OF, months=MONTHS)
        assert b.figures[("florist", "north", 6, "active_days")].accounts == 20
        assert figure(b, "florist", "north", 6, "active_days") == 7


class TestDataSince:
    def test_months_before_the_first_recorded_usage_are_not_quiet_but_unknown(self) -> None:
        group = accounts(25)
        recorded = [m for m in months_of() if m >= "2025-12"]
        monthly = [row for m in recorded for row in activity(group, m, [10] * 25)]

        naive = learn(group, monthly, as_of=AS_OF, months=MONTHS)
        # Without data_since the months before recording look like months of no activity.
        assert figure(naive, "florist", "north", 6, "active_days") == 0

        b = learn(group, monthly, as_of=AS_OF, months=MONTHS, data_since=date(2025, 12, 1))
        assert figure(b, "florist", "north", 4, "active_days") == 10
        assert b.figures[("florist", "north", 4, "active_days")].source == "learned"
        # June was never recorded: the shipped prior, not zero.
        assert figure(b, "florist", "north", 6, "active_days") == prior(
            "florist", "north", 6, "active_days"
        )
        # The whole-year figure only uses the recorded months (December to May; most of
        # them have 31 days, so the median is 10 days per 31).
        flat = b.figures[("florist", "north", FLAT_MONTH, "active_days")]
        assert flat.expected == pytest.approx(10 * 30 / 31)

    def test_a_month_recorded_from_its_middle_is_not_used(self) -> None:
        group = accounts(25)
        monthly = activity(group, "2025-12", [2] * 25) + activity(group, "2026-01", [10] * 25)
        b = learn(group, monthly, as_of=AS_OF, months=MONTHS, data_since=date(2025, 12, 20))
        assert figure(b, "florist", "north", 12, "active_days") == prior(
            "florist", "north", 12, "active_days"
        )
        assert figure(b, "florist", "north", 1, "active_days") == pytest.approx(10 * 30 / 31)


class TestFallbacks:
    def test_thin_groups_use_the_priors(self) -> None:
        few = accounts(MIN_ACCOUNTS - 1)
        b = learn(few, activity(few, "2025-06", [1] * len(few)), as_of=AS_OF, months=MONTHS)
        june = b.figures[("florist", "north", 6, "active_days")]
        assert june.source == "prior"
        assert june.accounts == MIN_ACCOUNTS - 1
        for month in (1, 6, 11):
            for name in ("active_days", "sessions"):
                assert figure(b, "florist", "north", month, name) == prior(
                    "florist", "north", month, name
                )

    def test_a_thin_category_uses_its_hemisphere_pool_when_that_is_not_thin(self) -> None:
        florists = accounts(5)
        venues = accounts(MIN_ACCOUNTS, "venue")
        monthly = activity(florists, "2025-06", [2] * 5) + activity(
            venues, "2025-06", [2] * MIN_ACCOUNTS
        )
        b = learn(florists + venues, monthly, as_of=AS_OF, months=MONTHS)
        assert b.figures[("florist", "north", 6, "active_days")].source == "prior"
        assert b.figures[(ANY, "north", 6, "active_days")].source == "learned"
        assert figure(b, "florist", "north", 6, "active_days") == 2

    def test_an_empty_baseline_is_all_priors(self) -> None:
        b = learn([], [], as_of=AS_OF)
        assert b.figures == {}
        assert figure(b, "venue", "south", 3, "sessions") == prior("venue", "south", 3, "sessions")
        # An account without a category gets the default prior.
        out = b.expected([None], ["north"], np.array([3]), "sessions")
        assert out[0] == prior(None, "north", 3, "sessions")

    def test_the_expectation_of_many_accounts_at_once(self) -> None:
        b = learn([], [], as_of=AS_OF)
        out = b.expected(
            ["florist", "venue", "florist", None],
            ["north", "north", "south", "north"],
            np.array([1, 7, 1, 0]),
            "active_days",
        )
        assert out.tolist() == [
            prior("florist", "north", 1, "active_days"),
            prior("venue", "north", 7, "active_days"),
            prior("florist", "south", 1, "active_days"),
            prior(None, "north", FLAT_MONTH, "active_days"),
        ]


class TestPriors:
    @pytest.mark.parametrize("signal", ["active_days", "sessions"])
    @pytest.mark.parametrize("category", ["florist", "photographer", "venue", None])
    def test_the_southern_hemisphere_is_six_months_apart(
        self, category: str | None, signal: str
    ) -> None:
        for month in range(1, 13):
            shifted = (month + 5) % 12 + 1
            assert prior(category, "south", month, signal) == pytest.approx(
                prior(category, "north", shifted, signal)
            )
        assert prior(category, "south", FLAT_MONTH, signal) == prior(
            category, "north", FLAT_MONTH, signal
        )

    def test_the_wedding_season_is_busier_than_winter(self) -> None:
        for category in ("florist", "photographer", "planner"):
            assert prior(category, "north", 6, "active_days") > prior(
                category, "north", 1, "active_days"
            )
            assert prior(category, "south", 1, "active_days") > prior(
                category, "south", 6, "active_days"
            )

    def test_an_unknown_category_uses_the_default(self) -> None:
        assert prior("balloon_artist", "north", 5, "sessions") == prior(
            None, "north", 5, "sessions"
        )

    def test_nothing_is_assumed_about_churn(self) -> None:
        assert np.isnan(prior("florist", "north", 1, "churn_rate"))

    def test_window_month(self) -> None:
        assert window_month(datetime(2026, 1, 10, tzinfo=UTC)) == 12
        assert window_month(datetime(2026, 1, 20, tzinfo=UTC)) == 1
        assert window_month(datetime(2026, 3, 1, tzinfo=UTC), 45) == 1


class TestChurnRates:
    def test_share_of_subscribed_accounts_that_cancel_in_each_month(self) -> None:
        staying = accounts(36)
        when = datetime(2025, 11, 10, tzinfo=UTC)
        leaving = accounts(4, churned=when)
        b = learn(
            staying + leaving,
            [],
            [(a[0], when) for a in leaving],
            as_of=AS_OF,
            months=MONTHS,
        )
        november = b.figures[("florist", "north", 11, "churn_rate")]
        assert (november.expected, november.accounts, november.source) == (0.1, 40, "learned")
        # The cancelled accounts are no longer at risk afterwards.
        december = b.figures[("florist", "north", 12, "churn_rate")]
        assert (december.expected, december.accounts) == (0.0, 36)
        # October: all 40 subscribed, nobody left.
        assert b.figures[("florist", "north", 10, "churn_rate")].expected == 0.0
        assert b.figures[(ANY, "north", 11, "churn_rate")].expected == 0.1
        assert figure(b, "florist", "north", 11, "churn_rate") == pytest.approx(0.1)

    def test_several_years_of_the_same_month_pool_together(self) -> None:
        group = accounts(30)
        first, second = datetime(2024, 11, 5, tzinfo=UTC), datetime(2025, 11, 5, tzinfo=UTC)
        churned_first = accounts(3, churned=first)
        churned_second = accounts(3, churned=second)
        churns = [(a[0], first) for a in churned_first] + [(a[0], second) for a in churned_second]
        b = learn(group + churned_first + churned_second, [], churns, as_of=AS_OF, months=24)
        november = b.figures[("florist", "north", 11, "churn_rate")]
        # 36 exposed in Nov 2024 and 33 in Nov 2025; 3 lost each time.
        assert november.accounts == 69
        assert november.expected == pytest.approx(6 / 69)

    def test_thin_segments_learn_no_churn_rate(self) -> None:
        group = accounts(MIN_ACCOUNTS - 2)
        when = datetime(2025, 11, 10, tzinfo=UTC)
        leaving = accounts(1, churned=when)
        b = learn(group + leaving, [], [(leaving[0][0], when)], as_of=AS_OF, months=MONTHS)
        assert ("florist", "north", 11, "churn_rate") not in b.figures
        assert np.isnan(figure(b, "florist", "north", 11, "churn_rate"))

    def test_churn_before_the_first_recorded_usage_is_not_learned(self) -> None:
        group = accounts(30)
        when = datetime(2025, 11, 10, tzinfo=UTC)
        leaving = accounts(3, churned=when)
        b = learn(
            group + leaving,
            [],
            [(a[0], when) for a in leaving],
            as_of=AS_OF,
            months=MONTHS,
            data_since=date(2026, 1, 1),
        )
        assert ("florist", "north", 11, "churn_rate") not in b.figures
        assert b.figures[("florist", "north", 2, "churn_rate")].expected == 0.0
