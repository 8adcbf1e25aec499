"""The factors of a prediction in plain words."""

from __future__ import annotations

import numpy as np

from tenure.churn import explain

FEATURES = ["active_days_30", "nps", "plan", "mrr_change_90"]
REFERENCE = {
    "active_days_30": {"median": 14.0},
    "nps": {"median": 8.0},
    "plan": {"median": 1.0},
    "mrr_change_90": {"median": 0.0},
}
CODES = {"plan": ["basic", "pro"]}


def test_top_factors_by_size_with_direction_and_values() -> None:
    X = np.array([[3.0, np.nan, 0.0, -0.25]])
    contributions = np.array([[0.9, 0.2, -0.4, 0.05, -2.0]])  # last column: the bias
    (row,) = explain.factors(X, contributions, features=FEATURES, reference=REFERENCE, codes=CODES)
    assert [f["feature"] for f in row] == ["active_days_30", "plan", "nps", "mrr_change_90"]
    assert row[0]["text"] == "Active days in the last 30: 3, below the usual 14 (raises the risk)"
    assert row[1]["text"] == "Plan 'basic' lowers the risk"
    assert row[2]["text"] == "No NPS answer in the last year (raises the risk)"
    assert row[2]["value"] is None
    assert row[3]["text"] == "MRR change over 90 days: -25%, below the usual +0% (raises the risk)"
    assert row[0]["contribution"] == 0.9


def test_top_limits_and_zero_contributions_are_left_out() -> None:
    X = np.array([[20.0, 9.0, 1.0, 0.1]])
    contributions = np.array([[-0.5, 0.0, 0.3, 0.0, 0.1]])
    (row,) = explain.factors(
        X, contributions, features=FEATURES, reference=REFERENCE, codes=CODES, top=5
    )
    assert [f["feature"] for f in row] == ["active_days_30", "plan"]
    assert row[0]["text"].endswith("above the usual 14 (lowers the risk)")
    (one,) = explain.factors(
        X, contributions, features=FEATURES, reference=REFERENCE, codes=CODES, top=1
    )
    assert len(one) == 1


def test_health_components_and_unknown_codes() -> None:
    assert explain.label("health_engagement") == "Health component 'engagement'"
    text = explain.sentence("plan", 7.0, 0.2, median=None, codes=CODES)
    assert text == "Plan 'another value' raises the risk"


def test_billing_interval_and_renewal_read_as_words() -> None:
    codes: dict[str, list[str]] = {}
    assert (
        explain.sentence("annual_billing", 1.0, 0.3, median=0.0, codes=codes)
        == "Billed yearly (raises the risk)"
    )
    assert (
        explain.sentence("annual_billing", 0.0, -0.1, median=0.0, codes=codes)
        == "Billed monthly (lowers the risk)"
    )
    assert (
        explain.sentence("days_to_renewal", 12.4, 0.8, median=15.0, codes=codes)
        == "Days until the renewal: 12, below the usual 15 (raises the risk)"
    )
    assert (
        explain.sentence("onboarding_progress", float("nan"), 0.1, median=0.5, codes=codes)
        == "Onboarding progress unknown: signed up before the data began (raises the risk)"
    )
