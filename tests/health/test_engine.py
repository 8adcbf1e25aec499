"""The score maths on plain arrays: transforms, reweighting, explanations, levels, roll-ups."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import numpy as np
import pytest

from tenure.health.engine import (
    FLAT,
    MIN_IMPACT,
    TOP_FACTORS,
    Scores,
    rollup,
    score_frame,
    transform,
)
from tenure.health.explain import sentence
from tenure.health.scorecard import Scorecard, SignalRule, default_scorecard, parse_scorecard
from tenure.health.signals import SIGNALS, SignalFrame

NAN = np.nan
RISK_BANDS: list[dict[str, Any]] = [
    {"level": "critical", "label": "Critical", "min": 0, "colour": "#b42318"},
    {"level": "high", "label": "High risk", "min": 25, "colour": "#dc6803"},
    {"level": "medium", "label": "Medium", "min": 50, "colour": "#ca8504"},
    {"level": "low", "label": "Healthy", "min": 75, "colour": "#039855"},
]


def linear(zero: float, full: float) -> dict[str, Any]:
    return {"kind": "linear", "zero": zero, "full": full}


def signal(name: str, tf: dict[str, Any], weight: float = 1.0) -> dict[str, Any]:
    return {"signal": name, "transform": tf, "weight": weight}


def component(key: str, weight: float, *signals: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "label": key.title(), "weight": weight, "signals": list(signals)}


def card(*components: dict[str, Any], **fields: Any) -> Scorecard:
    return parse_scorecard(
        {"key": "test", "name": "Test", "components": list(components), "risk_bands": RISK_BANDS}
        | fields
    )


def frame(
    n: int,
    values: dict[str, Any],
    expected: dict[str, Any] | None = None,
) -> SignalFrame:
    return SignalFrame(
        [uuid.UUID(int=i + 1) for i in range(n)],
        {k: np.asarray(v, dtype=np.float64) for k, v in values.items()},
        {k: np.asarray(v, dtype=np.float64) for k, v in (expected or {}).items()},
    )


def rule(tf: dict[str, Any], name: str = "open_tickets") -> SignalRule:
    return SignalRule.model_validate({"signal": name, "transform": tf})


def arr(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


class TestBands:
    RULE = rule(
        {
            "kind": "bands",
            "bands": [
                {"upto": 0, "score": 100},
                {"upto": 1, "score": 80},
                {"upto": 4, "score": 30},
            ],
            "above": 10,
        }
    )

    def test_each_value_scores_its_band_edges_inclusive(self) -> None:
        values = arr(-3, 0, 0.5, 1, 2, 4, 4.01, 1000)
        expected = arr(100, 100, 80, 80, 30, 30, 10, 10)
        np.testing.assert_array_equal(transform(self.RULE, values, None), expected)

    def test_above_applies_past_the_last_band(self) -> None:
        tf = {"kind": "bands", "bands": [{"upto": 3, "score": 100}], "above": 0}
        np.testing.assert_array_equal(
            transform(rule(tf, "days_since_seen"), arr(3, 3.5, 365), None), arr(100, 0, 0)
        )

    def test_nan_stays_nan(self) -> None:
        out = transform(self.RULE, arr(NAN, 2), None)
        assert np.isnan(out[0])
        assert out[1] == 30


class TestLinear:
    def test_higher_is_better_clipped_at_both_ends(self) -> None:
        out = transform(rule(linear(2, 9), "nps"), arr(-5, 0, 2, 5.5, 9, 10, NAN), None)
        np.testing.assert_array_equal(out[:6], arr(0, 0, 0, 50, 100, 100))
        assert np.isnan(out[6])

    def test_lower_is_better_when_zero_is_above_full(self) -> None:
        out = transform(
            rule(linear(0.16, 0.04), "season_ahead_churn"), arr(0.5, 0.16, 0.10, 0.04, 0.0), None
        )
        np.testing.assert_allclose(out, arr(0, 0, 50, 100, 100))

    def test_negative_range(self) -> None:
        out = transform(rule(linear(-0.5, 0), "mrr_change_90"), arr(-1, -0.5, -0.25, 0, 0.3), None)
        np.testing.assert_allclose(out, arr(0, 0, 50, 100, 100))


class TestRatioToExpected:
    RULE = rule({"kind": "ratio_to_expected", "zero": 0.2, "full": 1.0}, "active_days_30")

    def test_ratio_of_value_to_expected(self) -> None:
        values = arr(0, 2, 6, 10, 20, 3)
        expected = arr(10, 10, 10, 10, 10, 5)
        # Ratios 0, 0.2, 0.6, 1, 2, 0.6.
        np.testing.assert_allclose(
            transform(self.RULE, values, expected), arr(0, 0, 50, 100, 100, 50)
        )

    def test_nothing_expected_means_nothing_is_missing(self) -> None:
        out = transform(self.RULE, arr(0, 4), arr(0, 0))
        np.testing.assert_array_equal(out, arr(100, 100))

    def test_unknown_expectation_or_value_gives_no_score(self) -> None:
        out = transform(self.RULE, arr(5, NAN, NAN), arr(NAN, 10, 0))
        assert np.isnan(out).all()

    def test_no_baseline_at_all_gives_no_score(self) -> None:
        assert np.isnan(transform(self.RULE, arr(1, 2, 3), None)).all()

    def test_custom_bounds(self) -> None:
        tf = {"kind": "ratio_to_expected", "zero": 0.5, "full": 1.5}
        out = transform(rule(tf, "sessions_30"), arr(5, 10, 15), arr(10, 10, 10))
        np.testing.assert_allclose(out, arr(0, 50, 100))


class TestSeasonalSwitch:
    def test_a_non_seasonal_card_reads_the_flat_values_and_expectations(self) -> None:
        comps = [
            component(
                "engagement",
                1,
                signal("active_days_30", {"kind": "ratio_to_expected", "zero": 0, "full": 1}),
                signal("activity_trend", linear(0, 1)),
            )
        ]
        f = frame(
            1,
            {"active_days_30": [6], "activity_trend": [1.0], "activity_trend" + FLAT: [0.5]},
            {"active_days": [6], "active_days" + FLAT: [12]},
        )
        seasonal = score_frame(card(*comps, seasonal=True), f)
        flat = score_frame(card(*comps, seasonal=False), f)
        assert seasonal.signal_scores["active_days_30"][0] == 100
        assert seasonal.signal_scores["activity_trend"][0] == 100
        assert flat.signal_scores["active_days_30"][0] == 50
        assert flat.signal_scores["activity_trend"][0] == 50
        assert seasonal.score[0] == 100
        assert flat.score[0] == 50


# A card whose arithmetic is easy to follow: engagement 3, support 1, satisfaction 1.
EXACT = card(
    component(
        "engagement",
        3,
        signal("activity_trend", linear(0, 1), 1),
        signal("feature_breadth_30", linear(0, 4), 3),
    ),
    component("support", 1, signal("open_tickets", linear(4, 0))),
    component(
        "satisfaction",
        1,
        signal("nps", linear(0, 10), 2),
        signal("csat", linear(1, 5), 2),
    ),
)


class TestMissingData:
    def test_all_present(self) -> None:
        f = frame(
            1,
            {
                "activity_trend": [0.5],  # 50
                "feature_breadth_30": [3],  # 75
                "open_tickets": [1],  # 75
                "nps": [6],  # 60
                "csat": [4],  # 75
            },
        )
        s = score_frame(EXACT, f)
        engagement = (50 * 1 + 75 * 3) / 4
        satisfaction = (60 + 75) / 2
        assert s.components["engagement"][0] == pytest.approx(engagement)
        assert s.components["satisfaction"][0] == pytest.approx(satisfaction)
        assert s.score[0] == pytest.approx((3 * engagement + 75 + satisfaction) / 5)

    def test_a_component_without_data_is_left_out_and_its_weight_shared(self) -> None:
        f = frame(
            2,
            {
                "activity_trend": [0.5, 0.5],
                "feature_breadth_30": [3, 3],
                "open_tickets": [1, 1],
                "nps": [NAN, 6],
                "csat": [NAN, NAN],  # the second account: NPS only
            },
        )
        s = score_frame(EXACT, f)
        engagement = (50 + 75 * 3) / 4
        # No survey at all: satisfaction is missing, never zero.
        assert np.isnan(s.components["satisfaction"][0])
        assert s.score[0] == pytest.approx((3 * engagement + 75) / 4)
        assert s.contributions["satisfaction"][0] == 0
        # One survey of two: the component is the signal that has data.
        assert s.components["satisfaction"][1] == pytest.approx(60)
        assert s.score[1] == pytest.approx((3 * engagement + 75 + 60) / 5)

    def test_missing_data_costs_nothing(self) -> None:
        f = frame(
            2,
            {
                "activity_trend": [1.0, 1.0],
                "feature_breadth_30": [4, 4],
                "open_tickets": [0, 0],
                "nps": [NAN, 10],
                "csat": [NAN, 5],
            },
        )
        s = score_frame(EXACT, f)
        np.testing.assert_allclose(s.score, [100, 100])
        assert s.impact["nps"][0] == 0
        assert s.impact["csat"][0] == 0

    def test_a_zero_weight_component_never_counts(self) -> None:
        c = card(
            component("engagement", 1, signal("activity_trend", linear(0, 1))),
            component("support", 0, signal("open_tickets", linear(4, 0))),
        )
        s = score_frame(c, frame(1, {"activity_trend": [0.8], "open_tickets": [4]}))
        assert s.score[0] == pytest.approx(80)
        assert s.impact["open_tickets"][0] == 0

    def test_no_data_at_all_gives_no_score_and_no_level(self) -> None:
        f = frame(
            1,
            {name: [NAN] for name in ("activity_trend", "feature_breadth_30", "open_tickets")},
        )
        s = score_frame(EXACT, f)
        assert np.isnan(s.score[0])
        assert s.level[0] == -1
        assert (s.factors[0] == -1).all()
        assert all(v[0] == 0 for v in s.contributions.values())

    def test_a_signal_absent_from_the_frame_counts_as_missing(self) -> None:
        f = frame(1, {"open_tickets": [2]})
        s = score_frame(EXACT, f)
        assert s.score[0] == pytest.approx(50)
        assert np.isnan(s.components["engagement"][0])


def random_frame(n: int, seed: int = 7) -> SignalFrame:
    """Every signal of the catalogue with plausible values, ~15% missing."""
    rng = np.random.default_rng(seed)
    values: dict[str, np.ndarray] = {}
    for name in SIGNALS:
        v = rng.uniform(-1, 30, n)
        v[rng.random(n) < 0.15] = NAN
        values[name] = v
        values[name + FLAT] = v * rng.uniform(0.5, 1.5, n)
    values["nps"] = np.where(np.isnan(values["nps"]), NAN, rng.integers(0, 11, n))
    values["mrr_change_90"] = rng.uniform(-1, 0.5, n)
    values["season_ahead_churn"] = rng.uniform(0, 0.3, n)
    expected = {key: rng.uniform(0, 25, n) for key in ("active_days", "sessions")}
    expected |= {key + FLAT: rng.uniform(1, 25, n) for key in ("active_days", "sessions")}
    expected["sessions"][:5] = 0  # nothing expected
    return SignalFrame([uuid.UUID(int=i + 1) for i in range(n)], values, expected)


class TestAccounting:
    @pytest.mark.parametrize("seasonal", [True, False])
    def test_contributions_sum_to_the_score_and_impacts_to_what_is_lost(
        self, seasonal: bool
    ) -> None:
        c = default_scorecard().model_copy(update={"seasonal": seasonal})
        f = random_frame(2000)
        s = score_frame(c, f)
        scored = ~np.isnan(s.score)
        assert scored.sum() > 1900
        total = sum(s.contributions.values())
        np.testing.assert_allclose(total[scored], s.score[scored], atol=1e-9)
        lost = sum(s.impact.values())
        np.testing.assert_allclose(lost[scored], 100 - s.score[scored], atol=1e-9)
        assert ((s.score[scored] >= 0) & (s.score[scored] <= 100)).all()
        for values in s.impact.values():
            assert (values >= 0).all()

    def test_a_change_of_score_is_the_sum_of_component_changes(self) -> None:
        c = default_scorecard()
        before = score_frame(c, random_frame(500, seed=1))
        after = score_frame(c, random_frame(500, seed=2))
        both = ~np.isnan(before.score) & ~np.isnan(after.score)
        change = sum(after.contributions[k] - before.contributions[k] for k in after.contributions)
        np.testing.assert_allclose(change[both], (after.score - before.score)[both], atol=1e-9)


FACTORS = card(
    component(
        "satisfaction",
        1,
        signal("nps", linear(0, 10)),
        signal("csat", linear(0, 5)),
        signal("support_sentiment", linear(-1, 1)),
        signal("days_since_seen", linear(100, 0)),
        signal("open_tickets", linear(100, 0)),
    )
)


class TestFactors:
    def names(self, s: Scores, row: int) -> list[str]:
        return [s.signal_names[i] for i in s.factors[row].tolist() if i >= 0]

    def test_the_most_costly_signals_in_order_small_losses_left_out(self) -> None:
        # Each signal is a fifth of the score: impacts 10, 4, 0.2, 6, 0.
        f = frame(
            1,
            {
                "nps": [5],
                "csat": [4],
                "support_sentiment": [0.98],
                "days_since_seen": [30],
                "open_tickets": [0],
            },
        )
        s = score_frame(FACTORS, f)
        assert s.impact["nps"][0] == pytest.approx(10)
        assert s.impact["days_since_seen"][0] == pytest.approx(6)
        assert s.impact["csat"][0] == pytest.approx(4)
        assert s.impact["support_sentiment"][0] < MIN_IMPACT
        assert self.names(s, 0) == ["nps", "days_since_seen", "csat"]

    def test_at_most_the_top_factors_and_only_those_worth_attention(self) -> None:
        f = frame(
            3,
            {
                "nps": [0, 10, 10],
                "csat": [1, 5, 5],
                "support_sentiment": [-0.5, 1, 1],
                "days_since_seen": [90, 0, 9.5],  # 9.5% of a fifth: 1.9 points
                "open_tickets": [50, 0, 0],
            },
        )
        s = score_frame(FACTORS, f)
        assert len(self.names(s, 0)) == TOP_FACTORS
        assert self.names(s, 0) == ["nps", "days_since_seen", "csat"]
        assert self.names(s, 1) == []
        assert self.names(s, 2) == []
        assert s.factors.shape == (3, TOP_FACTORS)

    def test_missing_signals_are_no_factor(self) -> None:
        f = frame(1, {"nps": [NAN], "csat": [2.5], "open_tickets": [0]})
        s = score_frame(FACTORS, f)
        # csat is half of what has data: 50 points lost x 1/2.
        assert self.names(s, 0) == ["csat"]
        assert s.impact["csat"][0] == pytest.approx(25)


class TestLevels:
    ONE = card(component("engagement", 1, signal("activity_trend", linear(0, 100))))

    def test_boundaries(self) -> None:
        values = arr(0, 24.99, 25, 49.9, 50, 74.9, 75, 100, 150)
        s = score_frame(self.ONE, frame(len(values), {"activity_trend": values}))
        bands = self.ONE.bands_ascending()
        levels = [bands[i].level for i in s.level.tolist()]
        assert levels == [
            "critical",
            "critical",
            "high",
            "high",
            "medium",
            "medium",
            "low",
            "low",
            "low",
        ]
        # The same answer as the scorecard gives for one score.
        assert levels == [self.ONE.level_of(float(x)) for x in s.score]

    def test_custom_bands_in_any_order(self) -> None:
        c = parse_scorecard(
            {
                "key": "two",
                "name": "Two",
                "components": [
                    component("engagement", 1, signal("activity_trend", linear(0, 100)))
                ],
                "risk_bands": [
                    {"level": "fine", "label": "Fine", "min": 60, "colour": "#00aa00"},
                    {"level": "watch", "label": "Watch", "min": 0, "colour": "#aa0000"},
                ],
            }
        )
        s = score_frame(c, frame(3, {"activity_trend": arr(59.99, 60, NAN)}))
        bands = c.bands_ascending()
        assert [bands[i].level for i in s.level[:2].tolist()] == ["watch", "fine"]
        assert s.level[2] == -1


class TestVectorised:
    def test_one_account_alone_scores_as_inside_ten_thousand(self) -> None:
        c = default_scorecard()
        big = random_frame(10_000, seed=11)
        everyone = score_frame(c, big)
        for row in (0, 3, 4_321, 9_999):
            alone = SignalFrame(
                [big.account_ids[row]],
                {k: v[row : row + 1].copy() for k, v in big.values.items()},
                {k: v[row : row + 1].copy() for k, v in big.expected.items()},
            )
            one = score_frame(c, alone)
            assert_same_row(one, 0, everyone, row)
            # A segment taken out of the frame scores the same too.
            taken = score_frame(c, big.take(np.array([row, 5], dtype=np.intp)))
            assert_same_row(taken, 0, everyone, row)

    def test_the_order_of_accounts_does_not_matter(self) -> None:
        c = default_scorecard()
        f = random_frame(300, seed=5)
        order = np.random.default_rng(1).permutation(300).astype(np.intp)
        shuffled = score_frame(c, f.take(order))
        straight = score_frame(c, f)
        for k, row in enumerate(order.tolist()):
            assert_same_row(shuffled, k, straight, row)

    def test_an_empty_frame(self) -> None:
        s = score_frame(default_scorecard(), SignalFrame([], {}))
        assert s.score.shape == (0,)
        assert s.factors.shape == (0, TOP_FACTORS)


def assert_same_row(a: Scores, i: int, b: Scores, j: int) -> None:
    np.testing.assert_array_equal(a.score[i], b.score[j])
    assert a.level[i] == b.level[j]
    assert a.signal_names == b.signal_names
    np.testing.assert_array_equal(a.factors[i], b.factors[j])
    for key in b.components:
        np.testing.assert_array_equal(a.components[key][i], b.components[key][j])
        np.testing.assert_array_equal(a.contributions[key][i], b.contributions[key][j])
    for key in b.impact:
        np.testing.assert_array_equal(a.impact[key][i], b.impact[key][j])
        np.testing.assert_array_equal(a.signal_scores[key][i], b.signal_scores[key][j])


class TestRollup:
    PARENT = np.array([0, 0, 1, 2, 2, 2], dtype=np.intp)

    def test_mean_of_scored_children(self) -> None:
        scores = arr(80, 60, NAN, 40, NAN, 70)
        out = rollup(scores, self.PARENT, 4, None)
        assert out[0] == pytest.approx(70)
        assert np.isnan(out[1])  # its only child has no score
        assert out[2] == pytest.approx(55)
        assert np.isnan(out[3])  # no children at all

    def test_weighted_by_mrr(self) -> None:
        scores = arr(80, 60, NAN, 40, 90, 70)
        weights = arr(3000, 1000, 5000, 0, 0, 0)
        out = rollup(scores, self.PARENT, 3, weights)
        assert out[0] == pytest.approx((80 * 3000 + 60 * 1000) / 4000)
        assert np.isnan(out[1])
        # Children without MRR still count (equally, among themselves).
        assert out[2] == pytest.approx((40 + 90 + 70) / 3)

    def test_a_child_without_mrr_barely_counts_beside_paying_ones(self) -> None:
        out = rollup(arr(90, 10), np.array([0, 0], dtype=np.intp), 1, arr(5000, 0))
        assert out[0] == pytest.approx(90, abs=1e-3)

    def test_negative_weights_are_ignored(self) -> None:
        out = rollup(arr(90, 10), np.array([0, 0], dtype=np.intp), 1, arr(1000, -500))
        assert out[0] == pytest.approx(90, abs=1e-3)


class TestSentences:
    """Each factor's sentence speaks of its own signal, in words a CSM can act on."""

    def frame(self, **values: float) -> SignalFrame:
        f = frame(1, {name: [v] for name, v in values.items()})
        f.expected = {
            "active_days": arr(10),
            "active_days" + FLAT: arr(12),
            "sessions": arr(20),
            "sessions" + FLAT: arr(25),
        }
        f.extras = {
            "window_month": arr(1),
            "key_features": arr(9),
            "latest_nps": arr(3),
            "latest_nps_day": arr(date(2026, 3, 4).toordinal()),
        }
        return f

    def say(self, name: str, value: float, *, seasonal: bool = True, **extra: float) -> str:
        f = self.frame(**{name: value})
        for key, v in extra.items():
            f.extras[key] = arr(v)
        return sentence(name, f, 0, category="florist", seasonal=seasonal)

    def test_activity_against_the_season(self) -> None:
        assert self.say("active_days_30", 4) == (
            "Active on 4 days of the last 30: 60% below the usual 10 for florists in January"
        )
        assert self.say("active_days_30", 4, seasonal=False) == (
            "Active on 4 days of the last 30: 67% below the usual 12 for florists"
        )
        assert self.say("sessions_30", 21).startswith("21 sessions in the last 30 days, about")
        assert self.say("sessions_30", 1).startswith("1 session in the last 30 days: 95% below")

    def test_trends(self) -> None:
        assert self.say("activity_trend", 0.4).startswith("Activity fell 60% vs the previous")
        assert "season" in self.say("activity_trend", 0.4)
        assert "season" not in self.say("activity_trend", 0.4, seasonal=False)
        assert self.say("activity_trend", 1.25).startswith("Activity is up 25%")
        assert self.say("sessions_vs_last_year", 0.4) == (
            "Sessions fell 60% vs the same season last year"
        )
        assert self.say("sessions_vs_last_year", 1.1).startswith("Sessions are up 10%")

    def test_adoption(self) -> None:
        assert self.say("feature_breadth_30", 2) == "Uses 2 of 9 key features (last 30 days)"
        assert self.say("feature_breadth_90", 3) == "Uses 3 of 9 key features (last 90 days)"

    def test_satisfaction(self) -> None:
        assert self.say("nps", 3.4) == "NPS 3 on 4 March 2026"
        assert self.say("nps", 3.4, latest_nps=NAN) == "Recent NPS averages 3.4"
        assert self.say("csat", 2.3) == "Recent CSAT averages 2.3 out of 5"
        assert "negative" in self.say("support_sentiment", -0.4)
        assert "lukewarm" in self.say("support_sentiment", 0.1)

    def test_support(self) -> None:
        assert self.say("open_tickets", 1) == "1 support ticket open"
        assert self.say("aging_tickets", 3) == "3 tickets open for more than 10 days"
        assert self.say("aging_tickets", 1) == "1 ticket open for more than 10 days"
        assert self.say("escalated_tickets", 2) == "2 escalated tickets open"

    def test_commercial_recency_and_season(self) -> None:
        assert self.say("mrr_change_90", -0.3) == "MRR down 30% in the last 90 days"
        assert self.say("failed_payments_90", 2) == "2 failed payments in the last 90 days"
        assert self.say("downgrades_90", 1) == "Downgraded 1 time in the last 90 days"
        assert self.say("days_since_seen", 45) == (
            "Nobody from the account has been active for 45 days"
        )
        assert self.say("season_ahead_churn", 0.12).startswith(
            "Season ahead: 12% of florists usually cancel"
        )

    def test_every_signal_has_a_sentence_of_its_own(self) -> None:
        for name in SIGNALS:
            text = self.say(name, 1.0)
            assert text and not text.startswith(name), name

    def test_accounts_without_a_category(self) -> None:
        f = self.frame(active_days_30=4)
        text = sentence("active_days_30", f, 0, category=None, seasonal=True)
        assert "accounts like this one in January" in text
