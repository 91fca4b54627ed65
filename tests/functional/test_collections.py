"""Collections: settings, inference, listing with counts, deletion and naming limits."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from searchgate.catalog.service import parse_settings
from searchgate.config import Settings
from searchgate.demo import demo_settings, generate
from searchgate.keys.scopes import ALL_SCOPES, Scope
from searchgate.permissions import Actor
from searchgate.runtime import Runtime
from searchgate.webapp import create_app
from tests.conftest import load, make_user
from tests.keyhelp import SYSTEM

PHONES = [
    {"id": f"p{i}", "title": f"Phone {i}", "brand": ["Acme", "Bolt", "Core"][i % 3], "price": i}
    for i in range(30)
]
PLAIN = {"idField": "id", "titleField": "title", "searchable": [{"name": "title"}]}


def search(client: TestClient, auth: dict[str, str], **request: Any) -> dict[str, Any]:
    r = client.post("/api/v1/search", json=request, headers=auth)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def nav_counts(body: dict[str, Any], name: str) -> dict[str, int] | None:
    for nav in body["availableNavigation"]:
        if nav["name"] == name:
            return {ref["value"]: ref["count"] for ref in nav["refinements"]}
    return None


def test_put_creates_then_replaces_settings_and_rebuilds_the_index(
    client: TestClient, auth: dict[str, str]
) -> None:
    r = client.put("/api/v1/collections/shop", json=PLAIN, headers=auth)
    assert r.status_code == 201, r.text
    assert r.json()["settings"]["navigations"] == []
    load(client, auth, "shop", PHONES)
    before = search(client, auth, collection="shop", query="phone")
    assert before["totalRecordCount"] == 30
    assert nav_counts(before, "brand") is None

    with_brand = {**PLAIN, "navigations": [{"name": "brand", "displayName": "Brand"}]}
    r = client.put("/api/v1/collections/shop?wait=true", json=with_brand, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["searchable"] is True
    assert [n["name"] for n in r.json()["settings"]["navigations"]] == ["brand"]
    after = search(client, auth, collection="shop", query="phone")
    assert after["totalRecordCount"] == 30
    assert nav_counts(after, "brand") == {"Acme": 10, "Bolt": 10, "Core": 10}
    # A settings object wrapped in {"settings": ...} is accepted too.
    r = client.put("/api/v1/collections/shop", json={"settings": PLAIN}, headers=auth)
    assert r.status_code == 200
    assert r.json()["settings"]["navigations"] == []


def test_invalid_settings_name_the_field(client: TestClient, auth: dict[str, str]) -> None:
    cases = [
        ({"navigations": [{"name": "brand", "type": "Bogus"}]}, "navigations.0.type"),
        ({"searchable": [{"name": "title", "weight": -1}]}, "searchable.0.weight"),
        ({"titleFeld": "title"}, "titleFeld"),
        ({"navigations": [{"name": "has space"}]}, "navigations.0.name"),
    ]
    for settings, field in cases:
        r = client.put("/api/v1/collections/bad", json=settings, headers=auth)
        assert r.status_code == 400, (settings, r.text)
        error = r.json()["error"]
        assert error["code"] == "invalid_request"
        assert error["field"] == field, error
        assert error["message"].startswith("invalid settings")
    r = client.put("/api/v1/collections/bad", content=b"{not json", headers=auth)
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "body"
    assert client.get("/api/v1/collections/bad", headers=auth).status_code == 404


def test_list_and_get_report_exact_record_counts(client: TestClient, auth: dict[str, str]) -> None:
    assert client.get("/api/v1/collections", headers=auth).json() == {"collections": []}
    load(client, auth, "alpha", PHONES[:7])
    load(client, auth, "beta", PHONES[:12])
    r = client.post(
        "/api/v1/collections/beta/records/delete", json={"ids": ["p0", "p1"]}, headers=auth
    )
    assert r.status_code == 200
    listed = client.get("/api/v1/collections", headers=auth).json()["collections"]
    assert [(c["name"], c["recordCount"]) for c in listed] == [("alpha", 7), ("beta", 10)]
    one = client.get("/api/v1/collections/beta", headers=auth)
    assert one.status_code == 200
    assert one.json()["recordCount"] == 10
    assert one.json()["settings"]["idField"] == "id"
    missing = client.get("/api/v1/collections/nope", headers=auth)
    assert missing.status_code == 404
    assert missing.json()["error"]["field"] == "collection"


def test_settings_are_inferred_from_the_first_records(
    client: TestClient, auth: dict[str, str]
) -> None:
    load(client, auth, "demo", list(generate(400)))
    settings = client.get("/api/v1/collections/demo", headers=auth).json()["settings"]
    assert settings["idField"] == "id"
    assert settings["titleField"] == "title"
    assert settings["urlField"] == "url"
    navs = {n["name"]: n for n in settings["navigations"]}
    assert navs["brand"]["type"] == "Value"
    assert navs["price"]["type"] == "Range"
    buckets = navs["price"]["ranges"]
    assert buckets[0]["low"] is None and buckets[-1]["high"] is None
    assert len(buckets) >= 2
    assert "price" in settings["sortable"] and "title" in settings["sortable"]
    weights = {f["name"]: f["weight"] for f in settings["searchable"]}
    assert weights["title"] > weights.get("description", 0)
    assert "url" not in weights and "id" not in weights
    # The inferred navigations work in search right away.
    body = search(client, auth, collection="demo", query="", pageSize=0)
    assert body["totalRecordCount"] == 400
    brands = nav_counts(body, "brand")
    assert brands is not None and sum(brands.values()) <= 400 and len(brands) > 1


def test_delete_collection_removes_records_settings_and_index(
    client: TestClient, auth: dict[str, str], rt: Runtime
) -> None:
    load(client, auth, "gone", PHONES, {**PLAIN, "navigations": [{"name": "brand"}]})
    weak = rt.services.keys.create(
        SYSTEM, "no-delete", frozenset({Scope.SEARCH, Scope.RECORDS_WRITE, Scope.COLLECTIONS_WRITE})
    )
    r = client.delete(
        "/api/v1/collections/gone", headers={"Authorization": f"Bearer {weak.secret}"}
    )
    assert r.status_code == 403
    assert r.json()["error"]["scope"] == "collections:delete"
    assert search(client, auth, collection="gone", query="phone")["totalRecordCount"] == 30

    r = client.delete("/api/v1/collections/gone?wait=true", headers=auth)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "collection": "gone",
        "deleted": True,
        "recordsDeleted": 30,
        "searchable": True,
    }
    assert not rt.engine.has_collection("gone")
    r = client.post("/api/v1/search", json={"collection": "gone", "query": "x"}, headers=auth)
    assert r.status_code == 404
    assert client.get("/api/v1/collections/gone", headers=auth).status_code == 404
    assert client.get("/api/v1/collections/gone/records/p1", headers=auth).status_code == 404
    assert client.delete("/api/v1/collections/gone", headers=auth).status_code == 404

    # Re-created under the same name it starts empty, with newly inferred settings.
    load(client, auth, "gone", [{"id": "n1", "title": "Tablet", "colour": "red"}])
    info = client.get("/api/v1/collections/gone", headers=auth).json()
    assert info["recordCount"] == 1
    assert [n["name"] for n in info["settings"]["navigations"]] == ["colour"]
    assert search(client, auth, collection="gone", query="phone")["totalRecordCount"] == 0
    assert search(client, auth, collection="gone", query="tablet")["totalRecordCount"] == 1


def test_collection_name_pattern(client: TestClient, auth: dict[str, str]) -> None:
    for name in ("-leading", "has.dot", "x" * 65, "sp%20ace"):
        r = client.put(f"/api/v1/collections/{name}", json=PLAIN, headers=auth)
        assert r.status_code == 400, (name, r.text)
        assert r.json()["error"]["field"] == "collection"
        assert "letters, digits" in r.json()["error"]["message"]
        r = client.post(f"/api/v1/collections/{name}/records", json=PHONES[:1], headers=auth)
        assert r.status_code == 400, (name, r.text)
    assert client.put("/api/v1/collections/Ok_name-1", json=PLAIN, headers=auth).status_code == 201


def test_demo_settings_round_trip(client: TestClient, auth: dict[str, str]) -> None:
    r = client.put("/api/v1/collections/default", json=demo_settings(), headers=auth)
    assert r.status_code == 201, r.text
    again = client.get("/api/v1/collections/default", headers=auth).json()["settings"]
    r = client.put("/api/v1/collections/default", json=again, headers=auth)
    assert r.status_code == 200
    assert r.json()["settings"] == again


def _indexed_soon(rt: Runtime, done: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether ``done`` holds within ``timeout``: far less than the hour-long poll of
    the runtime below, so only a notification from the write can make it hold."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def test_every_write_path_wakes_the_indexer_without_waiting_for_the_poll(
    settings: Settings,
) -> None:
    slow = settings.model_copy(update={"indexer_poll_seconds": 3600, "index_commit_seconds": 0})
    with TestClient(create_app(slow), raise_server_exceptions=False) as client:
        rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        auth = {
            "Authorization": f"Bearer {rt.services.keys.create(SYSTEM, 'all', ALL_SCOPES).secret}"
        }
        assert rt.indexer.wait_ready(30)

        def caught_up() -> bool:
            return rt.indexer.applied_seq >= rt.services.catalog.current_seq()

        assert client.put("/api/v1/collections/shop", json=PLAIN, headers=auth).status_code == 201
        assert _indexed_soon(rt, lambda: caught_up() and rt.engine.has_collection("shop"))
        r = client.post("/api/v1/collections/shop/records", json=PHONES[:3], headers=auth)
        assert r.status_code == 200, r.text
        assert _indexed_soon(rt, caught_up)
        assert search(client, auth, collection="shop", query="phone")["totalRecordCount"] == 3
        r = client.delete("/api/v1/collections/shop/records/p1", headers=auth)
        assert r.status_code == 200, r.text
        assert _indexed_soon(rt, caught_up)
        assert search(client, auth, collection="shop", query="phone")["totalRecordCount"] == 2
        # The admin API (and the Command Center, through the same service) deletes.
        user_id = make_user(rt.services, "root@example.com", "admin")
        token = rt.services.tokens.create(Actor.system(), "tests", user_id=user_id).secret
        r = client.delete(
            "/api/v1/admin/collections/shop", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 200, r.text
        assert _indexed_soon(rt, lambda: caught_up() and not rt.engine.has_collection("shop"))
        # A collection created by a write outside any route (the CLI's demo loader).
        rt.services.catalog.put_settings("cli", parse_settings(PLAIN))
        assert _indexed_soon(rt, lambda: caught_up() and rt.engine.has_collection("cli"))
