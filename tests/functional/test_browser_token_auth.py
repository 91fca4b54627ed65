"""Browser tokens through real HTTP: derived offline from a client key, checked by the
server with only the key's public half, and never wider than the token or its key."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from searchgate.demo import demo_settings
from searchgate.keys.restrictions import Restrictions
from searchgate.keys.scopes import ALL_SCOPES, Scope
from searchgate.runtime import Runtime
from searchgate_client.browser_tokens import derive_browser_token
from tests.conftest import load
from tests.keyhelp import SYSTEM

SEARCH = "/api/v1/search"
SAYT = "/api/v1/sayt/search"
SHOP = "https://shop.example"
BRANDS = {"Sony": 3, "Bose": 2, "Apple": 2}


def _records() -> list[dict[str, Any]]:
    out = []
    for brand, n in BRANDS.items():
        for i in range(n):
            out.append(
                {
                    "id": f"{brand.lower()}{i}",
                    "title": f"{brand} wireless headphones model {i}",
                    "brand": brand,
                    "category1": "Electronics",
                    "category2": "Headphones",
                    "category3": "Headphones",
                    "price": 100 + 50 * i,
                    "rating": 4.0,
                    "colour": "Black",
                    "inStock": True,
                }
            )
    return out


@pytest.fixture
def shop(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "default", _records(), demo_settings())
    load(client, auth, "other", _records(), demo_settings())


@pytest.fixture
def parent(rt: Runtime) -> tuple[str, str]:
    """(id, secret) of a key with every scope and no restrictions."""
    created = rt.services.keys.create(SYSTEM, "storefront", ALL_SCOPES)
    return created.info.id, created.secret


def token_for(
    secret: str,
    *,
    collections: Sequence[str] = ("default",),
    origins: Sequence[str] = (SHOP,),
    ttl: timedelta = timedelta(minutes=10),
    scopes: Sequence[str] = ("search", "sayt"),
    filter: str | None = None,
    now: datetime | None = None,
) -> str:
    return derive_browser_token(
        secret,
        collections=collections,
        origins=origins,
        ttl=ttl,
        scopes=scopes,
        filter=filter,
        now=now,
    )


def page(token: str, origin: str | None = SHOP) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if origin is not None:
        headers["Origin"] = origin
    return headers


def search(client: TestClient, token: str, origin: str | None = SHOP, **body: Any) -> Any:
    return client.post(
        SEARCH,
        json={"collection": "default", "query": "headphones", "pageSize": 50, **body},
        headers=page(token, origin),
    )


def sayt(client: TestClient, token: str, origin: str | None = SHOP, **params: Any) -> Any:
    query = {"query": "wireless", "collection": "default", "productItems": 20, **params}
    return client.get(SAYT, params=query, headers=page(token, origin))


def refused(r: Any, status: int, code: str, *secrets: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == code, error
    for secret in secrets:
        assert secret not in r.text
    return error


def brands(r: Any) -> list[str]:
    assert r.status_code == 200, r.text
    return sorted(rec["allMeta"]["brand"] for rec in r.json()["records"])


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _payload(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return claims


def _with_payload(token: str, claims: dict[str, Any]) -> str:
    header, _, signature = token.split(".")
    return ".".join([header, _b64(json.dumps(claims).encode()), signature])


# --- what works --------------------------------------------------------------------------


def test_a_token_searches_from_its_origin(
    client: TestClient, shop: None, parent: tuple[str, str]
) -> None:
    key_id, secret = parent
    token = token_for(secret)
    r = search(client, token)
    assert r.status_code == 200, r.text
    assert r.json()["totalRecordCount"] == sum(BRANDS.values())
    assert r.headers["access-control-allow-origin"] == SHOP
    assert token not in r.text and secret not in r.text
    r = sayt(client, token)
    assert r.status_code == 200, r.text
    assert len(r.json()["result"]["products"]) == sum(BRANDS.values())
    assert r.headers["access-control-allow-origin"] == SHOP
    # The token tells which key it stands for, and what it may do.
    me = client.get("/api/v1/keys/self", headers=page(token))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == key_id
    assert sorted(me.json()["scopes"]) == ["sayt", "search"]
    assert me.json()["collections"] == ["default"]


# --- what is refused ---------------------------------------------------------------------


def test_a_tampered_token_is_refused(
    client: TestClient, shop: None, parent: tuple[str, str]
) -> None:
    token = token_for(parent[1], collections=["default"])
    header, payload, signature = token.split(".")
    # One character of the payload changed (a middle one: base64url stays canonical).
    i = len(payload) // 2
    flipped = payload[:i] + ("A" if payload[i] != "A" else "B") + payload[i + 1 :]
    # The payload rewritten to name another collection; the signature kept.
    claims = _payload(token)
    widened = _with_payload(token, {**claims, "col": ["default", "other"]})
    # Two characters of the signature changed (the last one is left alone: its spare
    # bits would make a non-canonical spelling, refused for that reason instead).
    j = len(signature) - 3
    forged = signature[:j] + ("AA" if signature[j : j + 2] != "AA" else "BB") + signature[-1]
    for bad in (f"{header}.{flipped}.{signature}", widened, f"{header}.{payload}.{forged}"):
        r = search(client, bad, collection="other")
        refused(r, 401, "token_invalid", bad, parent[1])
        refused(search(client, bad), 401, "token_invalid", bad, parent[1])


def test_a_token_signed_by_another_key_does_not_pass_for_this_one(
    client: TestClient, rt: Runtime, shop: None, parent: tuple[str, str]
) -> None:
    other = rt.services.keys.create(SYSTEM, "other shop", ALL_SCOPES)
    mine = token_for(parent[1])
    theirs = token_for(other.secret)
    # The header (and so the kid) of one key's token with another's payload and
    # signature: the server checks the signature against the kid's public key.
    spliced = ".".join([mine.split(".")[0], *theirs.split(".")[1:]])
    refused(search(client, spliced), 401, "token_invalid", spliced)
    assert search(client, theirs).status_code == 200


def test_an_expired_token_is_refused(
    client: TestClient, shop: None, parent: tuple[str, str]
) -> None:
    issued = datetime.now(UTC) - timedelta(hours=2)
    token = token_for(parent[1], ttl=timedelta(hours=1), now=issued)
    refused(search(client, token), 401, "token_expired", token)
    refused(sayt(client, token), 401, "token_expired", token)
    # Issued two hours ago for three hours: still valid.
    assert search(client, token_for(parent[1], ttl=timedelta(hours=3), now=issued)).is_success


def test_disabling_the_parent_key_suspends_its_tokens_until_enabled(
    client: TestClient, rt: Runtime, shop: None, parent: tuple[str, str]
) -> None:
    key_id, secret = parent
    token = token_for(secret)
    assert search(client, token).status_code == 200
    rt.services.keys.disable(SYSTEM, key_id, reason="leaked storefront")
    error = refused(search(client, token), 401, "key_disabled", token, secret)
    assert key_id in error["message"]
    refused(sayt(client, token), 401, "key_disabled", token)
    rt.services.keys.enable(SYSTEM, key_id)
    assert search(client, token).status_code == 200
    assert sayt(client, token).status_code == 200


def test_deleting_the_parent_key_ends_its_tokens(
    client: TestClient, rt: Runtime, shop: None, parent: tuple[str, str]
) -> None:
    key_id, secret = parent
    token = token_for(secret)
    assert search(client, token).status_code == 200
    rt.services.keys.delete(SYSTEM, key_id, "storefront", force=True)
    refused(search(client, token), 401, "token_invalid", token, secret)
    # A token derived afterwards from the same secret is no better.
    fresh = token_for(secret)
    refused(search(client, fresh), 401, "token_invalid", fresh, secret)


def test_an_expired_parent_key_ends_its_tokens(
    client: TestClient, rt: Runtime, shop: None, parent: tuple[str, str]
) -> None:
    key_id, secret = parent
    token = token_for(secret)
    past = datetime.now(UTC) - timedelta(seconds=1)
    rt.services.keys.update(SYSTEM, key_id, restrictions=Restrictions(expires_at=past))
    refused(search(client, token), 401, "key_expired", token, secret)


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://shop.example", "https://shop.example:8443", "null", None],
)
def test_a_token_is_refused_from_any_other_page(
    client: TestClient, shop: None, parent: tuple[str, str], origin: str | None
) -> None:
    token = token_for(parent[1])
    refused(search(client, token, origin), 403, "origin_forbidden", token)
    refused(sayt(client, token, origin), 403, "origin_forbidden", token)


def test_a_referer_from_the_tokens_origin_stands_in_for_a_missing_origin(
    client: TestClient, shop: None, parent: tuple[str, str]
) -> None:
    token = token_for(parent[1])
    headers = {**page(token, None), "Referer": f"{SHOP}/search?q=headphones"}
    r = client.get(SAYT, params={"query": "wireless", "collection": "default"}, headers=headers)
    assert r.status_code == 200, r.text
    headers["Referer"] = "https://evil.example/search"
    r = client.get(SAYT, params={"query": "wireless", "collection": "default"}, headers=headers)
    refused(r, 403, "origin_forbidden", token)


def test_the_parent_keys_origins_bind_its_tokens_too(
    client: TestClient, rt: Runtime, shop: None
) -> None:
    created = rt.services.keys.create(
        SYSTEM, "one shop", ALL_SCOPES, Restrictions.build(origins=[SHOP])
    )
    token = token_for(created.secret, origins=[SHOP, "https://other.example"])
    assert search(client, token).status_code == 200
    refused(search(client, token, "https://other.example"), 403, "origin_forbidden", token)


def test_a_token_is_refused_on_a_collection_it_does_not_name(
    client: TestClient, rt: Runtime, shop: None, parent: tuple[str, str]
) -> None:
    token = token_for(parent[1], collections=["default"])
    error = refused(search(client, token, collection="other"), 403, "collection_forbidden", token)
    assert error["collection"] == "other"
    refused(sayt(client, token, collection="other"), 403, "collection_forbidden", token)
    body = {"originalQuery": {"collection": "other", "query": "x"}, "navigationName": "brand"}
    r = client.post("/api/v1/search/refinements", json=body, headers=page(token))
    refused(r, 403, "collection_forbidden", token)
    # Nor may a token name a collection its parent key may not use.
    limited = rt.services.keys.create(
        SYSTEM, "default only", ALL_SCOPES, Restrictions.build(collections=["default"])
    )
    wide = token_for(limited.secret, collections=["default", "other"])
    assert search(client, wide).status_code == 200
    refused(search(client, wide, collection="other"), 403, "collection_forbidden", wide)


def test_a_token_never_holds_a_scope_beyond_search_and_sayt(
    client: TestClient, rt: Runtime, shop: None, parent: tuple[str, str]
) -> None:
    # The parent key holds records:write and collections:delete; its token does not.
    token = token_for(parent[1])
    writes = [
        ("POST", "/api/v1/collections/default/records", [{"id": "x", "title": "Injected"}]),
        ("POST", "/api/v1/collections/default/records/delete", {"ids": ["sony0"]}),
        ("DELETE", "/api/v1/collections/default/records/sony0", None),
        ("PUT", "/api/v1/collections/default", demo_settings()),
        ("DELETE", "/api/v1/collections/default", None),
        # Reads outside search would bypass the token's filter: refused as well.
        ("GET", "/api/v1/collections/default/records/bose0", None),
        ("GET", "/api/v1/collections", None),
    ]
    for method, path, body in writes:
        r = client.request(method, path, json=body, headers=page(token))
        refused(r, 403, "token_not_allowed", token)
    files = {"config": ("config", "collection=default\n"), "data": ("data.json", "[]")}
    r = client.post("/data/v1/upload/stream", files=files, headers=page(token))
    refused(r, 403, "token_not_allowed", token)
    # A token may carry fewer scopes than search and sayt.
    sayt_only = token_for(parent[1], scopes=["sayt"])
    assert sayt(client, sayt_only).status_code == 200
    refused(search(client, sayt_only), 403, "scope_missing", sayt_only)
    # A scope the parent lacks is not granted by the token either.
    narrow = rt.services.keys.create(SYSTEM, "search only", frozenset({Scope.SEARCH}))
    widened = token_for(narrow.secret, scopes=["search", "sayt"])
    assert search(client, widened).status_code == 200
    refused(sayt(client, widened), 403, "scope_missing", widened)
    # Nothing was written.
    all_keys = rt.services.keys.create(SYSTEM, "reader", ALL_SCOPES).secret
    r = client.get("/api/v1/collections/default", headers={"Authorization": f"Bearer {all_keys}"})
    assert r.json()["recordCount"] == sum(BRANDS.values())


def test_the_parent_keys_rate_limit_counts_its_tokens(
    client: TestClient, rt: Runtime, shop: None
) -> None:
    created = rt.services.keys.create(
        SYSTEM, "limited", ALL_SCOPES, Restrictions.build(rate_limit_per_minute=2)
    )
    token = token_for(created.secret)
    assert search(client, token).status_code == 200
    assert sayt(client, token).status_code == 200
    r = search(client, token)
    refused(r, 429, "rate_limited", token)
    assert int(r.headers["retry-after"]) >= 1


# --- the forced filter -------------------------------------------------------------------


def test_the_forced_filter_bounds_every_search(
    client: TestClient, shop: None, parent: tuple[str, str]
) -> None:
    token = token_for(parent[1], filter='brand:"Sony"')
    sony = ["Sony"] * BRANDS["Sony"]
    assert brands(search(client, token)) == sony
    # The page's own pre-filter narrows further, never wider.
    assert brands(search(client, token, **{"pre-filter": 'brand:"Bose"'})) == []
    assert brands(search(client, token, **{"pre-filter": "price:[* TO 100]"})) == ["Sony"]
    assert brands(search(client, token, **{"pre-filter": 'brand:"Bose" OR brand:"Sony"'})) == sony
    assert brands(search(client, token, **{"pre-filter": 'NOT brand:"Sony"'})) == []
    # Refinements cannot widen it either.
    refine = [{"type": "Value", "navigationName": "brand", "value": "Bose"}]
    assert brands(search(client, token, refinements=refine)) == []
    # Navigation counts see the filtered records only.
    r = search(client, token)
    nav = {n["name"]: n for n in r.json()["availableNavigation"]}
    assert [v["value"] for v in nav["brand"]["refinements"]] == ["Sony"]


@pytest.mark.parametrize(
    "escape",
    [
        'brand:"Bose") OR (brand:"Bose"',
        "brand:Bose) OR (brand:Apple",
        ") OR (price:[* TO *]",
    ],
)
def test_the_forced_filter_cannot_be_escaped_by_the_pages_pre_filter(
    client: TestClient, shop: None, parent: tuple[str, str], escape: str
) -> None:
    """A page's pre-filter that closes the forced filter's parenthesis must not turn
    ``forced AND asked`` into ``(forced AND x) OR y``."""
    token = token_for(parent[1], filter='brand:"Sony"')
    r = search(client, token, **{"pre-filter": escape})
    if r.status_code == 200:
        assert set(brands(r)) <= {"Sony"}, r.text
    else:
        refused(r, 400, "invalid_request", token)
    body = {
        "originalQuery": {"collection": "default", "query": "headphones", "pre-filter": escape},
        "navigationName": "brand",
    }
    r = client.post("/api/v1/search/refinements", json=body, headers=page(token))
    if r.status_code == 200:
        values = {v["value"] for v in r.json()["navigation"]["refinements"]}
        assert values <= {"Sony"}, r.text


def test_the_forced_filter_bounds_refinements_and_sayt_products(
    client: TestClient, shop: None, parent: tuple[str, str]
) -> None:
    token = token_for(parent[1], filter='brand:"Sony"')
    body = {
        "originalQuery": {"collection": "default", "query": "headphones"},
        "navigationName": "brand",
    }
    r = client.post("/api/v1/search/refinements", json=body, headers=page(token))
    assert r.status_code == 200, r.text
    assert [v["value"] for v in r.json()["navigation"]["refinements"]] == ["Sony"]
    r = sayt(client, token)
    assert r.status_code == 200, r.text
    products = r.json()["result"]["products"]
    assert len(products) == BRANDS["Sony"]
    assert {p["allMeta"]["brand"] for p in products} == {"Sony"}
    # SAYT's own refinements narrow within the filter, never outside it.
    r = sayt(client, token, refinements="~brand=Bose")
    assert r.status_code == 200 and r.json()["result"]["products"] == []


def test_a_filter_on_an_unknown_field_is_a_clear_400_not_a_wider_search(
    client: TestClient, shop: None, parent: tuple[str, str]
) -> None:
    token = token_for(parent[1], filter='supplier:"Acme"')
    r = search(client, token)
    error = refused(r, 400, "invalid_request", token)
    assert error["field"] == "pre-filter"


def _suggestions(r: Any) -> tuple[list[str], list[str]]:
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    terms = [t["value"] for t in result["searchTerms"]]
    values = [v for n in result["navigations"] for v in n["values"]]
    return terms, values


def test_sayt_suggests_no_word_or_value_from_outside_the_forced_filter(
    client: TestClient, auth: dict[str, str], shop: None, parent: tuple[str, str]
) -> None:
    asked = {"query": "bo", "collection": "default", "searchItems": 5, "navigationItems": 5}
    # Without a filter the other brands' vocabulary is there to leak.
    terms, values = _suggestions(client.get(SAYT, params=asked, headers=auth))
    assert "bose" in terms and "Bose" in values
    token = token_for(parent[1], filter='brand:"Sony"')
    terms, values = _suggestions(client.get(SAYT, params=asked, headers=page(token)))
    assert terms == [] and values == []
    terms, values = _suggestions(
        client.get(SAYT, params={**asked, "query": "so"}, headers=page(token))
    )
    assert terms == ["sony"] and values == ["Sony"]


def test_a_word_with_an_underscore_searches_within_the_forced_filter(
    client: TestClient, shop: None, parent: tuple[str, str]
) -> None:
    token = token_for(parent[1], filter='brand:"Sony"')
    # "model_1" is split like the titles' "model 1": only Sony's model 1 matches.
    r = search(client, token, query="model_1")
    assert r.status_code == 200, r.text
    assert [rec["_id"] for rec in r.json()["records"]] == ["sony1"]
    body = {"originalQuery": {"collection": "default", "query": "usb_c"}, "navigationName": "brand"}
    r = client.post("/api/v1/search/refinements", json=body, headers=page(token))
    assert r.status_code == 200, r.text
    r = sayt(client, token, query="model_1", searchItems=5)
    assert r.status_code == 200, r.text
    assert [p["_id"] for p in r.json()["result"]["products"]] == ["sony1"]
