"""Metrics against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from tenure.churn import metrics as M


class TestRocAuc:
    def test_ties_count_one_half(self) -> None:
        # Positives 0.4, 0.8, 0.9 against negatives 0.1, 0.4, 0.4:
        # 0.4 wins 1 + 0.5 + 0.5, 0.8 and 0.9 win 3 each: 8 of 9 pairs.
        y = [0, 0, 1, 1, 0, 1]
        p = [0.1, 0.4, 0.4, 0.8, 0.4, 0.9]
        assert M.roc_auc(y, p) == pytest.approx(8 / 9)

    def test_perfect_reversed_and_constant(self) -> None:
        assert M.roc_auc([0, 1], [0.2, 0.7]) == 1.0
        assert M.roc_auc([1, 0], [0.2, 0.7]) == 0.0
        assert M.roc_auc([1, 0, 1, 0], [0.5] * 4) == 0.5

    def test_one_class_is_undefined(self) -> None:
        assert math.isnan(M.roc_auc([1, 1], [0.2, 0.7]))


class TestAveragePrecision:
    def test_mean_precision_at_each_positive(self) -> None:
        # Positives ranked 1st (precision 1) and 3rd (precision 2/3).
        assert M.pr_auc([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx((1 + 2 / 3) / 2)

    def test_tied_scores_are_one_threshold(self) -> None:
        # At 0.9: P=1, R=1/2; at 0.5 (two rows, one positive): P=2/3, R=1.
        assert M.pr_auc([1, 0, 1], [0.9, 0.5, 0.5]) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)

    def test_no_positive_is_undefined(self) -> None:
        assert math.isnan(M.pr_auc([0, 0], [0.1, 0.2]))


def test_precision_recall_at_threshold() -> None:
    y, p = [1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]
    assert M.precision_recall_at(y, p, 0.75) == (0.5, 0.5)
    assert M.precision_recall_at(y, p, 0.7) == (2 / 3, 1.0)
    precision, recall = M.precision_recall_at(y, p, 0.95)
    assert math.isnan(precision) and recall == 0.0


def test_top_decile_lift() -> None:
    # 20 rows, 4 churners (rate 0.2); the top decile (2 rows) holds 2 of them: rate 1, lift 5.
    y = [1, 1] + [0] * 16 + [1, 1]
    p = [0.99, 0.98] + [0.5] * 16 + [0.1, 0.1]
    assert M.top_decile_lift(y, p) == pytest.approx(5.0)
    # 15 rows: the top decile rounds up to 2 rows; 1 churner of 3 overall.
    y2 = [0, 1] + [0] * 12 + [1]
    p2 = [0.9, 0.8] + [0.1] * 13
    assert M.top_decile_lift(y2, p2) == pytest.approx(0.5 / (2 / 15))


def test_brier() -> None:
    assert M.brier([1, 0], [0.8, 0.3]) == pytest.approx((0.04 + 0.09) / 2)
    assert M.brier([1, 0, 1], [1.0, 0.0, 1.0]) == 0.0


def test_calibration_table() -> None:
    y = [0, 1, 0, 1, 1]
    p = [0.05, 0.15, 0.12, 0.95, 1.0]
    table = M.calibration_table(y, p, bins=10)
    assert [row[0] for row in table] == [0, 1, 9]  # empty bins are left out
    assert table[0] == (0, pytest.approx(0.05), 0.0, 1)
    assert table[1] == (1, pytest.approx(0.135), 0.5, 2)
    assert table[2] == (9, pytest.approx(0.975), 1.0, 2)  # 1.0 falls in the last bin
    assert sum(row[3] for row in table) == 5
    five = M.calibration_table(y, p, bins=5)
    assert [row[0] for row in five] == [0, 4]


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError):
        M.roc_auc([1, 0], [0.5])
