"""Searches per day, split into those that found something and those that found
nothing, with the zero-result share as a line: drawn as an SVG (as the key usage chart,
console/key_chart.py) that scales to its box, and given as a table for screen readers
and exact figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from searchgate.search.analytics import DayFigures

# Okabe-Ito hues, as the key usage chart.
FOUND_COLOUR = "#0072b2"
ZERO_COLOUR = "#e69f00"
SHARE_COLOUR = "#cc79a7"
WIDTH, HEIGHT = 560, 120


@dataclass(frozen=True)
class TrendBar:
    day: date
    x: float
    searches: int
    zero_results: int
    zero_share: float
    # Tops (y) and heights of the part that found something and the part that did not.
    found_y: float
    found_height: float
    zero_y: float
    zero_height: float


@dataclass(frozen=True)
class TrendChart:
    bars: tuple[TrendBar, ...]
    peak: int
    searches: int
    zero_results: int
    bar_width: float
    # The zero-result share of each day with searches as an SVG polyline (0% at the
    # bottom, 100% at the top).
    share_points: str
    width: int = WIDTH
    height: int = HEIGHT
    found_colour: str = FOUND_COLOUR
    zero_colour: str = ZERO_COLOUR
    share_colour: str = SHARE_COLOUR


def build_trend(series: tuple[DayFigures, ...] | list[DayFigures]) -> TrendChart:
    slot = WIDTH / max(1, len(series))
    bar_width = round(max(1.0, slot * 0.75), 2)
    peak = max((d.searches for d in series), default=0)
    bars = []
    points = []
    for i, d in enumerate(series):
        x = round(i * slot, 2)
        total = round(d.searches / peak * HEIGHT, 2) if peak else 0.0
        # A day with a single search still shows as a sliver.
        total = max(1.0, total) if d.searches else 0.0
        zero = round(total * d.zero_results / d.searches, 2) if d.searches else 0.0
        zero = max(1.0, zero) if d.zero_results else 0.0
        found = round(total - zero, 2)
        bars.append(
            TrendBar(
                day=d.day,
                x=x,
                searches=d.searches,
                zero_results=d.zero_results,
                zero_share=d.zero_share,
                found_y=round(HEIGHT - total, 2),
                found_height=found,
                zero_y=round(HEIGHT - zero, 2),
                zero_height=zero,
            )
        )
        # A day without searches has no share: the line skips it.
        if d.searches:
            y = round(HEIGHT * (1 - d.zero_share), 2)
            points.append(f"{round(x + bar_width / 2, 2)},{y}")
    return TrendChart(
        bars=tuple(bars),
        peak=peak,
        searches=sum(d.searches for d in series),
        zero_results=sum(d.zero_results for d in series),
        bar_width=bar_width,
        share_points=" ".join(points),
    )
