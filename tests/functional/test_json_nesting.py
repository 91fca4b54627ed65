"""The one nesting limit of JSON: records and request bodies nest objects and arrays at
most MAX_JSON_DEPTH levels, refused where they come in with an error naming the limit,
so that nothing accepted can fail to be written out in a later answer."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from searchgate.demo import demo_settings
from searchgate.jsondepth import MAX_JSON_DEPTH
from tests.conftest import load

LIMIT_WORDS = f"{MAX_JSON_DEPTH} levels"


def nested(levels: int, leaf: Any = "deep") -> Any:
    """A value ``levels`` objects and arrays deep (alternating, an object outermost),
    ``leaf`` at the bottom."""
    value = leaf
    for n in range(levels):
        value = {"in": value} if (levels - n) % 2 else [value]
    return value


def record(rid: str, depth: int) -> dict[str, Any]:
    """A record whose own object is the first of ``depth`` levels."""
    return {
        "id": rid,
        "title": f"Nested lamp {rid}",
        "brand": "Deepco",
        "price": 10,
        "spec": nested(depth - 1),
    }


def write(client: TestClient, auth: dict[str, str], records: list[Any], **params: str) -> Any:
    return client.post(
        "/api/v1/collections/default/records",
        params={"wait": "true", **params},
        json=records,
        headers=auth,
    )


def search(client: TestClient, auth: dict[str, str], body: dict[str, Any]) -> Any:
    return client.post("/api/v1/search", json=body, headers=auth)


def test_a_record_nested_past_the_limit_is_invalid_and_named(
    client: TestClient, auth: dict[str, str]
) -> None:
    load(client, auth, "default", [record("ok", 2)], demo_settings())
    # 251 levels were accepted and then broke every answer that held the record.
    for depth in (MAX_JSON_DEPTH + 1, 251):
        r = write(client, auth, [record(f"d{depth}", depth)])
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["upserted"] == 0 and body["invalidRecordCount"] == 1, r.text
        detail = body["invalidRecordDetails"][0]
        assert detail["field"] == "spec" and detail["id"] == f"d{depth}"
        assert LIMIT_WORDS in detail["reason"], detail
    r = write(client, auth, [record("x", 300)], failOnFirstError="true")
    assert r.status_code == 420, r.text
    assert LIMIT_WORDS in r.json()["invalidRecordDetails"][0]["reason"]
    # NDJSON and the stream upload go through the same check.
    line = orjson.dumps(record("nd", MAX_JSON_DEPTH + 1))
    r = client.post(
        "/api/v1/collections/default/records",
        content=line + b"\n",
        headers={**auth, "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 200 and r.json()["invalidRecordCount"] == 1, r.text
    r = client.post(
        "/data/v1/upload/stream",
        files={
            "config": ("config", "collection: default\n", "text/plain"),
            "data": ("data", b"[" + line + b"]", "application/json"),
        },
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert LIMIT_WORDS in r.json()["invalidRecordDetails"][0]["reason"]
    # Every answer that could have held one still works.
    r = search(client, auth, {"query": "lamp"})
    assert r.status_code == 200, r.text
    assert [x["allMeta"]["id"] for x in r.json()["records"]] == ["ok"]


def test_a_record_at_the_limit_round_trips_through_search_and_sayt(
    client: TestClient, auth: dict[str, str]
) -> None:
    deepest = record("deepest", MAX_JSON_DEPTH)
    load(client, auth, "default", [deepest], demo_settings())
    r = client.get("/api/v1/collections/default/records/deepest", headers=auth)
    assert r.status_code == 200 and r.json() == deepest, r.text
    r = search(client, auth, {"query": "nested lamp"})
    assert r.status_code == 200, r.text
    assert r.json()["records"][0]["allMeta"] == deepest
    r = client.post(
        "/api/v1/search/refinements",
        json={"originalQuery": {"query": "lamp"}, "navigationName": "brand"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    r = client.get(
        "/api/v1/sayt/search", params={"query": "nested la", "productItems": "3"}, headers=auth
    )
    assert r.status_code == 200, r.text
    products = r.json()["result"]["products"]
    assert [p["allMeta"]["spec"] for p in products] == [deepest["spec"]]


def test_a_request_body_nested_past_the_limit_is_a_400_naming_it(
    client: TestClient, auth: dict[str, str], admin_token: str
) -> None:
    load(client, auth, "default", [record("ok", 2)], demo_settings())
    at_limit = {"query": "lamp", "ignored": nested(MAX_JSON_DEPTH - 1)}
    r = search(client, auth, at_limit)
    assert r.status_code == 200, r.text
    assert r.json()["originalRequest"]["ignored"] == at_limit["ignored"]
    admin = {"Authorization": f"Bearer {admin_token}"}
    for depth in (MAX_JSON_DEPTH, 253, 1000):
        # As text: no JSON library writes 1,000 levels.
        deep = "[" * depth + "1" + "]" * depth
        calls = [
            ("/api/v1/search", f'{{"query": "lamp", "ignored": {deep}}}', auth),
            (
                "/api/v1/search/refinements",
                f'{{"originalQuery": {{"query": "lamp", "x": {deep}}}, "navigationName": "b"}}',
                auth,
            ),
            ("/api/v1/collections/default/records/delete", f'{{"ids": [], "x": {deep}}}', auth),
            ("/api/v1/admin/keys", f'{{"name": "k", "scopes": ["search"], "x": {deep}}}', admin),
        ]
        if depth < 500:  # a leak report is at most 1 KiB
            calls.append(("/api/v1/keys/revoke", f'{{"key": "sgk_x", "x": {deep}}}', {}))
        for path, body, headers in calls:
            r = client.post(
                path, content=body, headers={**headers, "Content-Type": "application/json"}
            )
            assert r.status_code == 400, (path, depth, r.text)
            error = r.json()["error"]
            assert error["field"] == "body" and error["limit"] == MAX_JSON_DEPTH, r.text
            assert LIMIT_WORDS in error["message"], r.text


# Nested anywhere from 0 to 300 levels, lists and objects in a repeated pattern.
SHAPES = st.builds(
    lambda depth, pattern: [pattern[n % len(pattern)] for n in range(depth)],
    st.integers(0, 300),
    st.lists(st.sampled_from(["list", "object"]), min_size=1, max_size=6),
)
LEAF = st.none() | st.booleans() | st.integers() | st.text(max_size=8)


def build(shape: list[str], leaf: Any, key: str) -> Any:
    value = leaf
    for kind in shape:
        value = [value] if kind == "list" else {key: value}
    return value


def test_no_nesting_of_a_body_or_a_record_answers_5xx(
    client: TestClient, auth: dict[str, str], admin_token: str
) -> None:
    load(client, auth, "default", [record("ok", 2)], demo_settings())
    admin = {"Authorization": f"Bearer {admin_token}"}

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        shape=SHAPES,
        leaf=LEAF,
        key=st.sampled_from(["query", "refinements", "spec", "title", "x"]),
    )
    def check(shape: list[str], leaf: Any, key: str) -> None:
        value = build(shape, leaf, key)
        rec = {"id": "h", "title": "Nested lamp h", key: value}
        calls = [
            ("/api/v1/search", value, auth),
            ("/api/v1/search", {"query": "lamp", key: value}, auth),
            ("/api/v1/search/refinements", {"originalQuery": value, "navigationName": "x"}, auth),
            ("/api/v1/collections/default/records?wait=true", [rec], auth),
            ("/api/v1/collections/default/records/delete", value, auth),
            ("/api/v1/admin/keys", value, admin),
        ]
        for path, body, headers in calls:
            r = client.post(path, json=body, headers=headers)
            assert r.status_code < 500, (path, len(shape), r.text)
        for r in (
            search(client, auth, {"query": "lamp"}),
            client.get(
                "/api/v1/sayt/search", params={"query": "lam", "productItems": "5"}, headers=auth
            ),
        ):
            assert r.status_code == 200, (len(shape), r.text)

    check()
