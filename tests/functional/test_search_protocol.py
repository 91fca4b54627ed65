"""POST /api/v1/search: query, pages, records on the wire, areas, corrections, errors."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.conftest import load

SETTINGS: dict[str, Any] = {
    "idField": "id",
    "titleField": "title",
    "urlField": "url",
    "searchable": [{"name": "title", "weight": 3}, {"name": "description", "weight": 1}],
    "navigations": [
        {"name": "brand", "displayName": "Brand"},
        {"name": "price", "type": "Range", "ranges": [{"high": 50}, {"low": 50}]},
    ],
    "sortable": ["price", "title"],
}


def _rec(i: int, title: str, description: str, brand: str, price: float) -> dict[str, Any]:
    return {
        "id": f"p{i}",
        "title": title,
        "description": description,
        "brand": brand,
        "price": price,
        "url": f"https://shop.example/p{i}",
        "stock": i % 3,
    }


RECORDS = [
    _rec(1, "Walnut desk lamp", "A warm reading light", "Lumo", 40),
    _rec(2, "Oak bookshelf", "Solid shelf; pairs with any lamp", "Timber", 120),
    _rec(3, "Brass floor lamp", "Tall light for corners", "Lumo", 80),
    _rec(4, "Walnut side table", "Small table in walnut", "Timber", 60),
    _rec(5, "Ceramic vase", "Glazed vase for flowers", "Clay", 25),
    _rec(6, "Reading chair", "Deep chair for reading", "Timber", 300),
    _rec(7, "Telescope", "Look at the stars", "Optix", 450),
    _rec(8, "Pendant lamp", "Hanging walnut lamp shade", "Lumo", 55),
]


def search(client: TestClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    r = client.post("/api/v1/search", json=body, headers=auth)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def ids(body: dict[str, Any]) -> list[str]:
    return [rec["_id"] for rec in body["records"]]


def error(client: TestClient, auth: dict[str, str], body: Any, status: int = 400) -> dict[str, Any]:
    r = client.post("/api/v1/search", json=body, headers=auth)
    assert r.status_code == status, (body, r.text)
    err: dict[str, Any] = r.json()["error"]
    assert err["code"] and err["message"]
    return err


def test_query_over_weighted_fields(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "default", RECORDS, SETTINGS)
    everything = search(client, auth, pageSize=100)
    assert everything["totalRecordCount"] == len(RECORDS)
    assert sorted(ids(everything)) == sorted(r["id"] for r in RECORDS)
    assert search(client, auth, query=None)["totalRecordCount"] == len(RECORDS)
    assert search(client, auth, query="   ")["totalRecordCount"] == len(RECORDS)

    # "lamp" is in four titles and in one description; titles weigh three times more.
    lamp = search(client, auth, query="lamp", pageSize=10)
    assert set(ids(lamp)) == {"p1", "p2", "p3", "p8"}
    assert ids(lamp)[-1] == "p2"
    # Every word must match (in any searchable field), accents and case folded.
    assert set(ids(search(client, auth, query="WALNUT lamp"))) == {"p1", "p8"}
    assert ids(search(client, auth, query="walnut lamp telescope")) == []
    assert ids(search(client, auth, query="lamps")) != []  # stemmed like the index
    assert set(ids(search(client, auth, query="Wálnut"))) == {"p1", "p4", "p8"}


def test_pages_and_page_info(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "default", RECORDS, SETTINGS)
    order = ids(search(client, auth, sort={"field": "price"}, pageSize=100))
    assert order == ["p5", "p1", "p8", "p4", "p3", "p2", "p6", "p7"]
    page = search(client, auth, sort={"field": "price"}, skip=3, pageSize=3)
    assert ids(page) == order[3:6]
    assert page["pageInfo"] == {"recordStart": 4, "recordEnd": 6}
    assert page["totalRecordCount"] == 8
    last = search(client, auth, sort={"field": "price"}, skip=6, pageSize=3)
    assert ids(last) == order[6:]
    assert last["pageInfo"] == {"recordStart": 7, "recordEnd": 8}
    beyond = search(client, auth, skip=8, pageSize=3)
    assert beyond["records"] == [] and beyond["pageInfo"] == {"recordStart": 0, "recordEnd": 0}
    assert beyond["totalRecordCount"] == 8
    counts_only = search(client, auth, pageSize=0, query="lamp")
    assert counts_only["records"] == []
    assert counts_only["pageInfo"] == {"recordStart": 0, "recordEnd": 0}
    assert counts_only["totalRecordCount"] == 4
    brand = next(n for n in counts_only["availableNavigation"] if n["name"] == "brand")
    assert {r["value"]: r["count"] for r in brand["refinements"]} == {"Lumo": 3, "Timber": 1}
    default = search(client, auth)
    assert len(default["records"]) == 8 and default["pageInfo"]["recordEnd"] == 8
    nothing = search(client, auth, query="zzzz qqqq", disableAutocorrection=True)
    assert nothing["totalRecordCount"] == 0
    assert nothing["pageInfo"] == {"recordStart": 0, "recordEnd": 0}
    assert nothing["availableNavigation"] == []


def test_records_on_the_wire_and_fields_mask(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "default", RECORDS, SETTINGS)
    rec = search(client, auth, query="telescope")["records"][0]
    assert rec == {
        "_id": "p7",
        "_u": "https://shop.example/p7",
        "_t": "Telescope",
        "allMeta": next(r for r in RECORDS if r["id"] == "p7"),
        "collection": "default",
    }
    for fields in (["*"], [], None, ["title", "*"]):
        body: dict[str, Any] = {"query": "telescope"}
        if fields is not None:
            body["fields"] = fields
        assert search(client, auth, **body)["records"][0]["allMeta"] == rec["allMeta"]
    masked = search(client, auth, query="telescope", fields=["title", "price", "nope"])
    assert masked["records"][0]["allMeta"] == {"id": "p7", "title": "Telescope", "price": 450}
    assert masked["records"][0]["_t"] == "Telescope"  # title and URL survive the mask
    assert masked["records"][0]["_u"] == "https://shop.example/p7"
    only_id = search(client, auth, query="telescope", fields=["id"])
    assert only_id["records"][0]["allMeta"] == {"id": "p7"}

    # Without title and URL fields: the id stands in as title, a stable path as URL.
    load(client, auth, "bare", [{"id": "a/1", "name": "x"}], {"idField": "id"})
    bare = search(client, auth, collection="bare")["records"][0]
    assert bare["_t"] == "a/1" and bare["_u"] == "/bare/a%2F1" and bare["collection"] == "bare"


def test_response_envelope_area_collection(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "default", RECORDS, SETTINGS)
    load(client, auth, "other", [{"id": "o1", "title": "Other lamp"}])
    key = auth["Authorization"].removeprefix("Bearer ")
    raw = {
        "query": "lamp",
        "clientKey": key,
        "pageSize": 2,
        "userId": "u-1",
        "customUrlParams": [{"key": "k", "value": "v"}],
        "sort": [{"field": "price", "order": "Descending"}],
    }
    r = client.post("/api/v1/search", json=raw)
    assert r.status_code == 200, r.text
    body = r.json()
    assert key not in r.text
    assert body["originalRequest"] == {k: v for k, v in raw.items() if k != "clientKey"}
    assert body["area"] == "Production"
    assert body["template"]["name"] == "default"
    assert body["redirect"] is None and body["errors"] == ""
    for name in ("didYouMean", "relatedQueries", "rewrites", "warnings", "siteParams"):
        assert body[name] == [], name
    assert body["id"] and body["id"] != search(client, auth, query="lamp")["id"]
    assert [rec["collection"] for rec in body["records"]] == ["default", "default"]
    assert body["query"] == body["originalQuery"] == "lamp" and body["correctedQuery"] == ""

    assert search(client, auth, area="Production")["totalRecordCount"] == 8
    err = error(client, auth, {"area": "Staging"})
    assert err["field"] == "area" and "Staging" in err["message"]
    other = search(client, auth, collection="other", query="lamp")
    assert ids(other) == ["o1"] and other["records"][0]["collection"] == "other"
    err = error(client, auth, {"collection": "nope"}, status=404)
    assert err["field"] == "collection"
    err = error(client, auth, {"collection": "Default"}, status=404)  # case-sensitive


def test_wildcard_search(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "default", RECORDS, SETTINGS)
    assert search(client, auth, query="tele", disableAutocorrection=True)["records"] == []
    assert ids(search(client, auth, query="tele", wildcardSearchEnabled=True)) == ["p7"]
    # Only the trailing word is a prefix; earlier words match whole.
    assert set(ids(search(client, auth, query="walnut la", wildcardSearchEnabled=True))) == {
        "p1",
        "p8",
    }
    assert search(client, auth, query="wal la", wildcardSearchEnabled=True)["records"] == []
    # The whole trailing word still matches outside the title (here a description).
    assert ids(search(client, auth, query="stars", wildcardSearchEnabled=True)) == ["p7"]


def test_autocorrection(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "default", RECORDS, SETTINGS)
    body = search(client, auth, query="telscope")
    assert ids(body) == ["p7"]
    assert body["query"] == "telescope" and body["correctedQuery"] == "telescope"
    assert body["originalQuery"] == "telscope" and body["didYouMean"] == ["telescope"]
    assert body["originalRequest"]["query"] == "telscope"

    two = search(client, auth, query="walnnut lamp")
    assert set(ids(two)) == {"p1", "p8"} and two["correctedQuery"] == "walnut lamp"

    off = search(client, auth, query="telscope", disableAutocorrection=True)
    assert off["records"] == [] and off["totalRecordCount"] == 0
    assert off["correctedQuery"] == "" and off["didYouMean"] == []
    assert off["query"] == "telscope"
    # Found as typed: nothing is corrected, even when a similar word exists.
    found = search(client, auth, query="lamp")
    assert found["correctedQuery"] == "" and found["didYouMean"] == []
    # Nothing close: the empty answer stays, uncorrected.
    none = search(client, auth, query="xylophone")
    assert none["totalRecordCount"] == 0 and none["correctedQuery"] == ""


def test_malformed_requests_name_the_field(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "default", RECORDS, SETTINGS)
    cases: list[tuple[Any, str]] = [
        ({"query": 5}, "query"),
        ({"pageSize": "ten"}, "pageSize"),
        ({"skip": -1}, "skip"),
        ({"pageSize": -1}, "pageSize"),
        ({"pageSize": 1001}, "pageSize"),
        ({"skip": 100_001}, "skip"),
        ({"query": "x" * 513}, "query"),
        ({"refinements": "brand"}, "refinements"),
        (
            {"refinements": [{"navigationName": "brand", "value": "x"}] * 101},
            "refinements",
        ),
        ({"refinements": [{"navigationName": "nope", "value": "x"}]}, "refinements[0]"),
        (
            {"refinements": [{"navigationName": "brand", "type": "Range", "low": 1}]},
            "refinements[0]",
        ),
        ({"refinements": [{"navigationName": "brand"}]}, "refinements[0]"),
        ({"refinements": [{"navigationName": "price", "type": "Range"}]}, "refinements[0]"),
        (
            {"refinements": [{"navigationName": "price", "type": "Range", "low": "abc"}]},
            "refinements[0].low",
        ),
        (
            {"refinements": [{"navigationName": "price", "type": "Range", "low": 9, "high": 1}]},
            "refinements[0]",
        ),
        (
            {"refinements": [{"navigationName": "price", "type": "Range", "high": "inf"}]},
            "refinements[0].high",
        ),
        ({"refinements": [{"navigationName": "price", "value": "cheap"}]}, "refinements[0]"),
        ({"refinements": [{"navigationName": "brand", "type": "Bogus"}]}, "refinements[0].type"),
        ({"sort": {"field": "brand"}}, "sort[0].field"),
        ({"sort": [{"field": "price"}, {"field": "stock"}]}, "sort[1].field"),
        ({"sort": {"field": "price", "order": "Up"}}, "sort"),
        ({"sort": {"order": "Ascending"}}, "sort[0].field"),
        ({"sort": "price"}, "sort"),
        ({"fields": "title"}, "fields"),
        ({"wildcardSearchEnabled": "maybe"}, "wildcardSearchEnabled"),
        ({"biasing": {"bringToTop": ["x"] * 1001}}, "biasing.bringToTop"),
        ({"biasing": {"influence": 11}}, "biasing.influence"),
        ({"biasing": {"biases": [{"name": "brand", "strength": "Huge"}]}}, "biasing"),
        ({"biasing": {"biases": [{"name": "price", "content": "1"}]}}, "biasing.biases[0]"),
        ({"restrictNavigation": {"name": "nope"}}, "restrictNavigation.name"),
        ({"restrictNavigation": {"name": "brand", "count": 0}}, "restrictNavigation.count"),
        ({"pre-filter": "brand:"}, "pre-filter"),
        ({"area": ""}, "area"),
        ({"collection": 7}, "collection"),
    ]
    for body, field in cases:
        err = error(client, auth, body)
        assert err.get("field", "").startswith(field), (body, err)

    for raw, ctype in ((b'{"query": ', "application/json"), (b"[1, 2]", "application/json")):
        r = client.post("/api/v1/search", content=raw, headers={**auth, "Content-Type": ctype})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["field"] == "body"


JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["price", "brand", "_relevance", "*", "Range", "Value", "ByIds", "(", "["]),
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
REFINEMENT = st.fixed_dictionaries(
    {"navigationName": st.sampled_from(["brand", "price", "nope"])},
    optional={
        "type": st.sampled_from(["Value", "Range"]) | JSON_LEAF,
        "value": JSON_LEAF,
        "low": JSON_LEAF,
        "high": JSON_LEAF,
        "exclude": JSON_LEAF,
    },
)
SEARCH_BODY = st.fixed_dictionaries(
    {},
    optional={
        "query": st.text(max_size=80) | JSON_LEAF,
        "refinements": st.lists(REFINEMENT, max_size=4) | JSON_VALUE,
        "fields": st.lists(st.text(max_size=8), max_size=3) | JSON_VALUE,
        "orFields": st.lists(st.sampled_from(["brand", "price", "x"]), max_size=2),
        "sort": st.fixed_dictionaries(
            {}, optional={"field": JSON_LEAF, "order": JSON_LEAF, "type": JSON_LEAF}
        )
        | JSON_VALUE,
        "skip": JSON_LEAF,
        "pageSize": JSON_LEAF,
        "pruneRefinements": JSON_LEAF,
        "wildcardSearchEnabled": JSON_LEAF,
        "restrictNavigation": JSON_VALUE,
        "biasing": st.fixed_dictionaries(
            {},
            optional={
                "bringToTop": JSON_VALUE,
                "restrictToIds": JSON_VALUE,
                "influence": JSON_LEAF,
                "biases": st.lists(
                    st.fixed_dictionaries(
                        {"name": st.sampled_from(["brand", "price"]) | JSON_LEAF},
                        optional={"content": JSON_LEAF, "strength": JSON_LEAF},
                    ),
                    max_size=3,
                ),
            },
        )
        | JSON_VALUE,
        "pre-filter": st.text(alphabet='brandpice:"()[]*TO ANDORNT10.-\\', max_size=60),
        "matchStrategy": JSON_VALUE,
        "area": JSON_LEAF,
        "collection": st.sampled_from(["default", "nope"]) | JSON_LEAF,
    },
)


def test_nothing_in_a_request_crashes_the_server(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "default", RECORDS, SETTINGS)

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(body=SEARCH_BODY | JSON_VALUE)
    def check(body: Any) -> None:
        for path, payload in (
            ("/api/v1/search", body),
            ("/api/v1/search/refinements", {"originalQuery": body, "navigationName": "brand"}),
        ):
            r = client.post(path, json=payload, headers=auth)
            assert r.status_code < 500, (payload, r.text)
            if r.status_code != 200:
                assert r.json()["error"]["message"], r.text

    check()


UNDERSCORED = [
    _rec(1, "USB-C hub", "Four ports, SKU_0000539", "Anker", 30),
    _rec(2, "usb_c cable", "One metre", "Anker", 9),
    _rec(3, "Walnut desk lamp", "A warm reading light", "Lumo", 40),
]


def test_a_word_with_an_underscore_is_split_as_the_records_are(
    client: TestClient, auth: dict[str, str]
) -> None:
    load(client, auth, "default", UNDERSCORED, SETTINGS)
    # Records hold "USB-C" and "usb_c" alike as the words usb and c; so does the query.
    for query in ("usb_c", "USB_C", "usb-c", "usb c"):
        assert set(ids(search(client, auth, query=query))) == {"p1", "p2"}, query
        assert set(ids(search(client, auth, query=query, wildcardSearchEnabled=True))) >= {
            "p1",
            "p2",
        }
    assert ids(search(client, auth, query="SKU_0000539")) == ["p1"]
    assert ids(search(client, auth, query="sku_0000539 usb_c")) == ["p1"]
    r = client.post(
        "/api/v1/search/refinements",
        json={"originalQuery": {"query": "usb_c"}, "navigationName": "brand"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert r.json()["navigation"]["refinements"][0]["count"] == 2


PRINTABLE_QUERY = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
UNICODE_QUERY = st.text(max_size=80)


def test_any_query_text_answers_200_or_400(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "default", UNDERSCORED, SETTINGS)

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        query=PRINTABLE_QUERY | UNICODE_QUERY | st.text(alphabet="ab_-. 9é", max_size=20),
        wildcard=st.booleans(),
    )
    def check(query: str, wildcard: bool) -> None:
        body = {"query": query, "wildcardSearchEnabled": wildcard}
        for path, payload in (
            ("/api/v1/search", body),
            ("/api/v1/search/refinements", {"originalQuery": body, "navigationName": "brand"}),
        ):
            r = client.post(path, json=payload, headers=auth)
            assert r.status_code in (200, 400), (payload, r.text)
            if r.status_code == 400:
                assert r.json()["error"]["field"].endswith("query"), r.text

    check()
