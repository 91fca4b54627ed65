"""A data-plane request's key is decided by one call of the keys service: the HTTP
layer reads the credential and the request's context once and passes them in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from searchgate.errors import Forbidden, TooManyAttempts, Unauthenticated
from searchgate.keys.check import Caller, Presented, RequestContext
from searchgate.keys.restrictions import Restrictions
from searchgate.keys.scopes import ALL_SCOPES, Scope
from searchgate.runtime import Runtime, Services
from tests.conftest import ManualClock, load
from tests.keyhelp import SYSTEM

SHOP = "https://shop.example"


def context(**changes: Any) -> RequestContext:
    values: dict[str, Any] = {
        "ip": "203.0.113.5",
        "origin": None,
        "system": "web-1",
        "user_agent": "shop-backend/1.0",
        "browser_tokens": True,
    }
    values.update(changes)
    return RequestContext(**values)


def new_key(services: Services, name: str, **restrictions: Any) -> tuple[str, str]:
    created = services.keys.create(
        SYSTEM, name, ALL_SCOPES, Restrictions.build(**restrictions), allow_unknown_collections=True
    )
    return created.info.id, created.secret


def code_of(call: Callable[[], object]) -> tuple[str, str, str | None]:
    """The refusal's error class family, code and the key it names."""
    try:
        call()
    except (Unauthenticated, Forbidden, TooManyAttempts) as exc:
        family = next(
            c.__name__ for c in (Unauthenticated, Forbidden, TooManyAttempts) if isinstance(exc, c)
        )
        return family, exc.code, getattr(exc, "key_id", None)
    raise AssertionError("not refused")


def test_one_call_decides_validity_scope_collection_restrictions_and_rate(
    accounts: Services, clock: ManualClock
) -> None:
    keys = accounts.keys
    key_id, secret = new_key(
        accounts,
        "shop web",
        collections=["shop"],
        ip_ranges=["203.0.113.0/24"],
        origins=[SHOP],
        rate_limit_per_minute=1,
        expires_at=clock() + timedelta(hours=1),
    )
    caller = keys.authorize(Presented(secret), context(), Scope.SEARCH, "shop")
    assert isinstance(caller, Caller)
    assert (caller.key.id, caller.ip, caller.system) == (key_id, "203.0.113.5", "web-1")
    assert caller.actor.token_id == key_id

    def check(presented: Presented | None, ctx: RequestContext, collection: str = "shop") -> Any:
        return lambda: keys.authorize(presented, ctx, Scope.SEARCH, collection)

    assert code_of(check(None, context())) == ("Unauthenticated", "missing_key", None)
    assert code_of(check(Presented("sgk_" + "x" * 40), context())) == (
        "Unauthenticated",
        "invalid_key",
        None,
    )
    ok = Presented(secret)
    assert code_of(check(ok, context(), "other")) == ("Forbidden", "collection_forbidden", key_id)
    assert code_of(check(ok, context(ip="198.51.100.1"))) == ("Forbidden", "ip_forbidden", key_id)
    assert code_of(check(ok, context(origin="https://evil.example"))) == (
        "Forbidden",
        "origin_forbidden",
        key_id,
    )
    # The one request the rate allows went to the first call.
    assert code_of(check(ok, context(origin=SHOP))) == ("TooManyAttempts", "rate_limited", key_id)
    clock.advance(hours=2)
    assert code_of(check(ok, context())) == ("Unauthenticated", "key_expired", key_id)


def test_the_presented_credential_never_shows_in_its_repr() -> None:
    secret = "sgk_" + "s" * 40
    assert secret not in repr(Presented(secret))
    assert secret not in str(Presented(secret))


def test_a_browser_token_is_refused_where_the_operation_takes_none(accounts: Services) -> None:
    token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln"
    refusal = code_of(
        lambda: accounts.keys.authorize(
            Presented(token), context(browser_tokens=False), Scope.SEARCH, "shop"
        )
    )
    assert refusal == ("Forbidden", "token_not_allowed", None)


def count_calls(
    monkeypatch: pytest.MonkeyPatch, obj: object, name: str, depth: list[int]
) -> list[int]:
    """Wraps ``obj.name`` (an instance method) to record, for each call, how many
    ``authorize`` calls it was made within."""
    calls: list[int] = []
    original = getattr(obj, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(depth[0])
        if name != "authorize":
            return original(*args, **kwargs)
        depth[0] += 1
        try:
            return original(*args, **kwargs)
        finally:
            depth[0] -= 1

    monkeypatch.setattr(obj, name, counted)
    return calls


def test_the_http_layer_asks_the_keys_service_once_per_request(
    client: TestClient, rt: Runtime, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    load(client, auth, "shop", [{"id": "1", "title": "Desk lamp"}])
    _key_id, secret = new_key(
        rt.services, "restricted", collections=["shop"], origins=[SHOP], rate_limit_per_minute=100
    )
    headers = {"Authorization": f"Bearer {secret}", "Origin": SHOP}
    keys = rt.services.keys
    depth = [0]
    authorize = count_calls(monkeypatch, keys, "authorize", depth)
    # The other ways into a key's rows: used within ``authorize`` only.
    others = [
        count_calls(monkeypatch, keys, name, depth)
        for name in ("verify", "by_public_key_id", "get", "list")
    ]
    for method, path, kwargs in (
        ("POST", "/api/v1/search", {"json": {"collection": "shop", "query": "lamp"}}),
        ("GET", "/api/v1/sayt/search", {"params": {"query": "la", "collection": "shop"}}),
        ("GET", "/api/v1/collections/shop", {}),
        ("GET", "/api/v1/keys/self", {}),
    ):
        before = len(authorize)
        r = client.request(method, path, headers=headers, **kwargs)
        assert r.status_code == 200, r.text
        assert len(authorize) == before + 1, path
    refused = client.post(
        "/api/v1/search",
        json={"collection": "shop", "query": "lamp"},
        headers={**headers, "Origin": "https://evil.example"},
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "origin_forbidden"
    assert len(authorize) == 5
    assert authorize == [0] * 5
    assert all(inside == 1 for calls in others for inside in calls), others


def test_a_refusal_with_a_known_key_still_counts_in_its_usage(
    client: TestClient, rt: Runtime, auth: dict[str, str]
) -> None:
    key_id, secret = new_key(rt.services, "shop only", collections=["shop"])
    r = client.post(
        "/api/v1/search",
        json={"collection": "other", "query": "x"},
        headers={"Authorization": f"Bearer {secret}", "X-Searchgate-System": "web-7"},
    )
    assert r.status_code == 403
    rt.usage.flush()
    systems = {u.system: u for u in rt.services.usage.systems(key_id)}
    assert systems["web-7"].requests == 1
