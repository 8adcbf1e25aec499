"""The health score maths: arrays in, arrays out. One code path for 1 or 100,000 accounts.

signal value --transform--> signal score 0-100
signal scores --weighted mean (signals with data only)--> component score
component scores --weighted mean (components with data only)--> health score

A component whose signals all lack data is left out and its weight shared by the others;
the score lists it as missing. Each signal's *impact* is the points it costs the total
score: (100 - signal score) x its share of the component x the component's share of the
score. Impacts sum to 100 - score, and component *contributions* (score x share) sum to
the score, so any change of score is exactly a sum of component changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tenure.health.scorecard import (
    BandsTransform,
    LinearTransform,
    RatioTransform,
    Scorecard,
    SignalRule,
)
from tenure.health.signals import Floats, SignalFrame

FLAT = "@flat"  # suffix of the non-seasonal variant of a value or expectation
TOP_FACTORS = 3
MIN_IMPACT = 2.0  # points: smaller losses are not worth a CSM's attention


@dataclass
class Scores:
    """The result for the frame's accounts (row i = frame.account_ids[i])."""

    score: Floats  # NaN when no component had data
    level: npt.NDArray[np.int64]  # index into card.bands_ascending(); -1 when no score
    components: dict[str, Floats]  # component score, NaN when missing
    contributions: dict[str, Floats]  # points of the score from each component (0 if missing)
    signal_scores: dict[str, Floats]
    impact: dict[str, Floats]  # points lost to each signal
    factors: npt.NDArray[np.int64]  # (n, TOP_FACTORS) indexes into `signal_names`, -1 none
    signal_names: list[str]


def _bands(rule: BandsTransform, values: Floats) -> Floats:
    edges = np.array([b.upto for b in rule.bands])
    scores = np.array([b.score for b in rule.bands] + [rule.above])
    index = np.searchsorted(edges, values, side="left")
    out = scores[np.minimum(index, len(scores) - 1)]
    return np.where(np.isnan(values), np.nan, out)


def _linear(zero: float, full: float, values: Floats) -> Floats:
    return np.clip((values - zero) / (full - zero), 0.0, 1.0) * 100.0


def transform(rule: SignalRule, values: Floats, expected: Floats | None) -> Floats:
    """Signal values -> scores 0-100 (NaN stays NaN)."""
    t = rule.transform
    if isinstance(t, BandsTransform):
        return _bands(t, values)
    if isinstance(t, LinearTransform):
        return _linear(t.zero, t.full, values)
    assert isinstance(t, RatioTransform)
    if expected is None:
        return np.full(values.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(expected > 0, values / expected, np.where(values >= 0, t.full, np.nan))
    ratio = np.where(np.isnan(expected), np.nan, ratio)
    return _linear(t.zero, t.full, ratio)


def _value(frame: SignalFrame, name: str, seasonal: bool) -> Floats:
    if not seasonal and name + FLAT in frame.values:
        return frame.values[name + FLAT]
    return frame.get(name)


def _expected(frame: SignalFrame, baseline: str | None, seasonal: bool) -> Floats | None:
    if baseline is None:
        return None
    key = baseline if seasonal else baseline + FLAT
    return frame.expected.get(key)


def _weighted_mean(
    parts: list[tuple[Floats, float]], n: int
) -> tuple[Floats, Floats, list[Floats]]:
    """(mean, total weight present, each part's share) ignoring NaN parts per row."""
    total = np.zeros(n)
    acc = np.zeros(n)
    for values, weight in parts:
        present = ~np.isnan(values)
        total += np.where(present, weight, 0.0)
        acc += np.where(present, values * weight, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(total > 0, acc / total, np.nan)
        shares = [
            np.where((total > 0) & ~np.isnan(values), weight / total, 0.0)
            for values, weight in parts
        ]
    return mean, total, shares


def score_frame(card: Scorecard, frame: SignalFrame) -> Scores:
    """Score every account of the frame with one scorecard."""
    n = frame.n
    from tenure.health.signals import SIGNALS

    signal_scores: dict[str, Floats] = {}
    components: dict[str, Floats] = {}
    signal_share: dict[str, Floats] = {}
    for component in card.components:
        parts: list[tuple[Floats, float]] = []
        names: list[str] = []
        for rule in component.signals:
            spec = SIGNALS[rule.signal]
            values = _value(frame, rule.signal, card.seasonal)
            scored = transform(rule, values, _expected(frame, spec.baseline, card.seasonal))
            signal_scores[rule.signal] = scored
            parts.append((scored, rule.weight))
            names.append(rule.signal)
        mean, _, shares = _weighted_mean(parts, n)
        components[component.key] = mean
        for name, share in zip(names, shares, strict=True):
            signal_share[f"{component.key}/{name}"] = share

    comp_parts = [(components[c.key], c.weight) for c in card.components]
    score, _, comp_shares = _weighted_mean(comp_parts, n)
    contributions: dict[str, Floats] = {
        c.key: np.where(share > 0, components[c.key] * share, 0.0)
        for c, share in zip(card.components, comp_shares, strict=True)
    }
    impact: dict[str, Floats] = {}
    for component, comp_share in zip(card.components, comp_shares, strict=True):
        for rule in component.signals:
            share = signal_share[f"{component.key}/{rule.signal}"] * comp_share
            lost = np.where(share > 0, (100.0 - signal_scores[rule.signal]) * share, 0.0)
            impact[rule.signal] = impact.get(rule.signal, np.zeros(n)) + np.nan_to_num(lost)

    names = list(impact)
    if names:
        matrix = np.column_stack([impact[name] for name in names])
        order = np.argsort(-matrix, axis=1, kind="stable")[:, :TOP_FACTORS]
        top = np.take_along_axis(matrix, order, axis=1)
        factors = np.where(top >= MIN_IMPACT, order, -1).astype(np.int64)
    else:
        factors = np.full((n, TOP_FACTORS), -1, dtype=np.int64)

    mins = np.array([b.min for b in card.bands_ascending()])
    level = np.where(
        np.isnan(score), -1, np.searchsorted(mins, np.nan_to_num(score), side="right") - 1
    ).astype(np.int64)
    return Scores(
        score=score,
        level=level,
        components=components,
        contributions=contributions,
        signal_scores=signal_scores,
        impact=impact,
        factors=factors,
        signal_names=names,
    )


def rollup(
    child_scores: Floats,
    child_parent: npt.NDArray[np.intp],
    n_parents: int,
    weights: Floats | None,
) -> Floats:
    """Each parent's score from its children's (mean, or weighted e.g. by MRR); NaN when a
    parent has no scored child. `child_parent[i]` is the parent row of child i."""
    present = ~np.isnan(child_scores)
    w = np.ones_like(child_scores) if weights is None else np.maximum(weights, 0.0)
    # A child with no MRR still counts a little under MRR weighting.
    w = np.where(present, np.where(w > 0, w, 1e-6), 0.0)
    totals = np.bincount(child_parent, weights=w, minlength=n_parents)
    sums = np.bincount(
        child_parent, weights=np.where(present, child_scores, 0.0) * w, minlength=n_parents
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(totals > 0, sums / totals, np.nan)
