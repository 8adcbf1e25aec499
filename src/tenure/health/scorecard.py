"""Scorecards: which signals make up which component, how each is scored, the weights.

A scorecard is configuration (TOML; the wedding default ships in `scorecard_wedding.toml`),
validated here, stored in the database with a version, and chosen per account by segment
rules. Validation reports every mistake with its exact path
(`components[1].signals[0].signal: unknown signal 'logins'`).
"""

from __future__ import annotations

import tomllib
from importlib.resources import files
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tenure.health.signals import SIGNALS
from tenure.kit.errors import InvalidInput

COMPONENTS = (
    "engagement",
    "adoption",
    "satisfaction",
    "support",
    "commercial",
    "recency",
    "season",
)
LIFECYCLE_STAGES = ("trial", "onboarding", "established", "churned")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Band(_Strict):
    """Values up to `upto` (inclusive) score `score`."""

    upto: float
    score: float = Field(ge=0, le=100)


class BandsTransform(_Strict):
    kind: Literal["bands"]
    bands: list[Band] = Field(min_length=1)
    # Values above the last band.
    above: float = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _ascending(self) -> BandsTransform:
        edges = [b.upto for b in self.bands]
        if edges != sorted(edges) or len(set(edges)) != len(edges):
            raise ValueError("bands must be in strictly ascending order of 'upto'")
        return self


class LinearTransform(_Strict):
    """`zero` scores 0 and `full` scores 100, linear in between, clipped (zero > full
    means lower is better)."""

    kind: Literal["linear"]
    zero: float
    full: float

    @model_validator(mode="after")
    def _distinct(self) -> LinearTransform:
        if self.zero == self.full:
            raise ValueError("zero and full must differ")
        return self


class RatioTransform(_Strict):
    """Value divided by what is expected for the account's segment and season: a ratio of
    `zero` or less scores 0, `full` or more scores 100."""

    kind: Literal["ratio_to_expected"]
    zero: float = Field(0.2, ge=0)
    full: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _order(self) -> RatioTransform:
        if self.full <= self.zero:
            raise ValueError("full must be greater than zero")
        return self


Transform = Annotated[
    BandsTransform | LinearTransform | RatioTransform, Field(discriminator="kind")
]


class SignalRule(_Strict):
    signal: str
    transform: Transform
    weight: float = Field(1.0, ge=0)

    @field_validator("signal")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in SIGNALS:
            raise ValueError(f"unknown signal {value!r} (known: {', '.join(sorted(SIGNALS))})")
        return value

    @model_validator(mode="after")
    def _has_baseline(self) -> SignalRule:
        spec = SIGNALS[self.signal]
        if isinstance(self.transform, RatioTransform) and spec.baseline is None:
            raise ValueError(
                f"signal {self.signal!r} has no seasonal baseline: use bands or linear"
            )
        return self


class Component(_Strict):
    key: Literal[
        "engagement", "adoption", "satisfaction", "support", "commercial", "recency", "season"
    ]
    label: str = Field(min_length=1, max_length=60)
    weight: float = Field(ge=0)
    signals: list[SignalRule] = Field(min_length=1)


class RiskBand(_Strict):
    level: str = Field(pattern=r"^[a-z][a-z_]*$")
    label: str = Field(min_length=1, max_length=40)
    # Scores from `min` (inclusive) up to the next band's min.
    min: float = Field(ge=0, le=100)
    colour: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")


class Segment(_Strict):
    """Which accounts a scorecard applies to; every listed criterion must match."""

    category: list[str] = Field(default_factory=list)
    plan: list[str] = Field(default_factory=list)
    lifecycle: list[Literal["trial", "onboarding", "established", "churned"]] = Field(
        default_factory=list
    )


def _components_problem(keys: list[Any], weights: list[Any]) -> str | None:
    if len(set(keys)) != len(keys):
        return "each component appears once"
    if weights and sum(weights) <= 0:
        return "at least one component needs a positive weight"
    return None


def _bands_problem(mins: list[Any], levels: list[Any]) -> str | None:
    if len(set(mins)) != len(mins):
        return "risk bands overlap: two bands start at the same score"
    if mins and 0 not in mins:
        return "risk bands must cover every score: one band must start at 0"
    if len(set(levels)) != len(levels):
        return "each risk level appears once"
    return None


class Scorecard(_Strict):
    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    # Accounts matching `segment` use this scorecard; the default one takes the rest.
    default: bool = False
    priority: int = 0
    segment: Segment = Field(default_factory=Segment)
    seasonal: bool = Field(True, description="Compare activity with the seasonal baseline")
    parent_rollup: Literal["mean", "mrr_weighted"] = "mrr_weighted"
    components: list[Component] = Field(min_length=1)
    risk_bands: list[RiskBand] = Field(min_length=2)

    @field_validator("components")
    @classmethod
    def _components(cls, components: list[Component]) -> list[Component]:
        problem = _components_problem([c.key for c in components], [c.weight for c in components])
        if problem:
            raise ValueError(problem)
        return components

    @field_validator("risk_bands")
    @classmethod
    def _bands(cls, bands: list[RiskBand]) -> list[RiskBand]:
        problem = _bands_problem([b.min for b in bands], [b.level for b in bands])
        if problem:
            raise ValueError(problem)
        return bands

    @model_validator(mode="after")
    def _consistent(self) -> Scorecard:
        if self.default and (self.segment.category or self.segment.plan or self.segment.lifecycle):
            raise ValueError("the default scorecard has no segment")
        return self

    def bands_ascending(self) -> list[RiskBand]:
        return sorted(self.risk_bands, key=lambda b: b.min)

    def level_of(self, score: float) -> str:
        level = self.bands_ascending()[0].level
        for band in self.bands_ascending():
            if score >= band.min:
                level = band.level
        return level

    def signals(self) -> list[str]:
        return sorted({r.signal for c in self.components for r in c.signals})


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for k, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("bands", "linear", "ratio_to_expected") and k and loc[k - 1] == "transform":
            continue  # the discriminator's branch name, not a field
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _masked_list_errors(data: Any, reported: set[str]) -> list[dict[str, str]]:
    """Whole-list rules (a component twice, overlapping bands) that pydantic skips when an
    item of the list is itself invalid: checked on the raw items so every mistake shows."""
    if not isinstance(data, dict):
        return []

    def items(name: str) -> list[dict[str, Any]] | None:
        value = data.get(name)
        masked = name not in reported and any(f.startswith(name + "[") for f in reported)
        if not masked or not isinstance(value, list):
            return None
        return [item for item in value if isinstance(item, dict)]

    def numbers(values: list[Any]) -> list[float]:
        return [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]

    out: list[dict[str, str]] = []
    components = items("components")
    if components is not None:
        keys = [c["key"] for c in components if isinstance(c.get("key"), str)]
        # Not the weights: an invalid weight is reported already, and its sum means nothing.
        problem = _components_problem(keys, [])
        if problem:
            out.append({"field": "components", "message": problem})
    bands = items("risk_bands")
    if bands is not None:
        mins = numbers([b.get("min") for b in bands])
        levels = [b["level"] for b in bands if isinstance(b.get("level"), str)]
        problem = _bands_problem(mins, levels)
        if problem:
            out.append({"field": "risk_bands", "message": problem})
    return out


def parse_scorecard(data: dict[str, Any]) -> Scorecard:
    """A validated scorecard; InvalidInput listing every error with its path otherwise."""
    try:
        return Scorecard.model_validate(data)
    except ValidationError as exc:
        errors = [
            {
                "field": _path(tuple(err["loc"])),
                "message": str(err["msg"]).removeprefix("Value error, "),
            }
            for err in exc.errors()
        ]
        errors += _masked_list_errors(data, {e["field"] for e in errors})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise InvalidInput(f"invalid scorecard: {detail}", errors=errors) from None


def parse_toml(text: str) -> Scorecard:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"the scorecard is not valid TOML: {exc}") from None
    return parse_scorecard(data)


def default_scorecard() -> Scorecard:
    """The shipped scorecard for the wedding-supplier profile."""
    return parse_toml(files("tenure.health").joinpath("scorecard_wedding.toml").read_text())
