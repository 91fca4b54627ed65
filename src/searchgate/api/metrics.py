"""Prometheus metrics of the data plane."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "searchgate_requests",
    "HTTP requests by route and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "searchgate_request_seconds",
    "HTTP request latency by route",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
    registry=REGISTRY,
)
INDEX_LAG = Gauge(
    "searchgate_index_lag_changes",
    "changes committed but not yet searchable here",
    registry=REGISTRY,
)
RECORDS = Gauge(
    "searchgate_collection_records", "records per collection", ["collection"], registry=REGISTRY
)
SEARCHES = Gauge(
    "searchgate_searches",
    "searches and refinements in the search pool, running or waiting",
    ["state"],
    registry=REGISTRY,
)


# The labelled series of each (method, route, status), kept: looking them up through
# ``labels()`` (validation, a lock, a dict) was a tenth of a SAYT keystroke's
# middleware. Bounded, because the method is whatever a client sent.
_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
_SERIES_MAX = 2048


def observe(method: str, route: str, status: int, seconds: float) -> None:
    key = (method, route, status)
    series = _series.get(key)
    if series is None:
        series = (REQUESTS.labels(method, route, str(status)), LATENCY.labels(route))
        if len(_series) < _SERIES_MAX:
            _series[key] = series
    series[0].inc()
    series[1].observe(seconds)


def render() -> bytes:
    return bytes(generate_latest(REGISTRY))
