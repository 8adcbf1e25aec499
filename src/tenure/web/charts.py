"""Server-rendered SVG charts: no JavaScript, nothing to download, readable by tests."""

from __future__ import annotations

from dataclasses import dataclass


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
