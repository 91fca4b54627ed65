"""The analytics trend chart's geometry: bars scale to the busiest day, the part that
found nothing is in proportion, and days without searches have no share point."""

from __future__ import annotations

from datetime import date, timedelta

from searchgate.console.analytics_chart import HEIGHT, WIDTH, build_trend
from searchgate.search.analytics import DayFigures

DAY = date(2026, 3, 1)


def test_bars_scale_to_the_busiest_day_and_split_what_found_nothing() -> None:
    series = [
        DayFigures(DAY, 400, 100),
        DayFigures(DAY + timedelta(days=1), 0, 0),
        DayFigures(DAY + timedelta(days=2), 200, 200),
        DayFigures(DAY + timedelta(days=3), 1, 0),
    ]
    chart = build_trend(series)
    busiest, empty, all_zero, single = chart.bars
    assert (chart.peak, chart.searches, chart.zero_results) == (400, 601, 300)
    assert busiest.found_y == 0 and busiest.found_height + busiest.zero_height == HEIGHT
    assert busiest.zero_height == HEIGHT / 4 and busiest.zero_y == HEIGHT * 3 / 4
    assert empty.found_height == empty.zero_height == 0
    assert all_zero.found_height == 0 and all_zero.zero_height == HEIGHT / 2
    # One search in a busy period still shows.
    assert single.found_height == 1.0
    assert [b.x for b in chart.bars] == [0, WIDTH / 4, WIDTH / 2, WIDTH * 3 / 4]
    points = [tuple(map(float, p.split(","))) for p in chart.share_points.split()]
    assert [y for _x, y in points] == [HEIGHT * 0.75, 0.0, float(HEIGHT)]


def test_a_period_without_searches_draws_empty_bars() -> None:
    chart = build_trend([DayFigures(DAY + timedelta(days=i), 0, 0) for i in range(7)])
    assert chart.peak == 0 and chart.share_points == ""
    assert all(b.found_height == b.zero_height == 0 for b in chart.bars)
