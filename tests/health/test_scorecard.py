"""Scorecard validation: every mistake of a document is reported with its exact path."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tenure.health.scorecard import (
    Scorecard,
    default_scorecard,
    parse_scorecard,
    parse_toml,
)
from tenure.health.signals import SIGNALS
from tenure.kit.errors import InvalidInput

RISK_BANDS: list[dict[str, Any]] = [
    {"level": "critical", "label": "Critical", "min": 0, "colour": "#b42318"},
    {"level": "high", "label": "High risk", "min": 25, "colour": "#dc6803"},
    {"level": "medium", "label": "Medium", "min": 50, "colour": "#ca8504"},
    {"level": "low", "label": "Healthy", "min": 75, "colour": "#039855"},
]


def document() -> dict[str, Any]:
    """A small valid scorecard; each test breaks it in its own way."""
    return {
        "key": "small",
        "name": "Small",
        "components": [
            {
                "key": "engagement",
                "label": "Engagement",
                "weight": 2,
                "signals": [
                    {
                        "signal": "active_days_30",
                        "transform": {"kind": "ratio_to_expected", "zero": 0.2, "full": 1.0},
                    },
                    {
                        "signal": "activity_trend",
                        "transform": {"kind": "linear", "zero": 0.3, "full": 1.0},
                    },
                ],
            },
            {
                "key": "support",
                "label": "Support",
                "weight": 1,
                "signals": [
                    {
                        "signal": "open_tickets",
                        "transform": {
                            "kind": "bands",
                            "bands": [{"upto": 0, "score": 100}, {"upto": 2, "score": 50}],
                            "above": 10,
                        },
                    }
                ],
            },
        ],
        "risk_bands": copy.deepcopy(RISK_BANDS),
    }


def errors_of(data: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(InvalidInput) as caught:
        parse_scorecard(data)
    assert caught.value.status == 422
    errors: list[dict[str, str]] = caught.value.extra["errors"]
    # The detail repeats every error too (what a CLI user reads).
    for error in errors:
        assert error["field"] in caught.value.detail
    return errors


def fields(errors: list[dict[str, str]]) -> list[str]:
    return [e["field"] for e in errors]


class TestValidDocuments:
    def test_the_small_document_is_valid(self) -> None:
        card = parse_scorecard(document())
        assert [c.key for c in card.components] == ["engagement", "support"]
        assert card.signals() == ["active_days_30", "activity_trend", "open_tickets"]

    def test_the_shipped_default_parses(self) -> None:
        card = default_scorecard()
        assert isinstance(card, Scorecard)
        assert card.default
        assert card.seasonal
        assert all(name in SIGNALS for name in card.signals())
        assert card.bands_ascending()[0].min == 0
        # Every level of the design exists.
        assert {b.level for b in card.risk_bands} >= {"low", "medium", "high", "critical"}
        # The stored form parses back to the same scorecard.
        assert parse_scorecard(card.model_dump(mode="json")) == card

    def test_risk_bands_may_be_given_in_any_order(self) -> None:
        data = document()
        data["risk_bands"] = list(reversed(data["risk_bands"]))
        card = parse_scorecard(data)
        assert [b.min for b in card.bands_ascending()] == [0, 25, 50, 75]
        assert card.level_of(74.9) == "medium"
        assert card.level_of(75) == "low"
        assert card.level_of(0) == "critical"
        assert card.level_of(100) == "low"


class TestSingleMistakes:
    def test_unknown_signal(self) -> None:
        data = document()
        data["components"][1]["signals"][0]["signal"] = "logins"
        errors = errors_of(data)
        assert fields(errors) == ["components[1].signals[0].signal"]
        assert "unknown signal 'logins'" in errors[0]["message"]

    def test_negative_component_weight(self) -> None:
        data = document()
        data["components"][0]["weight"] = -1
        assert fields(errors_of(data)) == ["components[0].weight"]

    def test_negative_signal_weight(self) -> None:
        data = document()
        data["components"][0]["signals"][1]["weight"] = -0.5
        assert fields(errors_of(data)) == ["components[0].signals[1].weight"]

    def test_all_weights_zero(self) -> None:
        data = document()
        for component in data["components"]:
            component["weight"] = 0
        errors = errors_of(data)
        assert fields(errors) == ["components"]
        assert "positive weight" in errors[0]["message"]

    def test_duplicate_component(self) -> None:
        data = document()
        data["components"][1]["key"] = "engagement"
        errors = errors_of(data)
        assert fields(errors) == ["components"]
        assert "once" in errors[0]["message"]

    def test_overlapping_risk_bands(self) -> None:
        data = document()
        data["risk_bands"][2]["min"] = 25  # medium starts where high does
        errors = errors_of(data)
        assert fields(errors) == ["risk_bands"]
        assert "overlap" in errors[0]["message"]

    def test_risk_bands_not_starting_at_zero(self) -> None:
        data = document()
        data["risk_bands"][0]["min"] = 10
        errors = errors_of(data)
        assert fields(errors) == ["risk_bands"]
        assert "start at 0" in errors[0]["message"]

    def test_risk_band_outside_0_100(self) -> None:
        data = document()
        data["risk_bands"][3]["min"] = 101
        assert fields(errors_of(data)) == ["risk_bands[3].min"]

    def test_duplicate_risk_level(self) -> None:
        data = document()
        data["risk_bands"][1]["level"] = "critical"
        errors = errors_of(data)
        assert fields(errors) == ["risk_bands"]
        assert "once" in errors[0]["message"]

    def test_ratio_to_expected_on_a_signal_without_baseline(self) -> None:
        data = document()
        data["components"][1]["signals"][0] = {
            "signal": "open_tickets",
            "transform": {"kind": "ratio_to_expected", "zero": 0.2, "full": 1.0},
        }
        errors = errors_of(data)
        assert fields(errors) == ["components[1].signals[0]"]
        assert "no seasonal baseline" in errors[0]["message"]

    def test_ratio_full_not_above_zero(self) -> None:
        data = document()
        data["components"][0]["signals"][0]["transform"] = {
            "kind": "ratio_to_expected",
            "zero": 1.0,
            "full": 0.5,
        }
        assert fields(errors_of(data)) == ["components[0].signals[0].transform"]

    def test_linear_zero_equal_to_full(self) -> None:
        data = document()
        data["components"][0]["signals"][1]["transform"] = {
            "kind": "linear",
            "zero": 0.5,
            "full": 0.5,
        }
        errors = errors_of(data)
        # The discriminator's branch name ("linear") is not part of the path.
        assert fields(errors) == ["components[0].signals[1].transform"]
        assert "differ" in errors[0]["message"]

    def test_unsorted_bands(self) -> None:
        data = document()
        data["components"][1]["signals"][0]["transform"]["bands"] = [
            {"upto": 2, "score": 50},
            {"upto": 0, "score": 100},
        ]
        errors = errors_of(data)
        assert fields(errors) == ["components[1].signals[0].transform"]
        assert "ascending" in errors[0]["message"]

    def test_repeated_band_edge(self) -> None:
        data = document()
        data["components"][1]["signals"][0]["transform"]["bands"] = [
            {"upto": 1, "score": 100},
            {"upto": 1, "score": 50},
        ]
        assert fields(errors_of(data)) == ["components[1].signals[0].transform"]

    def test_band_score_above_100(self) -> None:
        data = document()
        data["components"][1]["signals"][0]["transform"]["bands"][0]["score"] = 120
        assert fields(errors_of(data)) == ["components[1].signals[0].transform.bands[0].score"]

    def test_unknown_transform_kind(self) -> None:
        data = document()
        data["components"][0]["signals"][1]["transform"] = {"kind": "log", "base": 2}
        assert fields(errors_of(data)) == ["components[0].signals[1].transform"]

    def test_unknown_component_and_unknown_field(self) -> None:
        data = document()
        data["components"][0]["key"] = "happiness"
        data["colour"] = "blue"
        assert sorted(fields(errors_of(data))) == ["colour", "components[0].key"]

    def test_default_scorecard_with_a_segment(self) -> None:
        data = document()
        data["default"] = True
        data["segment"] = {"category": ["florist"]}
        errors = errors_of(data)
        assert fields(errors) == ["(top level)"]
        assert "default" in errors[0]["message"]

    def test_bad_toml(self) -> None:
        with pytest.raises(InvalidInput) as caught:
            parse_toml("key = ")
        assert "TOML" in caught.value.detail


class TestSeveralMistakes:
    def test_every_mistake_is_reported_with_its_path(self) -> None:
        data = document()
        data["components"][0]["signals"][0]["signal"] = "logins"
        data["components"][0]["signals"][1]["transform"] = {
            "kind": "linear",
            "zero": 1,
            "full": 1,
        }
        data["components"][1]["weight"] = -3
        data["components"][1]["signals"][0]["transform"]["bands"] = [
            {"upto": 5, "score": 20},
            {"upto": 1, "score": 90},
        ]
        data["components"].append(
            {
                "key": "commercial",
                "label": "Commercial",
                "weight": 1,
                "signals": [
                    {
                        "signal": "mrr_change_90",
                        "transform": {"kind": "ratio_to_expected", "zero": 0.2, "full": 1},
                    }
                ],
            }
        )
        data["risk_bands"][0]["min"] = 5
        errors = errors_of(data)
        assert sorted(fields(errors)) == sorted(
            [
                "components[0].signals[0].signal",
                "components[0].signals[1].transform",
                "components[1].weight",
                "components[1].signals[0].transform",
                "components[2].signals[0]",
                "risk_bands",
            ]
        )

    def test_list_rules_are_reported_beside_mistakes_inside_the_list(self) -> None:
        # A duplicate component and overlapping bands are whole-list rules: they are
        # reported even when an item of the same list has its own mistake.
        data = document()
        data["components"][1]["key"] = "engagement"
        data["components"][1]["weight"] = -1
        data["risk_bands"][2]["min"] = 25
        data["risk_bands"][3]["colour"] = "green"
        errors = errors_of(data)
        by_field = {e["field"]: e["message"] for e in errors}
        assert set(by_field) == {
            "components",
            "components[1].weight",
            "risk_bands",
            "risk_bands[3].colour",
        }
        assert "once" in by_field["components"]
        assert "overlap" in by_field["risk_bands"]

    def test_the_shipped_default_with_mistakes_reports_each(self) -> None:
        data = default_scorecard().model_dump(mode="json")
        data["components"][0]["signals"][0]["signal"] = "logins"
        data["components"][-1]["weight"] = -1
        data["risk_bands"][0]["min"] = 1
        last = len(data["components"]) - 1
        assert sorted(fields(errors_of(data))) == sorted(
            ["components[0].signals[0].signal", f"components[{last}].weight", "risk_bands"]
        )
