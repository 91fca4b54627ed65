"""A client key's restrictions through real HTTP: collections, expiry, client IPs,
browser origins, the request rate, CORS, and the 401/403 split of the refusals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from searchgate.keys.restrictions import Restrictions
from searchgate.keys.scopes import ALL_SCOPES, Scope
from searchgate.runtime import Runtime
from searchgate_client.keyformat import generate_key
from tests.conftest import ManualClock, load
from tests.keyhelp import SYSTEM

SEARCH = "/api/v1/search"
SAYT = "/api/v1/sayt/search"
SHOP = "https://shop.example"

RECORDS = [
    {"id": "l1", "title": "Desk lamp", "brand": "Acme"},
    {"id": "l2", "title": "Floor lamp", "brand": "Lumo"},
]


def new_key(
    rt: Runtime,
    name: str,
    scopes: frozenset[Scope] = ALL_SCOPES,
    **restrictions: Any,
) -> tuple[str, dict[str, str]]:
    """A key with the given restrictions (the same parsing the admin API uses); its
    collections need not exist yet."""
    created = rt.services.keys.create(
        SYSTEM, name, scopes, Restrictions.build(**restrictions), allow_unknown_collections=True
    )
    return created.info.id, {"Authorization": f"Bearer {created.secret}"}


def secret_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def refused(r: Any, status: int, code: str, secret: str) -> dict[str, Any]:
    """The refusal's error object, after checking it never carries the key."""
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == code, error
    assert secret not in r.text
    assert all(secret not in v for v in r.headers.values())
    return error


def search(
    client: TestClient, headers: dict[str, str], collection: str = "shop", **extra: str
) -> Any:
    return client.post(
        SEARCH, json={"collection": collection, "query": "lamp"}, headers={**headers, **extra}
    )


@pytest.fixture
def shop(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "shop", RECORDS)
    load(client, auth, "other", [{"id": "o1", "title": "Other lamp"}])


def client_at(client: TestClient, host: str) -> TestClient:
    """The same running app, seen from another client address. Not entered as a
    context manager: the app's lifespan (and its runtime) stays the first client's."""
    return TestClient(client.app, raise_server_exceptions=False, client=(host, 40000))


# --- collections ----------------------------------------------------------------------


def test_a_collection_restricted_key_uses_and_sees_only_its_collections(
    client: TestClient, rt: Runtime, shop: None
) -> None:
    key_id, headers = new_key(rt, "shop only", collections=["shop"])
    secret = secret_of(headers)
    r = search(client, headers)
    assert r.status_code == 200 and r.json()["totalRecordCount"] == 2, r.text

    error = refused(search(client, headers, "other"), 403, "collection_forbidden", secret)
    assert error["collection"] == "other" and key_id in error["message"]
    r = client.get("/api/v1/collections/other", headers=headers)
    refused(r, 403, "collection_forbidden", secret)
    r = client.post("/api/v1/collections/other/records", json=[{"id": "x"}], headers=headers)
    refused(r, 403, "collection_forbidden", secret)
    r = client.get(SAYT, params={"query": "la", "collection": "other"}, headers=headers)
    refused(r, 403, "collection_forbidden", secret)
    # A search without a collection means "default", which is not allowed either.
    r = client.post(SEARCH, json={"query": "lamp"}, headers=headers)
    refused(r, 403, "collection_forbidden", secret)

    listed = client.get("/api/v1/collections", headers=headers)
    assert listed.status_code == 200
    assert [c["name"] for c in listed.json()["collections"]] == ["shop"]
    everything = client.get("/api/v1/collections", headers=new_key(rt, "all")[1])
    assert {c["name"] for c in everything.json()["collections"]} == {"shop", "other"}


# --- expiry ----------------------------------------------------------------------------


@pytest.mark.manual_clock
def test_a_key_is_refused_once_its_expiry_passes(
    client: TestClient, rt: Runtime, app_clock: ManualClock
) -> None:
    expires = app_clock() + timedelta(seconds=1.5)
    key_id, headers = new_key(rt, "short", expires_at=expires)
    assert client.get("/api/v1/collections", headers=headers).status_code == 200
    app_clock.advance(seconds=1.4)
    assert client.get("/api/v1/collections", headers=headers).status_code == 200
    app_clock.advance(seconds=0.1)
    r = client.get("/api/v1/collections", headers=headers)
    error = refused(r, 401, "key_expired", secret_of(headers))
    assert key_id in error["message"]
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_moving_the_expiry_into_the_past_or_away_takes_effect_at_once(
    client: TestClient, rt: Runtime
) -> None:
    key_id, headers = new_key(rt, "moved")
    assert client.get("/api/v1/collections", headers=headers).status_code == 200
    past = datetime.now(UTC) - timedelta(minutes=1)
    rt.services.keys.update(SYSTEM, key_id, restrictions=Restrictions(expires_at=past))
    expired = client.get("/api/v1/collections", headers=headers)
    refused(expired, 401, "key_expired", secret_of(headers))
    rt.services.keys.update(SYSTEM, key_id, restrictions=Restrictions())
    assert client.get("/api/v1/collections", headers=headers).status_code == 200


# --- client IP ranges --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ranges", "host", "allowed"),
    [
        (["127.0.0.0/8"], "127.0.0.1", True),
        (["10.0.0.0/8"], "127.0.0.1", False),
        (["10.0.0.0/8", "127.0.0.0/8"], "127.0.0.1", True),
        (["203.0.113.0/24"], "203.0.113.77", True),
        (["203.0.113.0/24"], "203.0.114.1", False),
        (["2001:db8::/32"], "2001:db8::1", True),
        (["2001:db8::/32"], "2001:db9::1", False),
        (["::1/128"], "127.0.0.1", False),
    ],
)
def test_ip_ranges_admit_only_client_addresses_inside_them(
    client: TestClient, rt: Runtime, ranges: list[str], host: str, allowed: bool
) -> None:
    key_id, headers = new_key(rt, "by ip", ip_ranges=ranges)
    r = client_at(client, host).get("/api/v1/collections", headers=headers)
    if allowed:
        assert r.status_code == 200, r.text
    else:
        error = refused(r, 403, "ip_forbidden", secret_of(headers))
        assert host in error["message"] and key_id in error["message"]
    # An unrestricted key works from the same address.
    r = client_at(client, host).get("/api/v1/collections", headers=new_key(rt, "anywhere")[1])
    assert r.status_code == 200


def test_a_client_address_that_is_not_an_ip_matches_no_range(
    client: TestClient, rt: Runtime
) -> None:
    # TestClient's default peer is the host name "testclient": fail closed.
    _, headers = new_key(rt, "by ip", ip_ranges=["0.0.0.0/0", "::/0"])
    r = client.get("/api/v1/collections", headers=headers)
    refused(r, 403, "ip_forbidden", secret_of(headers))
    assert client_at(client, "192.0.2.1").get("/api/v1/collections", headers=headers).is_success


# --- browser origins -------------------------------------------------------------------


def test_origins_admit_listed_pages_and_servers_without_an_origin(
    client: TestClient, rt: Runtime, shop: None
) -> None:
    key_id, headers = new_key(rt, "storefront", origins=[SHOP, "http://localhost:3000"])
    secret = secret_of(headers)
    ok = search(client, headers, Origin=SHOP)
    assert ok.status_code == 200, ok.text
    assert ok.headers["access-control-allow-origin"] == SHOP
    assert "Origin" in ok.headers["vary"]
    # Browsers send the normal form; other spellings of the same origin match too.
    assert search(client, headers, Origin="HTTPS://Shop.Example:443").status_code == 200
    assert search(client, headers, Origin="http://localhost:3000").status_code == 200
    # No Origin and no Referer: a server, which the origin rule is not about.
    plain = search(client, headers)
    assert plain.status_code == 200
    assert "access-control-allow-origin" not in plain.headers

    for origin in ("https://evil.example", "http://shop.example", "https://shop.example:8443"):
        error = refused(search(client, headers, Origin=origin), 403, "origin_forbidden", secret)
        assert key_id in error["message"]
    # The opaque origin of a sandboxed page or a file: is no origin; its Referer decides.
    r = search(client, headers, Origin="null", Referer="https://evil.example/page")
    refused(r, 403, "origin_forbidden", secret)


@pytest.mark.parametrize("origin", ["null", "https://shop.example/path", "not a url"])
def test_an_opaque_or_malformed_origin_is_no_listed_origin(
    client: TestClient, rt: Runtime, shop: None, origin: str
) -> None:
    """A sandboxed iframe (or a data: page) with referrerpolicy=no-referrer sends
    ``Origin: null`` and no Referer: a browser page, so a key bound to origins refuses
    it instead of taking it for a server."""
    _, headers = new_key(rt, "storefront", origins=[SHOP])
    refused(search(client, headers, Origin=origin), 403, "origin_forbidden", secret_of(headers))
    # A key without origin rules still serves it, but the page cannot read the answer.
    r = search(client, new_key(rt, "anywhere")[1], Origin=origin)
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_without_an_origin_the_referer_says_which_page_calls(
    client: TestClient, rt: Runtime, shop: None
) -> None:
    _, headers = new_key(rt, "storefront", origins=[SHOP])
    assert search(client, headers, Referer=f"{SHOP}/products?q=lamp").status_code == 200
    r = search(client, headers, Referer="https://evil.example/products?q=lamp")
    refused(r, 403, "origin_forbidden", secret_of(headers))
    # The Origin header wins over the Referer when both are sent.
    r = search(client, headers, Origin="https://evil.example", Referer=f"{SHOP}/p")
    refused(r, 403, "origin_forbidden", secret_of(headers))


# --- rate limit ------------------------------------------------------------------------


def test_the_rate_limit_answers_429_with_retry_after_for_that_key_only(
    client: TestClient, rt: Runtime
) -> None:
    key_id, limited = new_key(rt, "limited", rate_limit_per_minute=3)
    _, other_limited = new_key(rt, "also limited", rate_limit_per_minute=3)
    _, unlimited = new_key(rt, "unlimited")
    for _ in range(3):
        assert client.get("/api/v1/collections", headers=limited).status_code == 200
    r = client.get("/api/v1/collections", headers=limited)
    error = refused(r, 429, "rate_limited", secret_of(limited))
    retry = int(r.headers["retry-after"])
    # 3 per minute: a token comes back every 20 s.
    assert 1 <= retry <= 20
    assert error["retryAfter"] == retry and key_id in error["message"]
    # Still refused on the next try: a refused request does not earn a token.
    assert client.get("/api/v1/collections", headers=limited).status_code == 429
    # Other keys have their own budgets.
    for _ in range(3):
        assert client.get("/api/v1/collections", headers=other_limited).status_code == 200
    for _ in range(10):
        assert client.get("/api/v1/collections", headers=unlimited).status_code == 200


def test_a_refused_request_does_not_spend_the_rate(client: TestClient, rt: Runtime) -> None:
    # Refusals for scope come before the rate check: they do not use up the budget.
    _, headers = new_key(rt, "sayt only", frozenset({Scope.SAYT}), rate_limit_per_minute=2)
    for _ in range(5):
        assert client.get("/api/v1/collections", headers=headers).status_code == 403
    r = client.get(SAYT, params={"query": "la", "collection": "nothing"}, headers=headers)
    assert r.status_code != 429, r.text


# --- 401 versus 403 --------------------------------------------------------------------

Setup = Callable[[Runtime], tuple[dict[str, str], dict[str, str]]]


def _missing(rt: Runtime) -> tuple[dict[str, str], dict[str, str]]:
    return {}, {}


def _unknown(rt: Runtime) -> tuple[dict[str, str], dict[str, str]]:
    return {"X-Client-Key": generate_key()}, {}


def _disabled(rt: Runtime) -> tuple[dict[str, str], dict[str, str]]:
    key_id, headers = new_key(rt, "off")
    rt.services.keys.disable(SYSTEM, key_id, reason="test")
    return headers, {}


def _expired(rt: Runtime) -> tuple[dict[str, str], dict[str, str]]:
    # A key cannot be created expired: it expires after its creation.
    key_id, headers = new_key(rt, "old")
    past = datetime.now(UTC) - timedelta(seconds=1)
    rt.services.keys.update(SYSTEM, key_id, restrictions=Restrictions(expires_at=past))
    return headers, {}


def _deleted(rt: Runtime) -> tuple[dict[str, str], dict[str, str]]:
    key_id, headers = new_key(rt, "gone")
    rt.services.keys.delete(SYSTEM, key_id, "gone", force=True)
    return headers, {}


def _no_scope(rt: Runtime) -> tuple[dict[str, str], dict[str, str]]:
    return new_key(rt, "writer", frozenset({Scope.RECORDS_WRITE}))[1], {}


def _collection(rt: Runtime) -> tuple[dict[str, str], dict[str, str]]:
    return new_key(rt, "elsewhere", collections=["other"])[1], {}


def _ip(rt: Runtime) -> tuple[dict[str, str], dict[str, str]]:
    return new_key(rt, "office", ip_ranges=["10.0.0.0/8"])[1], {}


def _origin(rt: Runtime) -> tuple[dict[str, str], dict[str, str]]:
    return new_key(rt, "page", origins=[SHOP])[1], {"Origin": "https://evil.example"}


@pytest.mark.parametrize(
    ("setup", "status", "code"),
    [
        (_missing, 401, "missing_key"),
        (_unknown, 401, "invalid_key"),
        (_disabled, 401, "key_disabled"),
        (_expired, 401, "key_expired"),
        (_deleted, 401, "invalid_key"),
        (_no_scope, 403, "scope_missing"),
        (_collection, 403, "collection_forbidden"),
        (_ip, 403, "ip_forbidden"),
        (_origin, 403, "origin_forbidden"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else str(v),
)
def test_no_usable_key_is_401_and_a_usable_key_without_the_right_is_403(
    client: TestClient, rt: Runtime, shop: None, setup: Setup, status: int, code: str
) -> None:
    headers, extra = setup(rt)
    r = client_at(client, "127.0.0.1").post(
        SEARCH, json={"collection": "shop", "query": "lamp"}, headers={**headers, **extra}
    )
    presented = next(iter(headers.values()), "").removeprefix("Bearer ")
    # No key-shaped text at all when none was presented.
    error = refused(r, status, code, presented or "sgk_")
    assert error["message"] and error["requestId"]
    if status == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")
    else:
        assert "www-authenticate" not in r.headers


# --- CORS ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [SEARCH, "/api/v1/search/refinements", SAYT, "/api/v1/keys/self"])
def test_a_preflight_is_answered_for_browser_routes(client: TestClient, path: str) -> None:
    r = client.options(
        path,
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert r.status_code == 204, r.text
    assert r.headers["access-control-allow-origin"] == SHOP
    assert {"GET", "POST"} <= {
        m.strip() for m in r.headers["access-control-allow-methods"].split(",")
    }
    allowed = {h.strip() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "x-client-key", "x-searchgate-system"} <= allowed
    assert int(r.headers["access-control-max-age"]) > 0
    # No cookie is ever involved.
    assert "access-control-allow-credentials" not in r.headers


def test_no_preflight_for_routes_browsers_do_not_call(client: TestClient) -> None:
    r = client.options(
        "/api/v1/collections/shop/records",
        headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"},
    )
    assert r.status_code != 204
    assert "access-control-allow-origin" not in r.headers


def test_refusals_are_readable_by_the_page_and_answers_only_for_allowed_origins(
    client: TestClient, rt: Runtime, shop: None
) -> None:
    _, headers = new_key(rt, "storefront", origins=[SHOP])
    evil = "https://evil.example"
    r = search(client, headers, Origin=evil)
    # The page learns why it was refused (the body names the rule, not the key)...
    assert r.status_code == 403 and r.headers["access-control-allow-origin"] == evil
    # ...but never reads a search answer: that needs an allowed origin.
    ok = search(client, headers, Origin=SHOP)
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == SHOP
    # A key without origin rules serves any page that presents it.
    _, anywhere = new_key(rt, "anywhere")
    r = search(client, anywhere, Origin=evil)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == evil
    # Routes outside the browser set never carry CORS headers.
    r = client.get("/api/v1/collections", headers={**headers, "Origin": SHOP})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
