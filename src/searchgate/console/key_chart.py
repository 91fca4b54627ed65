"""A key's requests per day over the last days, stacked by system: drawn as an SVG by
Key Management, and given as a table for screen readers and exact figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from searchgate.keys.usage import DayCount

CHART_DAYS = 14

# Colour-blind-friendly hues (Okabe-Ito) for the busiest systems, grey for the rest.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9")
OTHERS = "other systems"
OTHERS_COLOUR = "#8c96a3"
BAR_WIDTH, BAR_GAP, CHART_HEIGHT = 14, 4, 56


@dataclass(frozen=True)
class Segment:
    system: str
    colour: str
    count: int
    y: float
    height: float


@dataclass(frozen=True)
class Bar:
    day: date
    x: int
    total: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Chart:
    """Requests per day over the last CHART_DAYS days, stacked by system: drawn as an
    SVG, and given as a table for screen readers and for exact figures."""

    bars: tuple[Bar, ...]
    legend: tuple[tuple[str, str, int], ...]  # (system, colour, requests)
    total: int
    peak: int
    width: int = CHART_DAYS * (BAR_WIDTH + BAR_GAP)
    height: int = CHART_HEIGHT
    bar_width: int = BAR_WIDTH

    def count(self, bar: Bar, system: str) -> int:
        return sum(s.count for s in bar.segments if s.system == system)


def build_chart(counts: list[DayCount], today: date, days: int = CHART_DAYS) -> Chart:
    per_system: dict[str, int] = {}
    for c in counts:
        per_system[c.system] = per_system.get(c.system, 0) + c.requests
    ranked = sorted(per_system, key=lambda s: (-per_system[s], s))
    # With more systems than colours, the busiest keep a colour and the rest share grey.
    named = ranked if len(ranked) <= len(PALETTE) else ranked[: len(PALETTE) - 1]
    colours = {s: PALETTE[i] for i, s in enumerate(named)}
    legend = [(s, colours[s], per_system[s]) for s in named]
    if len(named) < len(ranked):
        legend.append((OTHERS, OTHERS_COLOUR, sum(per_system[s] for s in ranked[len(named) :])))
    by_day: dict[date, dict[str, int]] = {}
    for c in counts:
        label = c.system if c.system in colours else OTHERS
        of_day = by_day.setdefault(c.day, {})
        of_day[label] = of_day.get(label, 0) + c.requests
    first = today - timedelta(days=days - 1)
    totals = [sum(by_day.get(first + timedelta(days=i), {}).values()) for i in range(days)]
    peak = max(totals, default=0)
    bars = []
    for i in range(days):
        day = first + timedelta(days=i)
        bottom = float(CHART_HEIGHT)
        segments = []
        for system, colour, _total in legend:
            n = by_day.get(day, {}).get(system, 0)
            if not n:
                continue
            # A day with a single request still shows as a sliver.
            height = max(1.0, round(n / peak * CHART_HEIGHT, 2))
            bottom -= height
            segments.append(Segment(system, colour, n, round(bottom, 2), height))
        bars.append(Bar(day, i * (BAR_WIDTH + BAR_GAP), totals[i], tuple(segments)))
    return Chart(tuple(bars), tuple(legend), sum(totals), peak)
