"""Refinements and navigations: exact counts, OR navigations, pruning, ranges, the
navigation filters, pre-filter and /api/v1/search/refinements."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.conftest import load

SETTINGS: dict[str, Any] = {
    "idField": "id",
    "titleField": "title",
    "searchable": [{"name": "title", "weight": 2}],
    "navigations": [
        {"name": "brand", "displayName": "Brand", "maxValues": 2},
        {"name": "colour", "or": True},
        {"name": "tags", "maxValues": 1},
        # Out of order, with a gap between 20 and 30: counts follow this order.
        {
            "name": "price",
            "type": "Range",
            "ranges": [{"low": 10, "high": 20}, {"high": 10}, {"low": 30}],
        },
        # Overlapping buckets.
        {"name": "rating", "type": "Range", "ranges": [{"low": 0, "high": 3}, {"low": 2}]},
    ],
    "sortable": ["price"],
}

#      id, title,              brand,  colour,  price, rating, tags
ROWS = [
    (1, "Acme red lamp", "Acme", "red", 5, 5, ["home"]),
    (2, "Acme blue lamp", "Acme", "blue", 10, 4, ["home", "sale"]),
    (3, "Acme green lamp", "Acme", "green", 15, 3, ["home"]),
    (4, "Acme red chair", "Acme", "red", 20, 2, ["home", "sale"]),
    (5, "Acme blue chair", "Acme", "blue", 25, 1, ["home"]),
    (6, "Bolt red lamp", "Bolt", "red", 9.99, 5, ["home"]),
    (7, "Bolt blue desk", "Bolt", "blue", 19.99, 4, ["home", "sale"]),
    (8, "Bolt green desk", "Bolt", "green", 30, 3, ["home"]),
    (9, "Bolt red desk", "Bolt", "red", 40, 2, ["home"]),
    (10, "Core blue lamp", "Core", "blue", 10, 1, ["home"]),
    (11, "Core green chair", "Core", "green", 20, 4, ["home", "sale"]),
    (12, "Core red shelf", "Core", "red", 0, 3, ["home"]),
]
RECORDS = [
    {
        "id": str(i),
        "title": t,
        "brand": b,
        "colour": c,
        "price": p,
        "rating": r,
        "tags": tags,
    }
    for i, t, b, c, p, r, tags in ROWS
]


def search(client: TestClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    r = client.post("/api/v1/search", json={"pageSize": 100, **body}, headers=auth)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def ids(body: dict[str, Any]) -> set[str]:
    return {rec["_id"] for rec in body["records"]}


def navs(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in body["availableNavigation"]}


def counts(body: dict[str, Any], name: str) -> dict[Any, int] | None:
    nav = navs(body).get(name)
    if nav is None:
        return None
    if nav["type"] == "Range":
        return {(r["low"], r["high"]): r["count"] for r in nav["refinements"]}
    return {r["value"]: r["count"] for r in nav["refinements"]}


def value(name: str, v: Any, exclude: bool = False) -> dict[str, Any]:
    return {"navigationName": name, "type": "Value", "value": v, "exclude": exclude}


def rng(name: str, low: Any = None, high: Any = None, exclude: bool = False) -> dict[str, Any]:
    return {"navigationName": name, "type": "Range", "low": low, "high": high, "exclude": exclude}


def test_counts_for_the_result_set(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "default", RECORDS, SETTINGS)
    body = search(client, auth)
    assert body["totalRecordCount"] == 12
    assert [n["name"] for n in body["availableNavigation"]] == [
        "brand",
        "colour",
        "tags",
        "price",
        "rating",
    ]
    brand = navs(body)["brand"]
    assert brand["displayName"] == "Brand" and brand["type"] == "Value"
    assert brand["or"] is False and brand["range"] is False
    # Most frequent first; maxValues 2 leaves one out.
    assert brand["refinements"] == [
        {"type": "Value", "value": "Acme", "count": 5},
        {"type": "Value", "value": "Bolt", "count": 4},
    ]
    assert brand["moreRefinements"] is True
    assert navs(body)["colour"]["or"] is True
    assert counts(body, "colour") == {"red": 5, "blue": 4, "green": 3}
    assert navs(body)["colour"]["moreRefinements"] is False
    # Every record is "home": pruned, and "sale" still fills the one value shown.
    assert counts(body, "tags") == {"sale": 4}
    assert navs(body)["tags"]["moreRefinements"] is False
    # Buckets in configured order, low inclusive and high exclusive (10, 19.99 / 20 ...).
    price = navs(body)["price"]
    assert price["range"] is True and price["type"] == "Range"
    assert price["refinements"] == [
        {"type": "Range", "low": 10.0, "high": 20.0, "count": 4},
        {"type": "Range", "low": None, "high": 10.0, "count": 3},
        {"type": "Range", "low": 30.0, "high": None, "count": 2},
    ]
    assert counts(body, "rating") == {(0.0, 3.0): 4, (2.0, None): 10}

    unpruned = search(client, auth, pruneRefinements=False)
    assert counts(unpruned, "tags") == {"home": 12}
    assert navs(unpruned)["tags"]["moreRefinements"] is True

    # Counts follow the query.
    lamps = search(client, auth, query="lamp")
    assert ids(lamps) == {"1", "2", "3", "6", "10"}
    assert counts(lamps, "brand") == {"Acme": 3, "Bolt": 1}
    assert counts(lamps, "colour") == {"red": 2, "blue": 2, "green": 1}
    assert counts(lamps, "price") == {(10.0, 20.0): 3, (None, 10.0): 2}


def test_value_refinements_and_exclude(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "default", RECORDS, SETTINGS)
    acme = search(client, auth, refinements=[value("brand", "Acme")])
    assert ids(acme) == {"1", "2", "3", "4", "5"}
    assert counts(acme, "brand") is None  # Acme is every result: pruned, nothing left
    assert counts(acme, "colour") == {"red": 2, "blue": 2, "green": 1}
    assert counts(acme, "tags") == {"sale": 2}
    assert acme["selectedNavigation"] == [
        {
            "name": "brand",
            "displayName": "Brand",
            "type": "Value",
            "range": False,
            "or": False,
            "refinements": [{"type": "Value", "value": "Acme", "exclude": False}],
        }
    ]
    kept = search(client, auth, refinements=[value("brand", "Acme")], pruneRefinements=False)
    assert counts(kept, "brand") == {"Acme": 5}

    # Two values of a navigation that is not OR: both must hold.
    both = search(client, auth, refinements=[value("brand", "Acme"), value("brand", "Bolt")])
    assert both["totalRecordCount"] == 0 and both["availableNavigation"] == []
    assert both["pageInfo"] == {"recordStart": 0, "recordEnd": 0}
    assert [len(n["refinements"]) for n in both["selectedNavigation"]] == [2]

    not_acme = search(client, auth, refinements=[value("brand", "Acme", exclude=True)])
    assert ids(not_acme) == {str(i) for i in range(6, 13)}
    assert counts(not_acme, "brand") == {"Bolt": 4, "Core": 3}
    assert not_acme["selectedNavigation"][0]["refinements"][0]["exclude"] is True
    mixed = search(
        client,
        auth,
        refinements=[value("tags", "sale"), value("colour", "red", exclude=True)],
    )
    assert ids(mixed) == {"2", "7", "11"}


def test_or_navigations(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "default", RECORDS, SETTINGS)
    red_blue = [value("colour", "red"), value("colour", "blue")]
    body = search(client, auth, refinements=red_blue)
    assert ids(body) == {"1", "2", "4", "5", "6", "7", "9", "10", "12"}
    # Its own counts ignore its selection (all values stay selectable, none pruned)...
    assert counts(body, "colour") == {"red": 5, "blue": 4, "green": 3}
    # ...while the other navigations count the result set.
    assert counts(body, "brand") == {"Acme": 4, "Bolt": 3}
    assert navs(body)["brand"]["moreRefinements"] is True
    assert counts(body, "price") == {(10.0, 20.0): 3, (None, 10.0): 3, (30.0, None): 1}
    assert body["selectedNavigation"][0]["or"] is True

    # With another navigation's selection, the OR counts respect that one.
    acme_red_blue = search(client, auth, refinements=[*red_blue, value("brand", "Acme")])
    assert ids(acme_red_blue) == {"1", "2", "4", "5"}
    assert counts(acme_red_blue, "colour") == {"red": 2, "blue": 2, "green": 1}
    assert counts(acme_red_blue, "brand") is None
    excluded = search(client, auth, refinements=[value("colour", "red", exclude=True)])
    assert ids(excluded) == {"2", "3", "5", "7", "8", "10", "11"}

    # orFields makes a navigation OR for one request.
    either = [value("brand", "Acme"), value("brand", "Core")]
    plain = search(client, auth, refinements=either)
    assert plain["totalRecordCount"] == 0
    multi = search(client, auth, refinements=either, orFields=["brand"])
    assert ids(multi) == {"1", "2", "3", "4", "5", "10", "11", "12"}
    brand = navs(multi)["brand"]
    assert brand["or"] is True and multi["selectedNavigation"][0]["or"] is True
    assert counts(multi, "brand") == {"Acme": 5, "Bolt": 4}  # maxValues 2
    one = search(client, auth, refinements=[value("brand", "Acme")], orFields=["brand"])
    assert counts(one, "brand") == {"Acme": 5, "Bolt": 4}  # not pruned
    assert counts(one, "colour") == {"red": 2, "blue": 2, "green": 1}

    # A range navigation can be OR per request too.
    ranges = [rng("price", None, 10), rng("price", 30, None)]
    cheap_or_dear = search(client, auth, refinements=ranges, orFields=["price"])
    assert ids(cheap_or_dear) == {"1", "6", "12", "8", "9"}
    assert counts(cheap_or_dear, "price") == {
        (10.0, 20.0): 4,
        (None, 10.0): 3,
        (30.0, None): 2,
    }


def test_range_refinements(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "default", RECORDS, SETTINGS)
    mid = search(client, auth, refinements=[rng("price", 10, 20)])
    assert ids(mid) == {"2", "3", "7", "10"}  # 10 in, 20 out
    assert counts(mid, "price") is None  # the one bucket holding them all is pruned
    assert mid["selectedNavigation"][0]["refinements"] == [
        {"type": "Range", "low": 10, "high": 20, "exclude": False}
    ]
    assert ids(search(client, auth, refinements=[rng("price", 20)])) == {"4", "5", "8", "9", "11"}
    assert ids(search(client, auth, refinements=[rng("price", None, 9.99)])) == {"1", "12"}
    assert ids(search(client, auth, refinements=[rng("price", "10", "15.5")])) == {"2", "3", "10"}
    outside = search(client, auth, refinements=[rng("price", 10, 30, exclude=True)])
    assert ids(outside) == {"1", "6", "8", "9", "12"}
    # A value on a range navigation is that exact number.
    assert ids(search(client, auth, refinements=[value("price", 10)])) == {"2", "10"}
    assert ids(search(client, auth, refinements=[value("price", "9.99")])) == {"6"}
    both = search(client, auth, refinements=[rng("price", 0, 20), rng("rating", 4)])
    assert ids(both) == {"1", "2", "6", "7"}
    assert counts(both, "rating") is None
    assert counts(both, "price") == {(10.0, 20.0): 2, (None, 10.0): 2}


def test_navigation_filters(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "default", RECORDS, SETTINGS)
    only = search(client, auth, includedNavigations=["colour", "price", "unknown"])
    assert [n["name"] for n in only["availableNavigation"]] == ["colour", "price"]
    without = search(client, auth, excludedNavigations=["colour", "price"])
    assert [n["name"] for n in without["availableNavigation"]] == ["brand", "tags", "rating"]
    both = search(
        client, auth, includedNavigations=["colour", "brand"], excludedNavigations=["brand"]
    )
    assert [n["name"] for n in both["availableNavigation"]] == ["colour"]

    two = search(client, auth, restrictNavigation={"name": "colour", "count": 2})
    assert [n["name"] for n in two["availableNavigation"]] == ["colour"]
    assert counts(two, "colour") == {"red": 5, "blue": 4}
    assert navs(two)["colour"]["moreRefinements"] is True
    three = search(client, auth, restrictNavigation={"name": "colour", "count": 3})
    assert counts(three, "colour") == {"red": 5, "blue": 4, "green": 3}
    assert navs(three)["colour"]["moreRefinements"] is False
    # restrictNavigation's count overrides the navigation's maxValues.
    brands = search(client, auth, restrictNavigation={"name": "brand", "count": 5})
    assert counts(brands, "brand") == {"Acme": 5, "Bolt": 4, "Core": 3}


def test_refinements_endpoint(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "default", RECORDS, SETTINGS)

    def all_values(original: dict[str, Any], name: str) -> dict[str, Any]:
        r = client.post(
            "/api/v1/search/refinements",
            json={"originalQuery": original, "navigationName": name},
            headers=auth,
        )
        assert r.status_code == 200, r.text
        nav: dict[str, Any] = r.json()["navigation"]
        return nav

    brand = all_values({}, "brand")
    assert brand["name"] == "brand" and brand["moreRefinements"] is False
    assert [(r["value"], r["count"]) for r in brand["refinements"]] == [
        ("Acme", 5),
        ("Bolt", 4),
        ("Core", 3),
    ]
    lamps = all_values({"query": "lamp", "pageSize": 1}, "brand")
    assert [(r["value"], r["count"]) for r in lamps["refinements"]] == [
        ("Acme", 3),
        ("Bolt", 1),
        ("Core", 1),
    ]
    # Not pruned: the endpoint lists every value.
    assert [r["value"] for r in all_values({}, "tags")["refinements"]] == ["home", "sale"]
    # An OR navigation's values ignore its own selection here too.
    red = all_values({"refinements": [value("colour", "red"), value("brand", "Bolt")]}, "colour")
    assert red["or"] is True
    assert {r["value"]: r["count"] for r in red["refinements"]} == {
        "red": 2,
        "blue": 1,
        "green": 1,
    }
    price = all_values({"refinements": [value("brand", "Core")]}, "price")
    assert [(r["low"], r["high"], r["count"]) for r in price["refinements"]] == [
        (10.0, 20.0, 1),
        (None, 10.0, 1),
    ]

    for body, field in (
        ({"originalQuery": {}, "navigationName": "nope"}, "navigationName"),
        ({"originalQuery": {}}, "navigationName"),
        ({"originalQuery": "x", "navigationName": "brand"}, "originalQuery"),
        ({"originalQuery": {"pageSize": -1}, "navigationName": "brand"}, "pageSize"),
        ([], "body"),
    ):
        r = client.post("/api/v1/search/refinements", json=body, headers=auth)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["field"] == field, r.text
    r = client.post(
        "/api/v1/search/refinements",
        json={"originalQuery": {"collection": "nope"}, "navigationName": "brand"},
        headers=auth,
    )
    assert r.status_code == 404
    r = client.post("/api/v1/search/refinements", json={"navigationName": "brand"})
    assert r.status_code == 401


def test_pre_filter(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "default", RECORDS, SETTINGS)

    def found(expr: str, **body: Any) -> set[str]:
        return ids(search(client, auth, **{"pre-filter": expr, **body}))

    assert found('brand:Acme AND NOT colour:"red"') == {"2", "3", "5"}
    assert found("price:[10 TO 20]") == {"2", "3", "4", "7", "10", "11"}  # inclusive
    assert found("price:[* TO 9.99]") == {"1", "6", "12"}
    assert found("price:[30 TO *]") == {"8", "9"}
    assert found("brand:Core OR brand:Bolt AND colour:green") == {"8", "10", "11", "12"}
    assert found("(brand:Core OR brand:Bolt) AND colour:green") == {"8", "11"}
    assert found("tags:sale AND rating:[4 TO 5]") == {"2", "7", "11"}
    # Applied before everything: counts and refinements only see what it lets through.
    body = search(
        client, auth, **{"pre-filter": "brand:Bolt", "refinements": [value("colour", "red")]}
    )
    assert ids(body) == {"6", "9"}
    assert counts(body, "colour") == {"red": 2, "blue": 1, "green": 1}
    assert counts(body, "brand") is None
    assert search(client, auth, **{"pre-filter": "   "})["totalRecordCount"] == 12

    for expr, where in (
        ("brand:", "the end (position 6)"),
        ("brand:Acme AND", "the end"),
        ("(brand:Acme", "the end"),
        ("brand:Acme)", "position 10"),
        ("nope:1", "position 0"),
        ("price:cheap", "position 6"),
        ("brand:[1 TO 2]", "position 0"),
        ("price:[a TO 2]", "position 7"),
        ('brand:"Acme', "position 6"),
        ("brand:Acme & colour:red", "position 11"),
    ):
        r = client.post("/api/v1/search", json={"pre-filter": expr}, headers=auth)
        assert r.status_code == 400, (expr, r.text)
        err = r.json()["error"]
        assert err["field"] == "pre-filter" and where in err["message"], (expr, err)
    deep = "(" * 40 + "brand:Acme" + ")" * 40
    r = client.post("/api/v1/search", json={"pre-filter": deep}, headers=auth)
    assert r.status_code == 400 and "deeper" in r.json()["error"]["message"]
    r = client.post("/api/v1/search", json={"pre-filter": "brand:a " * 400}, headers=auth)
    assert r.status_code == 400 and r.json()["error"]["field"] == "pre-filter"


def test_counts_exact_across_index_segments(client: TestClient, auth: dict[str, str]) -> None:
    """A value frequent overall but rare in one segment is still counted everywhere."""
    settings = {"idField": "id", "navigations": [{"name": "maker", "maxValues": 1}]}
    load(
        client, auth, "default", [{"id": f"a{i}", "maker": "common"} for i in range(300)], settings
    )
    second = [{"id": f"b{i}-{j}", "maker": f"m{i:03d}"} for i in range(200) for j in range(2)]
    load(client, auth, "default", [*second, {"id": "b-common", "maker": "common"}])
    body = search(client, auth, pageSize=0)
    assert body["totalRecordCount"] == 701
    assert navs(body)["maker"]["refinements"] == [
        {"type": "Value", "value": "common", "count": 301}
    ]
    assert navs(body)["maker"]["moreRefinements"] is True
