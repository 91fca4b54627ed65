"""Order of results: sorts (exact across pages), ByIds, relevance and biasing."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.conftest import load

SORT_SETTINGS: dict[str, Any] = {
    "idField": "id",
    "titleField": "title",
    "searchable": [{"name": "title", "weight": 2}],
    "navigations": [{"name": "maker"}],
    "sortable": ["maker", "price", "title", "stock"],
}
MAKERS = ["Zeta", "alpha", "Émile", "beta"]


def sort_catalog() -> list[dict[str, Any]]:
    """60 records on 4 makers (many ties), prices repeated within a maker, titles
    unique; a few records lack a maker or a price."""
    out = []
    for i in range(60):
        rec: dict[str, Any] = {"id": f"r{i:02d}", "title": f"Item {(i * 37) % 60:02d} widget"}
        if i % 13 != 5:
            rec["maker"] = MAKERS[i % 4]
        if i % 11 != 3:
            rec["price"] = float((i * 7) % 5)
        rec["stock"] = i % 2
        out.append(rec)
    return out


def search(client: TestClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    r = client.post("/api/v1/search", json=body, headers=auth)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def ids(body: dict[str, Any]) -> list[str]:
    return [rec["_id"] for rec in body["records"]]


def paged(client: TestClient, auth: dict[str, str], size: int, **body: Any) -> list[str]:
    """Every result, page by page."""
    out: list[str] = []
    while True:
        page = search(client, auth, skip=len(out), pageSize=size, **body)
        if not page["records"]:
            return out
        assert page["pageInfo"]["recordStart"] == len(out) + 1
        out += ids(page)


def expected(records: list[dict[str, Any]], keys: list[tuple[str, bool]]) -> list[str]:
    """Stable multi-key sort as the spec says: accents and case folded, records
    without a value last in either direction."""

    def norm(v: Any) -> Any:
        if isinstance(v, str):
            return v.lower().replace("é", "e")
        return v

    order = list(records)
    for field, desc in reversed(keys):
        present = [r for r in order if field in r]
        missing = [r for r in order if field not in r]
        present.sort(key=lambda r: norm(r[field]), reverse=desc)
        order = present + missing
    return [r["id"] for r in order]


def test_sort_by_fields_exact_across_pages(client: TestClient, auth: dict[str, str]) -> None:
    records = sort_catalog()
    load(client, auth, "default", records, SORT_SETTINGS)
    by_title = [r["id"] for r in sorted(records, key=lambda r: r["title"])]
    assert ids(search(client, auth, sort={"field": "title"}, pageSize=60)) == by_title
    desc = search(client, auth, sort={"field": "title", "order": "Descending"}, pageSize=60)
    assert ids(desc) == by_title[::-1]

    one = paged(client, auth, 7, sort={"field": "price", "order": "Descending"})
    assert sorted(one) == sorted(r["id"] for r in records)
    prices: list[Any] = [next(r.get("price") for r in records if r["id"] == i) for i in one]
    missing = sum(1 for r in records if "price" not in r)
    present = prices[: len(prices) - missing]
    assert present == sorted(present, reverse=True)
    assert prices[len(prices) - missing :] == [None] * missing  # last, either way

    for keys in (
        [("maker", False), ("price", True), ("title", False)],
        [("maker", True), ("title", True)],
        [("price", False), ("maker", False), ("title", True)],
        [("stock", True), ("price", False), ("maker", True), ("title", False)],
    ):
        sort = [
            {"field": f, "order": "Descending" if d else "Ascending", "type": "Field"}
            for f, d in keys
        ]
        want = expected(records, keys)
        assert ids(search(client, auth, sort=sort, pageSize=60)) == want, keys
        for size in (1, 7, 25):
            assert paged(client, auth, size, sort=sort) == want, (keys, size)
        # The same order under a query and a refinement.
        alpha = [
            i for i in want if next(r for r in records if r["id"] == i).get("maker") == "alpha"
        ]
        refined = search(
            client,
            auth,
            sort=sort,
            skip=2,
            pageSize=5,
            query="widget",
            refinements=[{"navigationName": "maker", "value": "alpha"}],
        )
        assert ids(refined) == alpha[2:7] and refined["totalRecordCount"] == len(alpha)


def test_relevance_and_by_ids(client: TestClient, auth: dict[str, str]) -> None:
    records = [
        {"id": "a", "title": "lamp", "price": 3},
        {"id": "b", "title": "lamp lamp shade for a lamp", "price": 1},
        {"id": "c", "title": "desk lamp with a long title about many other things", "price": 2},
        {"id": "d", "title": "chair", "price": 4},
    ]
    load(client, auth, "default", records, {**SORT_SETTINGS, "sortable": ["price"]})
    relevance = ids(search(client, auth, query="lamp"))
    assert relevance[-1] == "c" and set(relevance) == {"a", "b", "c"}
    assert ids(search(client, auth, query="lamp", sort={"field": "_relevance"})) == relevance
    by_price = search(
        client, auth, query="lamp", sort=[{"field": "price"}, {"field": "_relevance"}]
    )
    assert ids(by_price) == ["b", "c", "a"]

    pinned = {"type": "ByIds", "ids": ["d", "c", "zz", "a"]}
    assert ids(search(client, auth, sort=pinned)) == ["d", "c", "a", "b"]
    # Pinned ids first (those that match), then the rest by the following sort keys.
    body = search(client, auth, query="lamp", sort=[pinned, {"field": "price"}])
    assert ids(body) == ["c", "a", "b"] and body["totalRecordCount"] == 3
    page = search(client, auth, sort=[pinned, {"field": "price"}], skip=1, pageSize=2)
    assert ids(page) == ["c", "a"]
    assert ids(search(client, auth, sort=[pinned], skip=3, pageSize=2)) == ["b"]


BIAS_SETTINGS: dict[str, Any] = {
    "idField": "id",
    "titleField": "title",
    "searchable": [{"name": "title", "weight": 2}, {"name": "description", "weight": 1}],
    "navigations": [{"name": "brand"}, {"name": "colour"}],
    "sortable": ["price"],
}


def bias_catalog() -> list[dict[str, Any]]:
    """24 lamps of four brands and three colours, more or less relevant to "lamp",
    and 24 vases that do not match it."""
    brands = ["Acme", "Bolt", "Core", "Dyna"]
    colours = ["red", "blue", "green"]
    lamps = [
        {
            "id": f"b{i:02d}",
            "title": f"Lamp model {i}",
            "description": "lamp " * (1 + i % 4),
            "brand": brands[i % 4],
            "colour": colours[i % 3],
            "price": i,
        }
        for i in range(24)
    ]
    vases = [
        {"id": f"v{i:02d}", "title": f"Vase {i}", "brand": "Eon", "colour": "white", "price": 99}
        for i in range(24)
    ]
    return lamps + vases


def test_bring_to_top_and_restrict(client: TestClient, auth: dict[str, str]) -> None:
    records = bias_catalog()
    load(client, auth, "default", records, BIAS_SETTINGS)
    red = {"navigationName": "colour", "value": "red"}
    top = ["b09", "b05", "b00", "b03"]  # b05 is blue: not in the results, so not pinned
    body = search(client, auth, refinements=[red], biasing={"bringToTop": top}, pageSize=3)
    assert ids(body)[:3] == ["b09", "b00", "b03"]
    assert body["totalRecordCount"] == 8
    rest = [i for i in ids(search(client, auth, refinements=[red], pageSize=8)) if i not in top]
    everything = paged(client, auth, 3, refinements=[red], biasing={"bringToTop": top})
    assert everything == ["b09", "b00", "b03", *rest]
    # The rest honours a sort; pinned ones do not.
    sorted_rest = search(
        client,
        auth,
        refinements=[red],
        biasing={"bringToTop": ["b21", "b00"]},
        sort={"field": "price", "order": "Descending"},
        pageSize=8,
    )
    assert ids(sorted_rest) == ["b21", "b00", "b18", "b15", "b12", "b09", "b06", "b03"]

    only = search(client, auth, biasing={"restrictToIds": ["b01", "b02", "nope"]})
    assert sorted(ids(only)) == ["b01", "b02"] and only["totalRecordCount"] == 2
    brand = only["availableNavigation"][0]
    assert {r["value"]: r["count"] for r in brand["refinements"]} == {"Bolt": 1, "Core": 1}
    both = search(client, auth, biasing={"restrictToIds": ["b01", "b02"], "bringToTop": ["b02"]})
    assert ids(both) == ["b02", "b01"]


def bias(name: str, content: str, strength: str) -> dict[str, str]:
    return {"name": name, "content": content, "strength": strength}


def brands_in_order(client: TestClient, auth: dict[str, str], **body: Any) -> list[str]:
    result = search(client, auth, pageSize=48, fields=["brand"], **body)
    seen: list[str] = []
    for rec in result["records"]:
        if not seen or seen[-1] != rec["allMeta"]["brand"]:
            seen.append(rec["allMeta"]["brand"])
    return seen


def test_value_biases(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "default", bias_catalog(), BIAS_SETTINGS)
    # Equal relevance (no query): strengths order the brands.
    up = [bias("brand", "Core", "Weak_Increase"), bias("brand", "Bolt", "Strong_Increase")]
    assert brands_in_order(client, auth, biasing={"biases": up})[:2] == ["Bolt", "Core"]
    down = [bias("brand", "Core", "Weak_Decrease"), bias("brand", "Bolt", "Strong_Decrease")]
    assert brands_in_order(client, auth, biasing={"biases": down})[-2:] == ["Core", "Bolt"]
    assert brands_in_order(client, auth, biasing={"biases": down})[0] != "Bolt"
    medium = [bias("brand", "Acme", "Medium_Increase"), bias("brand", "Dyna", "Weak_Increase")]
    assert brands_in_order(client, auth, biasing={"biases": medium})[:2] == ["Acme", "Dyna"]
    # Leave_Unchanged and influence 0 change nothing.
    plain = ids(search(client, auth, query="lamp", pageSize=24))
    unchanged = [bias("brand", "Bolt", "Leave_Unchanged")]
    assert ids(search(client, auth, query="lamp", pageSize=24, biasing={"biases": unchanged})) == (
        plain
    )
    zero = {"biases": [bias("brand", "Bolt", "Strong_Increase")], "influence": 0}
    assert ids(search(client, auth, query="lamp", pageSize=24, biasing=zero)) == plain

    # With a query, relevance differs (more "lamp" in the description scores higher):
    # a weak bias with little influence moves less than a strong one.
    def bolt_positions(strength: str, influence: float) -> list[int]:
        got = search(
            client,
            auth,
            query="lamp",
            pageSize=24,
            fields=["brand"],
            biasing={"biases": [bias("brand", "Bolt", strength)], "influence": influence},
        )
        return [i for i, r in enumerate(got["records"]) if r["allMeta"]["brand"] == "Bolt"]

    unbiased = [i for i, r in enumerate(plain) if r in {f"b{n:02d}" for n in range(1, 24, 4)}]
    weak = bolt_positions("Weak_Increase", 0.01)
    strong = bolt_positions("Strong_Increase", 10)
    assert sum(strong) < sum(weak) <= sum(unbiased)
    assert strong == list(range(6))

    # Absolute strengths beat any relevance, and still rank by relevance among them.
    absolute = [bias("colour", "green", "Absolute_Increase")]
    body = search(client, auth, query="lamp", pageSize=24, biasing={"biases": absolute})
    greens = [r["_id"] for r in body["records"][:8]]
    assert greens == [i for i in plain if int(i[1:]) % 3 == 2]
    bottom = [bias("colour", "blue", "Absolute_Decrease")]
    body = search(client, auth, query="lamp", pageSize=24, biasing={"biases": bottom})
    assert [r["_id"] for r in body["records"][-8:]] == [i for i in plain if int(i[1:]) % 3 == 1]
    # Biases do not reorder a field sort.
    by_price = search(
        client, auth, pageSize=24, sort={"field": "price"}, biasing={"biases": absolute}
    )
    assert ids(by_price) == [f"b{i:02d}" for i in range(24)]
    assert plain == ids(search(client, auth, query="lamp", pageSize=48))
    # ...but do with an explicit relevance sort.
    relevance = search(
        client,
        auth,
        query="lamp",
        pageSize=24,
        sort={"field": "_relevance"},
        biasing={"biases": absolute},
    )
    assert [r["_id"] for r in relevance["records"][:8]] == greens
