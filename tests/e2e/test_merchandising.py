"""Merchandising through a real server in GroupBy's request shapes: a team's file imported
and published by ``searchgate merch`` (another process) reaches the running server, and
biasing profiles, customUrlParams triggers, redirects, pins, hidden records (in SAYT too)
and synonyms answer as documented."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import ServerProcess, create_key, run_cli

pytestmark = pytest.mark.e2e

SETTINGS = {
    "idField": "id",
    "titleField": "title",
    "searchable": [{"name": "title", "weight": 2}],
    "navigations": [{"name": "brand"}],
}
RECORDS = [
    {"id": f"tv{i}", "title": f"{b} television {i}", "brand": b}
    for i, b in enumerate(["Sony", "Acme", "Lumo", "Sony", "Acme", "Lumo"])
] + [{"id": "stand", "title": "Oak television stand", "brand": "Woody"}]

MERCHANDISING: dict[str, Any] = {
    "format": "searchgate.merchandising/1",
    "synonyms": [{"name": "tv", "kind": "one-way", "terms": ["telly"], "to": ["television"]}],
    "biasingProfiles": [
        {
            "name": "acme week",
            "biases": [{"name": "brand", "content": "Acme", "strength": "Absolute_Increase"}],
        }
    ],
    "rules": [
        {
            "name": "stand first",
            "triggers": [{"type": "queryEquals", "value": "television"}],
            "pins": [{"id": "stand", "position": 1}],
            "hide": ["tv2"],
        },
        {
            "name": "outlet",
            "triggers": [{"type": "customUrlParam", "key": "store", "value": "outlet"}],
            "filter": "brand:Lumo",
        },
        {
            "name": "help",
            "triggers": [{"type": "queryEquals", "value": "returns"}],
            "redirect": "https://shop.example/help/returns",
        },
    ],
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "data")
    srv.start()
    srv.wait_ready()
    yield srv
    srv.stop()


def post(srv: ServerProcess, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{srv.url}/api/v1/search",
        json={"clientKey": key, "collection": "products", **body},
        timeout=10,
    )


def ids(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [rec["_id"] for rec in r.json()["records"]]


def test_a_published_file_changes_what_shoppers_get(server: ServerProcess, tmp_path: Path) -> None:
    key = create_key(server.data_dir, None)
    auth = {"Authorization": f"Bearer {key}"}
    r = httpx.put(f"{server.url}/api/v1/collections/products", json=SETTINGS, headers=auth)
    assert r.status_code in (200, 201), r.text
    r = httpx.post(
        f"{server.url}/api/v1/collections/products/records?wait=true",
        json=RECORDS,
        headers=auth,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    before = ids(post(server, key, {"query": "television", "pageSize": 20}))
    assert before[0] != "stand" and "tv2" in before
    # Unknown profile before anything is published: a 400 that names it.
    r = post(server, key, {"query": "television", "biasingProfile": "acme week"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "biasingProfile"

    path = tmp_path / "merchandising.json"
    path.write_text(json.dumps(MERCHANDISING))
    run_cli(server.data_dir, None, "merch", "import", "--area", "Production", str(path))
    # Imported is a draft: shoppers see nothing of it yet.
    assert ids(post(server, key, {"query": "television", "pageSize": 20})) == before
    run_cli(server.data_dir, None, "merch", "publish", "--area", "Production", "--note", "e2e")

    deadline = time.monotonic() + 10
    while ids(post(server, key, {"query": "television", "pageSize": 20}))[0] != "stand":
        assert time.monotonic() < deadline, "the published version did not reach the server"
        time.sleep(0.1)

    pinned = ids(post(server, key, {"query": "television", "pageSize": 20}))
    assert pinned[0] == "stand" and "tv2" not in pinned and len(pinned) == 6
    sayt = httpx.get(
        f"{server.url}/api/v1/sayt/search",
        params={"query": "television", "collection": "products", "productItems": 10},
        headers=auth,
        timeout=10,
    )
    assert sayt.status_code == 200, sayt.text
    previews = [p["_id"] for p in sayt.json()["result"]["products"]]
    assert "tv2" not in previews and len(previews) == 6

    # "telly" finds the televisions through the synonym, without the pinning rule.
    profiled = post(server, key, {"query": "telly", "biasingProfile": "acme week"})
    assert profiled.json()["biasingProfile"] == "acme week"
    assert [r["allMeta"]["brand"] for r in profiled.json()["records"][:2]] == ["Acme", "Acme"]
    unknown = post(server, key, {"query": "television", "biasingProfile": "sony week"})
    assert unknown.status_code == 400
    assert "'sony week'" in unknown.json()["error"]["message"]

    outlet = post(
        server,
        key,
        {"query": "television", "customUrlParams": [{"key": "store", "value": "outlet"}]},
    )
    assert {r["allMeta"]["brand"] for r in outlet.json()["records"]} == {"Lumo"}

    redirect = post(server, key, {"query": "Returns"})
    assert redirect.json()["redirect"] == "https://shop.example/help/returns"
    assert redirect.json()["records"] == []

    widened = post(server, key, {"query": "telly", "disableAutocorrection": True})
    assert widened.json()["totalRecordCount"] == 7
    assert widened.json()["rewrites"] == ["synonym: telly => television"]
