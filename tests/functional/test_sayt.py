"""GET /api/v1/sayt/search through HTTP: terms, navigations, products, forms, JSONP, auth."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from searchgate.demo import demo_settings
from searchgate.keys.scopes import Scope
from searchgate.runtime import Runtime
from tests.conftest import ManualClock, load
from tests.keyhelp import SYSTEM

SAYT = "/api/v1/sayt/search"


def _rec(rid: str, title: str, brand: str, cat: str, price: float, rating: float) -> dict[str, Any]:
    return {
        "id": rid,
        "title": title,
        "brand": brand,
        "category1": "Electronics",
        "category2": cat,
        "category3": cat,
        "price": price,
        "rating": rating,
        "reviews": 10,
        "colour": "Black",
        "inStock": True,
        "description": f"{title} by {brand}.",
        "url": f"https://shop.example.com/p/{rid}",
        "imageUrl": f"https://shop.example.com/img/{rid}.jpg",
        # Not among the demo settings' publicFields: must never reach a keyless caller.
        "supplierCost": price / 2,
    }


RECORDS = [
    _rec("s1", "Sony WH1000 Noise Cancelling Headphones", "Sony", "Headphones", 348, 4.7),
    _rec("s2", "Sony Pulse Wireless Headset", "Sony", "Headphones", 99, 4.1),
    _rec("s3", "Sony Bravia 55 Smart TV", "Sony", "TVs", 899, 4.4),
    _rec("b1", "Bose QuietComfort Headphones", "Bose", "Headphones", 279, 4.6),
    _rec("b2", "Bose SoundLink Flex Bluetooth Speaker", "Bose", "Speakers", 149, 4.8),
    _rec("c1", "Bosch 800 Series Induction Cooktop", "Bosch", "Cooktops", 1899, 4.2),
    _rec("a1", "Apple MacBook Air 13", "Apple", "Laptops", 999, 4.8),
    _rec("a2", "Apple MacBook Pro 14", "Apple", "Laptops", 1999, 4.9),
    _rec("g1", "Samsung Galaxy Tab S8", "Samsung", "Tablets", 699, 4.3),
    _rec("e1", "Beats Studio Headphones", "Beats", "Headphones", 59.99, 3.9),
]


@pytest.fixture
def shop(client: TestClient, auth: dict[str, str]) -> dict[str, str]:
    load(client, auth, "default", RECORDS, demo_settings())
    return auth


def sayt(client: TestClient, headers: dict[str, str] | None, **params: Any) -> Any:
    return client.get(SAYT, params=params, headers=headers or {})


def ok(client: TestClient, headers: dict[str, str] | None, **params: Any) -> dict[str, Any]:
    r = sayt(client, headers, **params)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()["result"]
    return result


def values(result: dict[str, Any]) -> list[str]:
    return [t["value"] for t in result["searchTerms"]]


def navs(result: dict[str, Any]) -> dict[str, list[str]]:
    return {n["name"]: n["values"] for n in result["navigations"]}


def bad(r: Any, field: str) -> str:
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["field"] == field, error
    message: str = error["message"]
    return message


def test_response_has_the_exact_shape_of_the_spec(client: TestClient, shop: dict[str, str]) -> None:
    before = int(time.time() * 1000)
    r = sayt(client, shop, query="mac", productItems=2)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"status", "result"}
    status = body["status"]
    assert set(status) == {"code", "internalCode", "message", "additionalInfo", "serverTimeStamp"}
    assert (status["code"], status["internalCode"], status["message"]) == (200, 0, "OK")
    assert before <= status["serverTimeStamp"] <= int(time.time() * 1000)
    result = body["result"]
    assert set(result) == {"stats", "searchTerms", "navigations", "products"}
    assert result["stats"] == {
        "navigationCount": len(result["navigations"]),
        "searchCount": len(result["searchTerms"]),
        "productCount": 2,
        "autocompleteResponse": True,
        "productSearchResponse": True,
    }
    assert result["searchTerms"] == [
        {
            "value": "macbook",
            "additionalInfo": {},
            "distanceToSearch": 4,
            "distanceToDepluralized": 4,
        }
    ]
    for p in result["products"]:
        assert set(p) == {"_id", "_u", "_t", "allMeta", "collection"}
        assert p["collection"] == "default"
        assert p["_u"] == f"https://shop.example.com/p/{p['_id']}"
        assert p["_t"] == p["allMeta"]["title"]
    assert {p["_id"] for p in result["products"]} == {"a1", "a2"}


def test_multi_word_prefix_completes_among_records_with_the_earlier_words(
    client: TestClient, shop: dict[str, str]
) -> None:
    sony = values(ok(client, shop, query="sony hea"))
    assert set(sony) == {"sony headphones", "sony headset"}
    # Bose makes headphones but no headset: its completions come from its own records.
    assert values(ok(client, shop, query="Bose HEA")) == ["bose headphones"]
    assert values(ok(client, shop, query="bosch hea")) == []
    # The earlier word is never suggested again as the completion of the last one.
    assert "sony sony" not in values(ok(client, shop, query="sony s"))


def test_popular_queries_come_first_ordered_by_how_often_they_were_searched(
    client: TestClient, shop: dict[str, str], rt: Runtime
) -> None:
    assert values(ok(client, shop, query="bo"))[:2] != ["bosch cooktop", "bose speaker"]
    searches = {"bose speaker": 1, "bosch cooktop": 3, "bozzle": 5}
    for query, times in searches.items():
        for _ in range(times):
            r = client.post("/api/v1/search", json={"query": query}, headers=shop)
            assert r.status_code == 200, r.text
    rt.query_log.flush()
    got = values(ok(client, shop, query="bo", searchItems=5))
    # Most searched first; then indexed words; a query that found nothing is never kept.
    assert got[:2] == ["bosch cooktop", "bose speaker"]
    assert "bozzle" not in got
    assert set(got[2:]) <= {"bose", "bosch", "bookshelf", "bluetooth"}
    assert "bose" in got[2:]
    # A multi-word prefix finds them too, and typing further narrows to the match.
    assert values(ok(client, shop, query="bosch c"))[0] == "bosch cooktop"
    assert values(ok(client, shop, query="bose s", searchItems=1)) == ["bose speaker"]
    # After a space the next word is still open: what people searched, not "bose" again.
    assert values(ok(client, shop, query="bose ")) == ["bose speaker"]


def test_navigations_hold_configured_values_matching_a_typed_word(
    client: TestClient, shop: dict[str, str]
) -> None:
    # demo settings: SAYT navigations are brand and category2.
    found = navs(ok(client, shop, query="bo"))
    assert found == {"brand": ["Bose", "Bosch"]}  # Bose has more records
    found = navs(ok(client, shop, query="sony hea"))
    assert found == {"brand": ["Sony"], "category2": ["Headphones"]}
    assert navs(ok(client, shop, query="bo", navigationItems=1)) == {"brand": ["Bose"]}
    assert ok(client, shop, query="bo", navigationItems=0)["navigations"] == []
    assert navs(ok(client, shop, query="bo", alphabetize="true")) == {"brand": ["Bosch", "Bose"]}
    nav = ok(client, shop, query="lap")["navigations"][0]
    assert nav == {"name": "category2", "displayName": "Category", "values": ["Laptops"]}


def test_products_match_every_word_as_a_prefix(client: TestClient, shop: dict[str, str]) -> None:
    assert ok(client, shop, query="sony hea")["products"] == []  # productItems defaults to 0
    products = ok(client, shop, query="sony hea", productItems=10)["products"]
    assert {p["_id"] for p in products} == {"s1", "s2"}
    products = ok(client, shop, query="hea", productItems=2)["products"]
    assert len(products) == 2
    products = ok(client, shop, query="bo sp", productItems=10)["products"]
    assert [p["_id"] for p in products] == ["b2"]


def headphones_catalog() -> list[dict[str, Any]]:
    """A catalog where "headphones" is the title word of 140 products and a word of other
    products' descriptions: a title match must rank above a description match."""
    brands = ["Sony", "Bose", "Beats", "JBL", "Sennheiser", "Apple", "Skullcandy"]
    kinds = ["Wireless Over-Ear", "Noise Cancelling", "Studio Monitor", "Kids Foldable"]
    headphones = [
        {
            "id": f"h{i}",
            "title": f"{brands[i % 7]} {kinds[i % 4]} Headphones H{100 + i} with Carry Case",
            "brand": brands[i % 7],
            "description": "Closed back, 30 hours of battery, fast charging over USB-C.",
        }
        for i in range(140)
    ]
    others = [
        {
            "id": "blender",
            "title": "Blender",
            "brand": "Vita",
            "description": "Quieter than headphones",
        },
        {"id": "monitor", "title": "Monitor 27", "brand": "Dell", "description": "Headphones jack"},
        {"id": "desk", "title": "Desk", "brand": "Oak", "description": "Hook for headphones"},
        {"id": "case", "title": "Hard case", "brand": "Pelican", "description": "Fits headphones"},
    ]
    return others + headphones


HEADPHONES_SETTINGS = {
    "idField": "id",
    "titleField": "title",
    "searchable": [
        {"name": "title", "weight": 3},
        {"name": "brand", "weight": 2},
        {"name": "description", "weight": 1.5},
    ],
    "sayt": {"completionFields": ["title"]},
}


@pytest.mark.parametrize("typed", ["headphones", "headph", "Headphones"])
def test_product_previews_rank_title_matches_above_weaker_fields(
    client: TestClient, auth: dict[str, str], typed: str
) -> None:
    load(client, auth, "default", headphones_catalog(), HEADPHONES_SETTINGS)
    products = ok(client, auth, query=typed, productItems=4)["products"]
    assert len(products) == 4
    assert all(p["_id"].startswith("h") for p in products), [p["_t"] for p in products]
    # Found by a weaker field only, they still come when nothing stronger matches.
    products = ok(client, auth, query=f"{typed} quiet", productItems=4)["products"]
    assert [p["_id"] for p in products] == ["blender"]


def test_a_word_with_an_underscore_is_split_as_the_records_are(
    client: TestClient, auth: dict[str, str]
) -> None:
    records = [
        {**_rec("u1", "Anker USB-C Hub", "Anker", "Hubs", 30, 4.5), "sku": "SKU_0000539"},
        {**_rec("u2", "Anker usb_c Cable", "Anker", "Cables", 9, 4.1), "sku": "SKU_0000540"},
        *RECORDS,
    ]
    load(client, auth, "default", records, demo_settings())
    for typed in ("usb_c", "USB_C", "usb_", "anker usb_c"):
        result = ok(client, auth, query=typed, productItems=5, searchItems=5, navigationItems=5)
        assert {p["_id"] for p in result["products"]} == {"u1", "u2"}, typed
    assert "usb c" in values(ok(client, auth, query="usb_c", searchItems=5))
    assert ok(client, auth, query="SKU_0000539", productItems=5)["products"] == []


def test_any_typed_text_answers_200_or_400(client: TestClient, shop: dict[str, str]) -> None:
    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        query=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
        | st.text(max_size=80)
        | st.text(alphabet="ab_-. 9é", max_size=20),
        fuzzy=st.booleans(),
    )
    def check(query: str, fuzzy: bool) -> None:
        r = sayt(
            client,
            shop,
            query=query,
            fuzzy=str(fuzzy).lower(),
            searchItems=5,
            navigationItems=5,
            productItems=5,
        )
        assert r.status_code in (200, 400), (query, r.text)
        if r.status_code == 400:
            assert r.json()["error"]["field"] == "query", r.text

    check()


def test_fuzzy_still_suggests_for_a_typo(client: TestClient, shop: dict[str, str]) -> None:
    plain = ok(client, shop, query="macbok", productItems=5)
    assert plain["searchTerms"] == [] and plain["products"] == []
    fuzzy = ok(client, shop, query="macbok", productItems=5, fuzzy="true")
    assert values(fuzzy) == ["macbook"]
    assert fuzzy["searchTerms"][0]["distanceToSearch"] == 1
    assert {p["_id"] for p in fuzzy["products"]} == {"a1", "a2"}
    assert navs(ok(client, shop, query="sonny", fuzzy="true")) == {"brand": ["Sony"]}


def test_alphabetize_orders_terms(client: TestClient, shop: dict[str, str]) -> None:
    unordered = values(ok(client, shop, query="b", searchItems=10))
    ordered = values(ok(client, shop, query="b", searchItems=10, alphabetize="true"))
    assert sorted(unordered) == ordered
    assert len(ordered) >= 4


def test_refinements_narrow_products(client: TestClient, shop: dict[str, str]) -> None:
    def ids(refinements: str) -> set[str]:
        result = ok(client, shop, query="hea", productItems=20, refinements=refinements)
        return {p["_id"] for p in result["products"]}

    assert ids("") == {"s1", "s2", "b1", "e1"}
    assert ids("~Brand=Bose") == {"b1"}  # the protocol's capitalised name works
    assert ids("~brand=Sony~price:50..200") == {"s2"}
    assert ids("~price:..100") == {"s2", "e1"}
    assert ids("~price:300..") == {"s1"}
    # brand is a multi-select navigation: two of its values widen the result.
    assert ids("~brand=Sony~brand=Beats") == {"s1", "s2", "e1"}
    assert ids("~brand=Sony~category2=TVs") == set()


@pytest.mark.parametrize(
    "refinements",
    [
        "~brand",
        "~brand=",
        "~nosuch=1",
        "~price=10",
        "~brand:1..2",
        "~price:10",
        "~price:abc..20",
        "~price:10..nan",
        "~price:..",
        "~price:90..10",
    ],
)
def test_malformed_refinements_are_400(
    client: TestClient, shop: dict[str, str], refinements: str
) -> None:
    r = sayt(client, shop, query="hea", productItems=5, refinements=refinements)
    assert "refinements" in bad(r, "refinements")


def test_product_sort(client: TestClient, shop: dict[str, str]) -> None:
    def prices(sort: str) -> list[float]:
        result = ok(client, shop, query="hea", productItems=10, productSort=sort)
        return [p["allMeta"]["price"] for p in result["products"]]

    assert prices("~price:A") == [59.99, 99, 279, 348]
    assert prices("~price:D") == [348, 279, 99, 59.99]
    ratings = ok(client, shop, query="b", productItems=10, productSort="~rating:D~price:A")
    keys = [(-p["allMeta"]["rating"], p["allMeta"]["price"]) for p in ratings["products"]]
    assert keys == sorted(keys) and len(keys) >= 3


@pytest.mark.parametrize(
    "sort", ["~price:X", "~price", "price:ascending", "~nosuch:A", "~description:D"]
)
def test_malformed_product_sort_is_400(client: TestClient, shop: dict[str, str], sort: str) -> None:
    message = bad(sayt(client, shop, query="hea", productItems=5, productSort=sort), "productSort")
    assert "productSort" in message


@pytest.mark.parametrize("word", ["true", "True", "1", "yes", "on"])
def test_boolean_parameters_take_the_usual_spellings(
    client: TestClient, shop: dict[str, str], word: str
) -> None:
    assert values(ok(client, shop, query="macbok", fuzzy=word)) == ["macbook"]
    off = word.replace("true", "false").replace("True", "False")
    off = {"1": "0", "yes": "no", "on": "off"}.get(off, off)
    assert values(ok(client, shop, query="macbok", fuzzy=off)) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("fuzzy", "maybe"), ("alphabetize", ""), ("searchItems", "2.5"), ("productItems", "")],
)
def test_a_malformed_parameter_is_a_400_naming_it(
    client: TestClient, shop: dict[str, str], field: str, value: str
) -> None:
    message = bad(sayt(client, shop, query="b", **{field: value}), field)
    assert message.startswith(f"{field}: ")


def test_sayt_is_counted_under_its_route_in_the_metrics(
    client: TestClient, shop: dict[str, str]
) -> None:
    ok(client, shop, query="so")
    text = client.get("/metrics").text
    assert 'route="/api/v1/sayt/search",status="200"' in text


def test_the_openapi_document_types_every_sayt_parameter(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    params = {p["name"]: p for p in spec["paths"]["/api/v1/sayt/search"]["get"]["parameters"]}
    assert params["query"]["required"] is True
    assert params["searchItems"]["schema"] == {"type": "integer", "default": 5}
    assert params["fuzzy"]["schema"] == {"type": "boolean", "default": False}
    assert params["callback"]["schema"] == {"type": "string"}


@pytest.mark.parametrize("field", ["searchItems", "navigationItems", "productItems"])
@pytest.mark.parametrize("value", ["-1", "51", "many"])
def test_item_counts_are_bounded(
    client: TestClient, shop: dict[str, str], field: str, value: str
) -> None:
    bad(sayt(client, shop, query="b", **{field: value}), field)


def test_item_counts_limit_the_answer(client: TestClient, shop: dict[str, str]) -> None:
    assert len(values(ok(client, shop, query="b", searchItems=2))) == 2
    assert ok(client, shop, query="b", searchItems=0)["searchTerms"] == []
    products = ok(client, shop, query="b", productItems=50)["products"]
    assert {p["_id"] for p in products} == {"b1", "b2", "c1", "e1", "s3"}  # s3: Bravia
    result = ok(client, shop, query="b", searchItems=0, navigationItems=0)
    assert result["stats"]["autocompleteResponse"] is False


def test_missing_or_blank_query_is_400(client: TestClient, shop: dict[str, str]) -> None:
    bad(client.get(SAYT, headers=shop), "query")
    bad(sayt(client, shop, query="   "), "query")
    bad(sayt(client, shop, query="x" * 600), "query")
    bad(sayt(client, shop, query="b", area="Nowhere"), "area")
    r = sayt(client, shop, query="b", collection="nosuch")
    assert r.status_code == 404 and r.json()["error"]["field"] == "collection"


def test_jsonp_wraps_the_answer_for_a_valid_callback(
    client: TestClient, shop: dict[str, str]
) -> None:
    r = sayt(client, shop, query="mac", callback="shop.sayt.done_1")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/javascript")
    assert r.headers["x-content-type-options"] == "nosniff"
    prefix, suffix = b"/**/shop.sayt.done_1(", b");"
    assert r.content.startswith(prefix) and r.content.endswith(suffix)
    body = orjson.loads(r.content[len(prefix) : -len(suffix)])
    assert body["result"]["searchTerms"][0]["value"] == "macbook"


def test_jsonp_escapes_line_separators(client: TestClient, shop: dict[str, str]) -> None:
    record = _rec("z1", "Zed\u2028Lamp\u2029Pro", "Zed", "Lamps", 10, 4)
    r = client.post("/api/v1/collections/default/records?wait=true", json=[record], headers=shop)
    assert r.status_code == 200, r.text
    r = sayt(client, shop, query="zed", productItems=1, callback="cb")
    assert r.status_code == 200
    # Raw U+2028/2029 ended a JavaScript string literal before ES2019.
    assert "\u2028".encode() not in r.content and "\u2029".encode() not in r.content
    assert b"Zed\\u2028Lamp\\u2029Pro" in r.content
    body = orjson.loads(r.content[len(b"/**/cb(") : -2])
    assert body["result"]["products"][0]["_t"] == "Zed\u2028Lamp\u2029Pro"


@pytest.mark.parametrize(
    "callback", ["alert(1)//", "cb;alert(1)", "1abc", "cb\n", "a..b", "<script>", "", "a" * 65]
)
def test_malicious_callbacks_are_400(
    client: TestClient, shop: dict[str, str], callback: str
) -> None:
    r = sayt(client, shop, query="mac", callback=callback)
    bad(r, "callback")
    assert r.headers["content-type"].startswith("application/json")
    assert "alert" not in r.text


# --- authorisation -----------------------------------------------------------------------


def test_a_key_needs_the_sayt_scope(client: TestClient, shop: dict[str, str], rt: Runtime) -> None:
    search_only = rt.services.keys.create(SYSTEM, "search-only", frozenset({Scope.SEARCH})).secret
    r = sayt(client, {"X-Client-Key": search_only}, query="mac")
    assert r.status_code == 403
    error = r.json()["error"]
    assert error["code"] == "scope_missing" and error["scope"] == "sayt"
    assert "sayt" in error["message"] and search_only not in r.text
    sayt_only = rt.services.keys.create(SYSTEM, "sayt-only", frozenset({Scope.SAYT})).secret
    assert values(ok(client, {"X-Client-Key": sayt_only}, query="mac")) == ["macbook"]
    # The same key cannot search.
    r = client.post("/api/v1/search", json={"query": "mac"}, headers={"X-Client-Key": sayt_only})
    assert r.status_code == 403 and r.json()["error"]["scope"] == "search"


def test_no_key_is_401_while_sayt_is_not_public(client: TestClient, shop: dict[str, str]) -> None:
    r = sayt(client, None, query="mac")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "missing_key"
    assert r.headers["www-authenticate"].startswith("Bearer")
    # An unknown collection gets the same answer: no key, no hint of what exists.
    r = sayt(client, None, query="mac", collection="nosuch")
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_key"


def _go_public(client: TestClient, auth: dict[str, str], public_fields: list[str]) -> None:
    settings = demo_settings()
    settings["sayt"] = {**settings["sayt"], "public": True, "publicFields": public_fields}
    r = client.put("/api/v1/collections/default", json=settings, headers=auth)
    assert r.status_code == 200, r.text


def test_public_sayt_answers_without_a_key_with_only_public_fields(
    client: TestClient, shop: dict[str, str]
) -> None:
    _go_public(client, shop, ["title", "url", "price"])
    r = sayt(client, None, query="mac", productItems=5)
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == "*"
    products = r.json()["result"]["products"]
    assert {p["_id"] for p in products} == {"a1", "a2"}
    for p in products:
        assert set(p) == {"_id", "_u", "_t", "allMeta", "collection"}
        assert set(p["allMeta"]) == {"title", "url", "price"}
        assert "supplierCost" not in r.text
    # With a key, the whole record as usual.
    keyed = ok(client, shop, query="mac", productItems=5)["products"]
    assert all("supplierCost" in p["allMeta"] for p in keyed)


def test_public_sayt_shows_title_and_url_only_when_they_are_public(
    client: TestClient, shop: dict[str, str]
) -> None:
    _go_public(client, shop, ["price"])
    r = sayt(client, None, query="mac", productItems=5)
    assert r.status_code == 200, r.text
    for p in r.json()["result"]["products"]:
        assert set(p) == {"_id", "allMeta", "collection"}
        assert set(p["allMeta"]) == {"price"}
    assert "MacBook Air" not in r.text and "shop.example.com" not in r.text


def test_public_sayt_still_refuses_keys_in_urls_and_checks_presented_keys(
    client: TestClient, shop: dict[str, str]
) -> None:
    _go_public(client, shop, ["title"])
    key = shop["Authorization"].removeprefix("Bearer ")
    r = sayt(client, None, query="mac", clientKey=key)
    assert r.status_code == 400 and r.json()["error"]["code"] == "key_in_url"
    assert key not in r.text
    r = sayt(client, {"Authorization": "Bearer sgk_wrong"}, query="mac")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_key"


@pytest.mark.manual_clock
def test_making_sayt_private_again_takes_effect_at_once(
    client: TestClient, shop: dict[str, str], app_clock: ManualClock
) -> None:
    _go_public(client, shop, ["title"])
    assert sayt(client, None, query="mac").status_code == 200
    r = client.put("/api/v1/collections/default", json=demo_settings(), headers=shop)
    assert r.status_code == 200
    # The stored SAYT settings are reused for up to a second.
    assert sayt(client, None, query="mac").status_code == 200
    app_clock.advance(seconds=1)
    assert sayt(client, None, query="mac").status_code == 401
