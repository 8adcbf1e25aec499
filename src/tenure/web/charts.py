"""Server-rendered SVG charts: no JavaScript, nothing to download, readable by tests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # axis label (may be empty to thin out the axis)
    title: str  # tooltip and accessible text
    value: int


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    bars: list[Bar]
    max_value: int
    description: str


def bar_chart(
    points: list[tuple[str, int, str]], *, description: str, width: int = 640, height: int = 150
) -> BarChart:
    """Bars for (axis label, value, tooltip) points, scaled to the largest value."""
    top = max((v for _, v, _ in points), default=0) or 1
    plot = height - 20  # room for the axis labels
    step = width / max(len(points), 1)
    every = 1 if len(points) <= 12 else 2
    bars = [
        Bar(
            x=round(i * step + step * 0.12, 1),
            y=round(plot - plot * value / top, 1),
            width=round(step * 0.76, 1),
            height=round(plot * value / top, 1),
            label=label if i % every == 0 else "",
            title=title,
            value=value,
        )
        for i, (label, value, title) in enumerate(points)
    ]
    return BarChart(width=width, height=height, bars=bars, max_value=top, description=description)


# Health: a semicircle gauge, a score trend line and horizontal share bars.


@dataclass(frozen=True)
class BandStyle:
    """How a risk level looks: its label, colour (#rrggbb) and lowest score."""

    level: str
    label: str
    colour: str
    min: float


@dataclass(frozen=True)
class Arc:
    d: str  # SVG path data
    colour: str
    title: str


@dataclass(frozen=True)
class Gauge:
    width: int
    height: int
    track: str
    arcs: list[Arc]
    marker: tuple[float, float] | None  # where the score sits on the dial
    text: str
    caption: str
    colour: str
    description: str


_GAUGE_CX, _GAUGE_CY, _GAUGE_R = 100.0, 100.0, 80.0


def _on_arc(score: float, radius: float = _GAUGE_R) -> tuple[float, float]:
    """The point of a 0-100 score on the upper semicircle (0 on the left, 100 on the right)."""
    angle = math.pi * (1 - max(0.0, min(100.0, score)) / 100)
    return (
        round(_GAUGE_CX + radius * math.cos(angle), 2),
        round(_GAUGE_CY - radius * math.sin(angle), 2),
    )


def _arc_path(start: float, end: float) -> str:
    x0, y0 = _on_arc(start)
    x1, y1 = _on_arc(end)
    # Clockwise on screen, never more than half a turn: the large-arc flag stays 0.
    return f"M {x0} {y0} A {_GAUGE_R} {_GAUGE_R} 0 0 1 {x1} {y1}"


def band_of(score: float, bands: Sequence[BandStyle]) -> BandStyle | None:
    """The band a score falls in (bands in any order)."""
    chosen = None
    for band in sorted(bands, key=lambda b: b.min):
        if score >= band.min:
            chosen = band
    return chosen


def gauge(score: float | None, bands: Sequence[BandStyle], *, caption: str) -> Gauge:
    """A half-circle dial: the risk bands as coloured arcs and a marker at the score."""
    ordered = sorted(bands, key=lambda b: b.min)
    arcs = []
    for i, band in enumerate(ordered):
        upper = ordered[i + 1].min if i + 1 < len(ordered) else 100.0
        if upper <= band.min:
            continue
        title = f"{band.label}: {band.min:g} to {upper:g}"
        arcs.append(Arc(_arc_path(max(band.min, 0.0), min(upper, 100.0)), band.colour, title))
    if score is None:
        return Gauge(
            width=200,
            height=124,
            track=_arc_path(0, 100),
            arcs=arcs,
            marker=None,
            text="—",
            caption=caption,
            colour="#5f6b7a",
            description=f"Health gauge: no score, {caption}",
        )
    chosen = band_of(score, ordered)
    return Gauge(
        width=200,
        height=124,
        track=_arc_path(0, 100),
        arcs=arcs,
        marker=_on_arc(score),
        text=f"{score:.0f}",
        caption=caption,
        colour=chosen.colour if chosen else "#5f6b7a",
        description=f"Health score {score:g} out of 100, {caption}",
    )


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Guide:
    y: float
    colour: str
    label: str


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    left: int
    plot_height: int
    lines: list[str]  # polyline "points" attributes, one per unbroken run
    dots: list[Dot]
    guides: list[Guide]
    ticks: list[tuple[float, str, str]]  # x, date label, text-anchor
    description: str


def score_trend(
    points: Sequence[tuple[date, float | None, str]],
    *,
    since: date,
    until: date,
    bands: Sequence[BandStyle],
    description: str,
    width: int = 1000,
    height: int = 200,
) -> LineChart:
    """Daily scores (day, score or None, tooltip) on a 0-100 scale over [since, until]; a
    missing score breaks the line."""
    left, bottom = 28, 20
    plot_w, plot_h = width - left - 6, height - bottom - 6
    span = max((until - since).days, 1)

    def x_of(day: date) -> float:
        return round(left + plot_w * (day - since).days / span, 1)

    def y_of(score: float) -> float:
        return round(6 + plot_h * (1 - max(0.0, min(100.0, score)) / 100), 1)

    lines: list[str] = []
    run: list[str] = []
    dots: list[Dot] = []
    for day, score, title in sorted(points, key=lambda p: p[0]):
        if score is None:
            if run:
                lines.append(" ".join(run))
            run = []
            continue
        x, y = x_of(day), y_of(score)
        run.append(f"{x},{y}")
        dots.append(Dot(x, y, title))
    if run:
        lines.append(" ".join(run))
    guides = [Guide(y_of(b.min), b.colour, b.label) for b in bands if 0 < b.min < 100]
    ticks = []
    step = max(span // 3, 1)
    for k in range(0, span + 1, step):
        day = since + timedelta(days=k)
        anchor = "start" if k == 0 else "end" if k + step > span else "middle"
        ticks.append((x_of(day), f"{day:%d %b}", anchor))
    return LineChart(
        width=width,
        height=height,
        left=left,
        plot_height=plot_h + 6,
        lines=[line for line in lines if line],
        dots=dots,
        guides=guides,
        ticks=ticks,
        description=description,
    )
