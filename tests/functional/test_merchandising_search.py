"""Merchandising through the data plane, in process: what a published document does to
search, refinements and SAYT, the draft seen only by previews, and rule windows on an
injected clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from searchgate.merchandising.document import MerchandisingDocument
from searchgate.permissions import Actor
from searchgate.runtime import Runtime
from searchgate.search.request import parse_search_request
from tests.conftest import ManualClock, load, make_user
from tests.functional.console_support import sign_in, use_https

AREA = "Production"
SETTINGS: dict[str, Any] = {
    "idField": "id",
    "titleField": "title",
    "searchable": [{"name": "title", "weight": 2}, {"name": "category"}],
    "navigations": [{"name": "brand"}, {"name": "category"}, {"name": "colour"}],
    "sortable": ["price"],
}


def catalog() -> list[dict[str, Any]]:
    out = []
    brands = ["Sony", "Acme", "Lumo"]
    for i in range(30):
        out.append(
            {
                "id": f"t{i:02d}",
                "title": f"{brands[i % 3]} television {i}",
                "brand": brands[i % 3],
                "category": "tv",
                "colour": ["black", "white"][i % 2],
                "price": 100 + i,
            }
        )
    out.append(
        {"id": "s1", "title": "Oak stand for screens", "brand": "Woody", "category": "stand"}
    )
    out.append({"id": "c1", "title": "Sony tv cable", "brand": "Sony", "category": "cable"})
    return out


@pytest.fixture
def shop(client: TestClient, auth: dict[str, str]) -> TestClient:
    load(client, auth, "products", catalog(), SETTINGS)
    return client


def publish(rt: Runtime, parts: dict[str, Any], area: str = AREA) -> None:
    doc = MerchandisingDocument.model_validate(parts)
    merch = rt.services.merchandising
    merch.save_draft(Actor.system(), area, doc)
    merch.publish(Actor.system(), area, note="test")


def search(
    client: TestClient, auth: dict[str, str], status: int = 200, **body: Any
) -> dict[str, Any]:
    body.setdefault("collection", "products")
    r = client.post("/api/v1/search", json=body, headers=auth)
    assert r.status_code == status, r.text
    out: dict[str, Any] = r.json()
    return out


def ids(body: dict[str, Any]) -> list[str]:
    return [rec["_id"] for rec in body["records"]]


def rule(name: str, query: str, **actions: Any) -> dict[str, Any]:
    return {"name": name, "triggers": [{"type": "queryEquals", "value": query}], **actions}


def test_synonyms_widen_search_refinements_and_sayt_and_show_in_rewrites(
    shop: TestClient, auth: dict[str, str], rt: Runtime
) -> None:
    before = search(shop, auth, query="telly", disableAutocorrection=True)
    assert before["totalRecordCount"] == 0
    publish(rt, {"synonyms": [{"name": "tv", "terms": ["telly", "television"]}]})
    after = search(shop, auth, query="telly", disableAutocorrection=True)
    assert after["totalRecordCount"] == 30
    assert after["rewrites"] == ["synonym: telly => television"]
    r = shop.post(
        "/api/v1/search/refinements",
        json={
            "originalQuery": {"collection": "products", "query": "telly"},
            "navigationName": "brand",
        },
        headers=auth,
    )
    assert r.status_code == 200, r.text
    counts = {v["value"]: v["count"] for v in r.json()["navigation"]["refinements"]}
    assert counts == {"Sony": 10, "Acme": 10, "Lumo": 10}
    sayt = shop.get(
        "/api/v1/sayt/search",
        params={"query": "telly", "collection": "products", "productItems": 4},
        headers=auth,
    )
    assert sayt.status_code == 200, sayt.text
    assert len(sayt.json()["result"]["products"]) == 4


def test_pins_take_their_positions_on_every_page_and_hidden_records_never_show(
    shop: TestClient, auth: dict[str, str], rt: Runtime
) -> None:
    plain = [
        i
        for p in range(4)
        for i in ids(search(shop, auth, query="television", skip=p * 10, pageSize=10))
    ]
    assert len(plain) == 30
    publish(
        rt,
        {
            "rules": [
                rule(
                    "promote",
                    "television",
                    pins=[{"id": "t29", "position": 1}, {"id": "t17", "position": 12}],
                    hide=["t05"],
                ),
                rule("more", "television", priority=200, pins=[{"id": "t03", "position": 1}]),
            ]
        },
    )
    pages = [ids(search(shop, auth, query="television", skip=p * 5, pageSize=5)) for p in range(7)]
    got = [i for page in pages for i in page]
    rest = [i for i in plain if i not in {"t29", "t17", "t03", "t05"}]
    # t03's position 1 is taken by the earlier rule: it goes to the next free one.
    want = ["t29", "t03", *rest[:9], "t17", *rest[9:]]
    assert got == want
    assert "t05" not in got
    one = search(shop, auth, query="television", pageSize=30)
    assert one["totalRecordCount"] == 29 and ids(one) == want
    sayt = shop.get(
        "/api/v1/sayt/search",
        params={"query": "television", "collection": "products", "productItems": 50},
        headers=auth,
    )
    assert "t05" not in [p["_id"] for p in sayt.json()["result"]["products"]]
    assert len(sayt.json()["result"]["products"]) == 29


def test_a_redirect_answers_with_no_records_and_the_first_redirect_wins(
    shop: TestClient, auth: dict[str, str], rt: Runtime
) -> None:
    publish(
        rt,
        {
            "rules": [
                rule("second", "stand", priority=2, redirect="https://shop.example/stands"),
                rule("first", "stand", priority=1, redirect="/help/stands"),
            ]
        },
    )
    out = search(shop, auth, query="Stand", debug=True)
    assert out["redirect"] == "/help/stands"
    assert out["records"] == [] and out["totalRecordCount"] == 0
    assert out["availableNavigation"] == []
    second = next(r for r in out["debug"]["rules"] if r["name"] == "second")
    assert second["overridden"] == ["redirect: rule 'first' came first"]
    assert search(shop, auth, query="stands")["redirect"] is None


def test_custom_url_params_and_selected_navigations_trigger_rules(
    shop: TestClient, auth: dict[str, str], rt: Runtime
) -> None:
    publish(
        rt,
        {
            "rules": [
                {
                    "name": "berlin store",
                    "triggers": [{"type": "customUrlParam", "key": "store", "value": "berlin"}],
                    "filter": "brand:Acme",
                    "template": {
                        "name": "berlin",
                        "zones": [
                            {"name": "banner", "type": "Rich_Content", "content": "<b>Berlin</b>"},
                            {"name": "picks", "type": "Record", "ids": ["s1", "t05", "nope"]},
                        ],
                    },
                },
                {
                    "name": "white",
                    "triggers": [
                        {"type": "navigationSelected", "navigation": "colour", "value": "white"}
                    ],
                    "navigations": ["colour", "brand"],
                },
            ]
        },
    )
    plain = search(shop, auth, query="television")
    assert plain["template"] == {"name": "default", "ruleName": None, "zones": {}}
    berlin = search(
        shop, auth, query="television", customUrlParams=[{"key": "store", "value": "berlin"}]
    )
    assert berlin["totalRecordCount"] == 10
    assert {r["allMeta"]["brand"] for r in berlin["records"]} == {"Acme"}
    assert berlin["template"]["name"] == "berlin"
    assert berlin["template"]["ruleName"] == "berlin store"
    zones = berlin["template"]["zones"]
    assert zones["banner"] == {
        "name": "banner",
        "type": "Rich_Content",
        "richContent": "<b>Berlin</b>",
    }
    assert [r["_id"] for r in zones["picks"]["records"]] == ["s1", "t05"]
    white = search(
        shop,
        auth,
        query="television",
        refinements=[{"navigationName": "colour", "type": "Value", "value": "white"}],
    )
    assert [n["name"] for n in white["availableNavigation"]] == ["brand"]  # colour is pruned
    white_or = search(
        shop,
        auth,
        query="television",
        pruneRefinements=False,
        refinements=[{"navigationName": "colour", "type": "Value", "value": "white"}],
    )
    assert [n["name"] for n in white_or["availableNavigation"]] == ["colour", "brand"]


def test_biasing_profiles_are_chosen_by_name_or_default_and_unknown_names_are_400(
    shop: TestClient, auth: dict[str, str], rt: Runtime
) -> None:
    assert (
        search(shop, auth, status=400, query="x", biasingProfile="brands")["error"]["field"]
        == "biasingProfile"
    )
    publish(
        rt,
        {
            "biasingProfiles": [
                {
                    "name": "lumo first",
                    "biases": [
                        {"name": "brand", "content": "Lumo", "strength": "Absolute_Increase"}
                    ],
                },
                {
                    "name": "sony first",
                    "biases": [
                        {"name": "brand", "content": "Sony", "strength": "Absolute_Increase"}
                    ],
                },
            ],
            "defaultBiasingProfile": "sony first",
        },
    )
    default = search(shop, auth, query="television")
    assert default["biasingProfile"] == "sony first"
    assert {r["allMeta"]["brand"] for r in default["records"]} == {"Sony"}
    lumo = search(shop, auth, query="television", biasingProfile="lumo first")
    assert lumo["biasingProfile"] == "lumo first"
    assert {r["allMeta"]["brand"] for r in lumo["records"]} == {"Lumo"}
    bad = search(shop, auth, status=400, query="television", biasingProfile="acme first")
    assert bad["error"]["field"] == "biasingProfile"
    msg = bad["error"]["message"]
    assert "'acme first'" in msg and "lumo first, sony first" in msg


@pytest.mark.manual_clock
def test_a_rule_stops_firing_at_its_to_time(
    shop: TestClient, auth: dict[str, str], rt: Runtime, app_clock: ManualClock
) -> None:
    end = app_clock() + timedelta(hours=2)
    publish(
        rt,
        {"rules": [rule("weekend", "television", redirect="/weekend", activeTo=end.isoformat())]},
    )
    assert search(shop, auth, query="television")["redirect"] == "/weekend"
    app_clock.advance(hours=2, seconds=-1)
    assert search(shop, auth, query="television")["redirect"] == "/weekend"
    app_clock.advance(seconds=1)
    out = search(shop, auth, query="television", debug=True)
    assert out["redirect"] is None and out["totalRecordCount"] == 30
    assert out["debug"]["rules"][0]["why"].startswith("no longer active")


def test_the_draft_changes_only_previews_and_explains_itself(
    shop: TestClient, auth: dict[str, str], rt: Runtime
) -> None:
    publish(rt, {"synonyms": [{"name": "tv", "terms": ["telly", "television"]}]})
    merch = rt.services.merchandising
    draft = MerchandisingDocument.model_validate(
        {
            "synonyms": [{"name": "tv", "terms": ["telly", "television"]}],
            "stopWords": [{"name": "en", "words": ["the"]}],
            "rules": [rule("hide sony", "the telly", hide=["t00", "t03"], filter="category:tv")],
            "relatedQueries": [{"name": "tv", "query": "the telly", "related": ["tv stand"]}],
        }
    )
    merch.save_draft(Actor.system(), AREA, draft)
    req = parse_search_request({"collection": "products", "query": "the telly", "pageSize": 50})
    live = rt.preview.search(req)
    preview = rt.preview.search(req, draft=True)
    assert live["totalRecordCount"] == 0  # "the" is not a stop word yet: no record holds it
    assert "debug" not in live
    assert preview["totalRecordCount"] == 28
    assert preview["relatedQueries"] == ["tv stand"]
    assert preview["rewrites"] == ["synonym: telly => television", "stop words dropped: the"]
    explained = preview["debug"]
    assert explained["merchandising"] == {"version": "draft"}
    assert explained["stopWords"] == ["the"]
    assert explained["rules"][0]["fired"] and explained["rules"][0]["applied"] == ["filter", "hide"]
    assert explained["skipped"] == []
    # Shoppers still get the published version.
    assert search(shop, auth, query="the telly")["totalRecordCount"] == 0


def test_a_rule_part_the_collection_cannot_hold_is_skipped_and_named(
    shop: TestClient, auth: dict[str, str], rt: Runtime
) -> None:
    publish(
        rt,
        {
            "rules": [
                rule(
                    "bad parts",
                    "television",
                    filter="size:[1 TO 2]",
                    biases=[{"name": "material", "content": "oak", "strength": "Strong_Increase"}],
                    pins=[{"id": "t10", "position": 1}],
                )
            ]
        },
    )
    out = search(shop, auth, query="television", debug=True)
    assert out["totalRecordCount"] == 30 and ids(out)[0] == "t10"
    assert len(out["debug"]["skipped"]) == 2
    assert "rule 'bad parts': filter not applied" in out["debug"]["skipped"][0]
    assert "bias on 'material' not applied" in out["debug"]["skipped"][1]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    profile=st.one_of(st.none(), st.text(max_size=140), st.integers(), st.lists(st.text())),
    params=st.one_of(
        st.lists(
            st.fixed_dictionaries(
                {
                    "key": st.text(max_size=20),
                    "value": st.one_of(
                        st.text(),
                        st.integers(),
                        st.none(),
                        st.floats(allow_nan=False, allow_infinity=False),
                    ),
                }
            ),
            max_size=5,
        ),
        st.text(),
        st.dictionaries(st.text(), st.text()),
    ),
    debug=st.one_of(st.booleans(), st.text(max_size=5), st.none()),
    query=st.text(max_size=60),
)
def test_any_merchandising_input_answers_2xx_or_4xx(
    shop: TestClient,
    auth: dict[str, str],
    rt: Runtime,
    profile: Any,
    params: Any,
    debug: Any,
    query: str,
) -> None:
    if not rt.services.merchandising.live(AREA):
        publish(
            rt,
            {
                "biasingProfiles": [
                    {
                        "name": "p",
                        "biases": [
                            {"name": "brand", "content": "Sony", "strength": "Weak_Increase"}
                        ],
                    }
                ],
                "synonyms": [{"name": "tv", "terms": ["tv", "television"]}],
                "rules": [
                    {
                        "name": "r",
                        "triggers": [{"type": "customUrlParam", "key": "k", "value": "v"}],
                        "pins": [{"id": "t01"}],
                    }
                ],
            },
        )
    body: dict[str, Any] = {"collection": "products", "query": query, "customUrlParams": params}
    if profile is not None:
        body["biasingProfile"] = profile
    if debug is not None:
        body["debug"] = debug
    r = shop.post("/api/v1/search", json=body, headers=auth)
    assert r.status_code in (200, 400), r.text


def test_rules_that_fire_and_redirect_reach_the_analytics(
    shop: TestClient, auth: dict[str, str], rt: Runtime
) -> None:
    publish(
        rt,
        {
            "rules": [
                rule("help", "returns", redirect="/help/returns"),
                {
                    "name": "tvs",
                    "triggers": [{"type": "queryContains", "value": "television"}],
                    "hide": ["t01"],
                },
            ]
        },
    )
    for _ in range(3):
        search(shop, auth, query="returns")
    for query in ("television", "sony television", "stand"):
        search(shop, auth, query=query)
    rt.query_log.flush()
    report = rt.services.analytics.report(7, area=AREA, collection="products")
    fired = {(r.rule, r.searches, r.redirects) for r in report.rules}
    assert fired == {("help", 3, 3), ("tvs", 2, 0)}
    assert [(r.rule, r.redirects) for r in report.redirects] == [("help", 3)]
    # Redirected searches were answered: not zero-result searches.
    assert report.searches == 6 and report.zero_results == 0
    assert [q.query for q in report.top_zero] == []


def test_the_search_preview_says_what_the_merchandising_did(shop: TestClient, rt: Runtime) -> None:
    publish(
        rt,
        {
            "synonyms": [{"name": "tv", "terms": ["telly", "television"]}],
            "rules": [rule("help", "returns", redirect="https://shop.example/help?a=1&b=2")],
        },
    )
    use_https(shop)
    make_user(rt.services, "mia@example.com", "merchandiser")
    sign_in(shop, "mia@example.com")
    page = shop.get("/search", params={"collection": "products", "q": "returns"}).text
    assert 'data-testid="redirect">https://shop.example/help?a=1&amp;b=2<' in page
    assert "shoppers get no records" in page
    page = shop.get("/search", params={"collection": "products", "q": "telly"}).text
    assert "synonym: telly =&gt; television" in page
    why = '/areas/Production/merchandising/preview?q=telly&amp;collection=products"'
    assert why in page
    assert (
        shop.get("/areas/Production/merchandising/preview?q=telly&collection=products").status_code
        == 200
    )
    plain = shop.get("/search", params={"collection": "products", "q": "oak"}).text
    assert 'data-testid="merchandising"' not in plain
