"""Request metrics: the kept series count exactly what ``labels()`` would."""

from __future__ import annotations

import pytest

from searchgate.api import metrics


def _count(method: str, route: str, status: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "searchgate_requests_total", {"method": method, "route": route, "status": status}
    )
    return value or 0.0


def test_each_method_route_and_status_counts_on_its_own() -> None:
    route = "/test/metrics/own"
    metrics.observe("GET", route, 200, 0.001)
    metrics.observe("GET", route, 200, 0.002)
    metrics.observe("GET", route, 404, 0.003)
    metrics.observe("POST", route, 200, 0.2)
    assert _count("GET", route, "200") == 2
    assert _count("GET", route, "404") == 1
    assert _count("POST", route, "200") == 1
    total = metrics.REGISTRY.get_sample_value("searchgate_request_seconds_count", {"route": route})
    assert total == 4
    slow = metrics.REGISTRY.get_sample_value(
        "searchgate_request_seconds_bucket", {"route": route, "le": "0.1"}
    )
    assert slow == 3


def test_methods_past_the_bound_are_still_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "_SERIES_MAX", len(metrics._series))
    route = "/test/metrics/bound"
    for _ in range(3):
        metrics.observe("PURGE", route, 405, 0.001)
    assert _count("PURGE", route, "405") == 3
    assert ("PURGE", route, 405) not in metrics._series
