"""Operations endpoints: /metrics, /openapi.json, health, and the structured access log."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from searchgate.demo import demo_settings, generate
from searchgate.logs import JsonFormatter
from tests.conftest import load
from tests.functional.test_auth import app_routes, is_data_plane

Labels = tuple[tuple[str, str], ...]


def scrape(client: TestClient) -> dict[str, dict[Labels, float]]:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def sample(metrics: dict[str, dict[Labels, float]], name: str, **labels: str) -> float:
    return metrics.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


def test_metrics_count_requests_by_route_and_status_with_latency(
    client: TestClient, auth: dict[str, str]
) -> None:
    load(client, auth, "default", list(generate(120)), demo_settings())
    before = scrape(client)
    for _ in range(3):
        assert client.post("/api/v1/search", json={"query": "tv"}, headers=auth).status_code == 200
    assert client.post("/api/v1/search", json={"query": "tv"}).status_code == 401
    r = client.get("/api/v1/sayt/search", params={"query": "sa"}, headers=auth)
    assert r.status_code == 200
    assert client.get("/api/v1/no/such/thing-4711").status_code == 404
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    search = {"route": "/api/v1/search"}
    assert delta("searchgate_requests_total", method="POST", status="200", **search) == 3
    assert delta("searchgate_requests_total", method="POST", status="401", **search) == 1
    sayt = {"method": "GET", "route": "/api/v1/sayt/search", "status": "200"}
    assert delta("searchgate_requests_total", **sayt) == 1
    # Unknown paths share one label: a scanner cannot blow up the number of series.
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert delta("searchgate_requests_total", **unmatched) == 1
    assert not any("4711" in v for labels in after["searchgate_requests_total"] for _, v in labels)
    # Latency: a histogram per route, with cumulative buckets.
    assert delta("searchgate_request_seconds_count", **search) == 4
    assert delta("searchgate_request_seconds_sum", **search) > 0
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for labels, value in after["searchgate_request_seconds_bucket"].items()
        if dict(labels)["route"] == "/api/v1/search"
    )
    assert buckets[-1] == (
        float("inf"),
        sample(after, "searchgate_request_seconds_count", **search),
    )
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    assert len(buckets) >= 10
    # Index lag and records per collection.
    assert sample(after, "searchgate_index_lag_changes") == 0
    assert sample(after, "searchgate_collection_records", collection="default") == 120


def test_records_per_collection_follow_uploads_and_deletions(
    client: TestClient, auth: dict[str, str]
) -> None:
    load(client, auth, "shop-a", list(generate(30)), demo_settings())
    load(client, auth, "shop-b", list(generate(7)), demo_settings())
    metrics = scrape(client)
    assert sample(metrics, "searchgate_collection_records", collection="shop-a") == 30
    assert sample(metrics, "searchgate_collection_records", collection="shop-b") == 7
    assert client.delete("/api/v1/collections/shop-a", headers=auth).status_code == 200
    records = scrape(client)["searchgate_collection_records"]
    assert (("collection", "shop-a"),) not in records
    assert records[(("collection", "shop-b"),)] == 7


def test_openapi_lists_every_data_plane_route(client: TestClient) -> None:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.") and spec["info"]["title"]
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    ops = ("/healthz", "/readyz", "/metrics")
    served = {(m, p) for m, p in app_routes(client.app) if is_data_plane(p) or p in ops}
    assert len(served) >= 15
    assert served <= documented, served - documented
    expected = {
        ("POST", "/api/v1/search"),
        ("POST", "/api/v1/search/refinements"),
        ("GET", "/api/v1/sayt/search"),
        ("GET", "/api/v1/collections"),
        ("GET", "/api/v1/collections/{name}"),
        ("PUT", "/api/v1/collections/{name}"),
        ("DELETE", "/api/v1/collections/{name}"),
        ("POST", "/api/v1/collections/{name}/records"),
        ("GET", "/api/v1/collections/{name}/records/{record_id}"),
        ("DELETE", "/api/v1/collections/{name}/records/{record_id}"),
        ("POST", "/api/v1/collections/{name}/records/delete"),
        ("POST", "/data/v1/upload/stream"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
    }
    assert expected <= documented, expected - documented
    sayt = spec["paths"]["/api/v1/sayt/search"]["get"]
    params = {p["name"] for p in sayt["parameters"]}
    assert {"query", "searchItems", "productItems", "refinements", "callback"} <= params
    assert "requestBody" in spec["paths"]["/api/v1/search"]["post"]


def test_health_and_readiness(client: TestClient, auth: dict[str, str]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    load(client, auth, "default", list(generate(10)), demo_settings())
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["indexLag"] == 0


def _lines(caplog: pytest.LogCaptureFixture) -> tuple[list[dict[str, Any]], str]:
    fmt = JsonFormatter()
    text = "\n".join(fmt.format(r) for r in caplog.records)
    return [orjson.loads(line) for line in text.splitlines()], text


def test_log_lines_are_json_with_the_request_id_of_the_response(
    client: TestClient, auth: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="searchgate")
    first = client.get("/api/v1/collections", headers=auth)
    second = client.post("/api/v1/search", json={"query": "x", "collection": "nosuch"})
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert ids[0] != ids[1]
    assert second.json()["error"]["requestId"] == ids[1]
    lines, _ = _lines(caplog)
    by_id = {line.get("request_id"): line for line in lines}
    line = by_id[ids[0]]
    assert line["route"] == "/api/v1/collections" and line["method"] == "GET"
    assert line["status"] == 200 and line["ms"] >= 0 and line["level"] == "info"
    assert line["key_id"].startswith("key_") and line["logger"] == "searchgate.access"
    assert line["ts"].endswith("+00:00")
    assert by_id[ids[1]]["status"] == 401 and "key_id" not in by_id[ids[1]]
    # An error answer's access line carries its code; a success's has none.
    assert by_id[ids[1]]["error"] == "missing_key" and "error" not in line


def test_logs_never_contain_a_key(
    client: TestClient, auth: dict[str, str], key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client.post("/api/v1/search", json={"query": "x", "clientKey": key})
    client.post("/api/v1/search", json={"query": "x"}, headers={"Authorization": f"Basic {key}"})
    client.post("/api/v1/search", json={"query": "x"}, headers={"Authorization": f"Token {key}"})
    client.get("/api/v1/sayt/search", params={"query": "x", "clientKey": key})
    client.post("/api/v1/search", content=b'{"clientKey": "' + key.encode() + b'", bad json')
    client.post("/api/v1/search", json={"query": "x"}, headers={"X-Client-Key": key + "x"})
    lines, text = _lines(caplog)
    assert len([line for line in lines if line.get("logger") == "searchgate.access"]) >= 6
    assert key not in text and key[12:] not in text
    # Even a handler that logs a key by mistake writes it masked.
    logging.getLogger("searchgate.test").warning("oops %s", key)
    _, text = _lines(caplog)
    assert key not in text and key[:8] + "…[redacted]" in text
