"""The admin API for client keys, /api/v1/admin/keys, and the key self-service routes
(/api/v1/keys/self, /api/v1/keys/revoke), through the real app on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from searchgate.keys.scopes import ALL_SCOPES, Scope
from searchgate.permissions import Actor
from searchgate.runtime import Runtime
from searchgate_client.browser_tokens import derive_browser_token
from searchgate_client.keyformat import check_key_format, generate_key
from tests.conftest import make_user
from tests.keyhelp import SYSTEM

KEYS = "/api/v1/admin/keys"
SHOP = "https://shop.example"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_for(rt: Runtime, email: str, role: str) -> str:
    uid = make_user(rt.services, email, role)
    return rt.services.tokens.create(Actor.system(), "t", user_id=uid).secret


def create(client: TestClient, token: str, **body: Any) -> dict[str, Any]:
    r = client.post(KEYS, json={"scopes": ["search"], **body}, headers=bearer(token))
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def events(rt: Runtime, action: str) -> list[dict[str, Any]]:
    page = rt.services.audit.query(Actor.system(), limit=500)
    return [e.to_dict() for e in page.events if e.action == action]


def audit_text(rt: Runtime) -> str:
    with rt.services.db.read() as s:
        rows = s.execute(text("SELECT * FROM audit_events")).all()
    return "\n".join(str(tuple(row)) for row in rows)


def self_of(client: TestClient, headers: dict[str, str]) -> Any:
    return client.get("/api/v1/keys/self", headers=headers)


# --- creating and reading --------------------------------------------------------------


def test_the_secret_is_shown_once_and_never_again(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    r = client.post(
        KEYS,
        json={
            "name": "storefront",
            "scopes": ["search", "sayt"],
            "collections": ["shoes"],
            "allowUnknown": True,
            "ipRanges": ["203.0.113.0/24"],
            "origins": ["https://Shop.Example"],
            "rateLimitPerMinute": 600,
            "expiresAt": "2099-01-31T00:00:00Z",
        },
        headers=bearer(admin_token),
    )
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    secret = body["secret"]
    assert check_key_format(secret) is None
    key = body["key"]
    assert key["name"] == "storefront" and key["prefix"] == secret[:12]
    assert key["scopes"] == ["sayt", "search"] and key["collections"] == ["shoes"]
    assert key["origins"] == [SHOP] and key["ipRanges"] == ["203.0.113.0/24"]
    assert key["rateLimitPerMinute"] == 600 and key["expiresAt"].startswith("2099-01-31")
    assert key["primary"] is True  # the first key is the primary one
    assert body["replaced"] is None and key["state"] == "active"
    seen = []
    for path in (KEYS, f"{KEYS}?all=true", f"{KEYS}/storefront", f"{KEYS}/{key['id']}"):
        r = client.get(path, headers=bearer(admin_token))
        assert r.status_code == 200, r.text
        seen.append(r.text)
    listed = client.get(KEYS, headers=bearer(admin_token)).json()["keys"]
    assert [k["id"] for k in listed] == [key["id"]]
    r = client.patch(f"{KEYS}/storefront", json={"name": "shop"}, headers=bearer(admin_token))
    seen.append(r.text)
    seen.append(client.get(f"{KEYS}/shop/usage", headers=bearer(admin_token)).text)
    seen.append(audit_text(rt))
    for page in seen:
        assert secret not in page and secret[12:] not in page
    created = events(rt, "admin:keys:create")
    assert [e["target"] for e in created] == [key["id"]]
    assert created[0]["details"]["scopes"] == ["sayt", "search"]
    # The data plane knows the key at once, and holds it to its restrictions.
    r = self_of(client, {"X-Client-Key": secret})
    assert r.status_code == 403 and r.json()["error"]["code"] == "ip_forbidden"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["admin"]}, "scopes"),
        ({"name": "x"}, "scopes"),
        ({"scopes": ["search"]}, "name"),
        ({"name": " ", "scopes": ["search"]}, "name"),
        ({"name": "x", "scopes": ["search"], "ipRanges": ["10.0.0.300/8"]}, "ipRanges"),
        ({"name": "x", "scopes": ["search"], "origins": ["shop.example"]}, "origins"),
        ({"name": "x", "scopes": ["search"], "expiresAt": "tomorrow"}, "expiresAt"),
        ({"name": "x", "scopes": ["search"], "expiresAt": "2020-01-01T00:00:00Z"}, "expiresAt"),
        ({"name": "x", "scopes": ["search"], "rateLimitPerMinute": "5"}, "rateLimitPerMinute"),
        ({"name": "x", "scopes": ["search"], "rateLimitPerMinute": 0}, "rateLimitPerMinute"),
        ({"name": "x", "scopes": ["search"], "collections": []}, "collections"),
        ({"name": "x", "scopes": ["search"], "secret": "sgk_"}, "secret"),
        ({"name": "x", "scopes": ["search"], "primary": "yes"}, "primary"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    client: TestClient, rt: Runtime, admin_token: str, body: dict[str, Any], field: str
) -> None:
    r = client.post(KEYS, json=body, headers=bearer(admin_token))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field
    assert rt.services.keys.list() == []


def test_names_are_unique_and_unknown_keys_are_404(client: TestClient, admin_token: str) -> None:
    create(client, admin_token, name="feed")
    r = client.post(KEYS, json={"name": "feed", "scopes": ["sayt"]}, headers=bearer(admin_token))
    assert r.status_code == 409 and r.json()["error"]["field"] == "name"
    for method, path in (
        ("GET", f"{KEYS}/nobody"),
        ("GET", f"{KEYS}/nobody/usage"),
        ("POST", f"{KEYS}/nobody/disable"),
        ("POST", f"{KEYS}/nobody/enable"),
        ("POST", f"{KEYS}/nobody/make-primary"),
    ):
        r = client.request(method, path, headers=bearer(admin_token))
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"]["code"] == "not_found"


def test_patch_changes_only_the_named_restrictions_and_never_scopes(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    key = create(client, admin_token, name="web", origins=[SHOP], rateLimitPerMinute=60)["key"]
    r = client.patch(f"{KEYS}/web", json={"rateLimitPerMinute": 120}, headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    assert r.json()["key"]["rateLimitPerMinute"] == 120
    assert r.json()["key"]["origins"] == [SHOP]  # untouched
    r = client.patch(f"{KEYS}/web", json={"origins": None}, headers=bearer(admin_token))
    assert r.status_code == 200 and r.json()["key"]["origins"] == []
    change = {"name": "web-2", "collections": ["a", "b"], "allowUnknown": True}
    r = client.patch(f"{KEYS}/{key['id']}", json=change, headers=bearer(admin_token))
    assert r.status_code == 200
    assert r.json()["key"]["name"] == "web-2" and r.json()["key"]["collections"] == ["a", "b"]
    wider = {"scopes": ["search", "records:write"]}
    r = client.patch(f"{KEYS}/web-2", json=wider, headers=bearer(admin_token))
    assert r.status_code == 400 and r.json()["error"]["field"] == "scopes"
    assert rt.services.keys.get("web-2").scopes == {Scope.SEARCH}
    updates = events(rt, "admin:keys:update")
    assert len(updates) == 3
    # Newest first: the first change (the rate) is the last event.
    assert updates[-1]["details"]["before"]["rateLimitPerMinute"] == 60
    assert updates[-1]["details"]["after"]["rateLimitPerMinute"] == 120
    assert updates[0]["details"]["after"]["name"] == "web-2"


# --- the primary key, rolling ----------------------------------------------------------


def test_new_primary_roll_and_make_primary(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    first = create(client, admin_token, name="main", origins=[SHOP])
    assert first["key"]["primary"] is True
    r = client.post(f"{KEYS}/new-primary", json={}, headers=bearer(admin_token))
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    new_secret = body["secret"]
    assert check_key_format(new_secret) is None and new_secret != first["secret"]
    assert body["key"]["primary"] is True and body["key"]["origins"] == [SHOP]
    assert body["key"]["scopes"] == ["search"]
    assert body["replaced"]["id"] == first["key"]["id"]
    old = client.get(f"{KEYS}/main", headers=bearer(admin_token)).json()["key"]
    assert old["primary"] is False and old["retiring"] is True and old["state"] == "active"
    assert first["secret"] not in r.text

    # Roll the new primary: a copy becomes primary, the rolled key expires in an hour.
    before = datetime.now(UTC)
    r = client.post(
        f"{KEYS}/{body['key']['id']}/roll",
        json={"expiresInSeconds": 3600, "name": "main-3"},
        headers=bearer(admin_token),
    )
    assert r.status_code == 201, r.text
    rolled = r.json()
    assert rolled["key"]["name"] == "main-3" and rolled["key"]["primary"] is True
    expires = datetime.fromisoformat(rolled["replaced"]["expiresAt"])
    assert before + timedelta(minutes=59) < expires < datetime.now(UTC) + timedelta(minutes=61)
    assert self_of(client, bearer(rolled["secret"])).json()["primary"] is True
    # The rolled key still works until then, and says it is retiring.
    me = self_of(client, bearer(new_secret)).json()
    assert me["retiring"] is True and me["primary"] is False
    for bad in ({"expiresInSeconds": -1}, {"expiresInSeconds": 31 * 86400}, {}, {"x": 1}):
        r = client.post(f"{KEYS}/main-3/roll", json=bad, headers=bearer(admin_token))
        assert r.status_code == 400, (bad, r.text)
    assert [e["target"] for e in events(rt, "admin:keys:roll")] == [rolled["key"]["id"]]
    assert len(events(rt, "admin:keys:new-primary")) == 1

    r = client.post(f"{KEYS}/main/make-primary", headers=bearer(admin_token))
    assert r.status_code == 200 and r.json()["key"]["primary"] is True
    primaries = [k for k in rt.services.keys.list() if k.primary]
    assert [k.name for k in primaries] == ["main"]
    assert audit_text(rt).count(new_secret[12:]) == 0


def test_disable_and_enable(client: TestClient, rt: Runtime, admin_token: str) -> None:
    secret = create(client, admin_token, name="batch")["secret"]
    assert self_of(client, bearer(secret)).status_code == 200
    r = client.post(
        f"{KEYS}/batch/disable", json={"reason": "suspicious"}, headers=bearer(admin_token)
    )
    assert r.status_code == 200, r.text
    assert r.json()["key"]["state"] == "disabled"
    assert r.json()["key"]["disabledReason"] == "suspicious"
    r = self_of(client, bearer(secret))
    assert r.status_code == 401 and r.json()["error"]["code"] == "key_disabled"
    r = client.post(f"{KEYS}/batch/enable", headers=bearer(admin_token))
    assert r.status_code == 200 and r.json()["key"]["state"] == "active"
    assert self_of(client, bearer(secret)).status_code == 200
    # As every key change: the key's name, display prefix, scopes and restrictions.
    described = {"name", "prefix", "scopes", "primary", "collections", "expiresAt", "origins"}
    [disabled] = events(rt, "admin:keys:disable")
    assert disabled["details"]["reason"] == "suspicious"
    assert described <= set(disabled["details"])
    assert disabled["details"]["name"] == "batch"
    assert disabled["details"]["prefix"] == secret[:12]
    [enabled] = events(rt, "admin:keys:enable")
    assert enabled["details"]["wasDisabledFor"] == "suspicious"
    assert described <= set(enabled["details"]) and enabled["details"]["name"] == "batch"


# --- deleting ------------------------------------------------------------------------


def test_delete_needs_the_exact_name_and_waits_until_nobody_uses_the_key(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    create(client, admin_token, name="main")
    feed = create(client, admin_token, name="feed")
    used = bearer(feed["secret"]) | {"X-Searchgate-System": "feed-importer"}
    assert self_of(client, used).status_code == 200
    rt.usage.flush()
    url = f"{KEYS}/feed"
    for body, field in (
        (None, "confirmName"),
        ({"confirmName": "Feed"}, "confirmName"),
        ({"confirmName": "fee"}, "confirmName"),
        ({"confirmName": "feed", "force": "yes"}, "force"),
    ):
        r = client.request("DELETE", url, json=body, headers=bearer(admin_token))
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["field"] == field
    r = client.request("DELETE", url, json={"confirmName": "feed"}, headers=bearer(admin_token))
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "key_in_use" and "feed-importer" in error["systems"]
    assert "feed-importer" in error["message"]
    assert self_of(client, used).status_code == 200  # nothing happened
    r = client.request(
        "DELETE", url, json={"confirmName": "feed", "force": True}, headers=bearer(admin_token)
    )
    assert r.status_code == 200, r.text
    tomb = r.json()["key"]
    assert tomb["state"] == "deleted" and tomb["name"] == "feed" and tomb["deletedAt"]
    r = self_of(client, used)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_key"
    listed = client.get(KEYS, headers=bearer(admin_token)).json()["keys"]
    assert [k["name"] for k in listed] == ["main"]
    everything = client.get(f"{KEYS}?all=true", headers=bearer(admin_token)).json()["keys"]
    assert {k["name"]: k["state"] for k in everything} == {"main": "active", "feed": "deleted"}
    assert client.get(url, headers=bearer(admin_token)).json()["key"]["state"] == "deleted"
    [deleted] = events(rt, "admin:keys:delete")
    assert deleted["details"]["forced"] is True
    assert "feed-importer" in deleted["details"]["recentSystems"]
    assert feed["secret"] not in audit_text(rt)


def test_the_primary_key_is_deleted_last(client: TestClient, rt: Runtime, admin_token: str) -> None:
    create(client, admin_token, name="main")
    create(client, admin_token, name="other")
    r = client.request(
        "DELETE", f"{KEYS}/main", json={"confirmName": "main"}, headers=bearer(admin_token)
    )
    assert r.status_code == 409 and "primary" in r.json()["error"]["message"]
    for name in ("other", "main"):
        r = client.request(
            "DELETE", f"{KEYS}/{name}", json={"confirmName": name}, headers=bearer(admin_token)
        )
        assert r.status_code == 200, r.text
    assert rt.services.keys.list() == []


# --- who may -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "merchandiser"])
def test_tokens_without_the_key_permissions_get_403(
    client: TestClient, rt: Runtime, admin_token: str, role: str
) -> None:
    secret = create(client, admin_token, name="main")["secret"]
    token = token_for(rt, f"{role}@example.com", role)
    calls: list[tuple[str, str, Any]] = [
        ("GET", KEYS, None),
        ("GET", f"{KEYS}/main", None),
        ("GET", f"{KEYS}/main/usage", None),
        ("POST", KEYS, {"name": "mine", "scopes": ["search"]}),
        ("PATCH", f"{KEYS}/main", {"rateLimitPerMinute": 5}),
        ("POST", f"{KEYS}/new-primary", {}),
        ("POST", f"{KEYS}/main/roll", {"expiresInSeconds": 60}),
        ("POST", f"{KEYS}/main/disable", {}),
        ("POST", f"{KEYS}/main/enable", None),
        ("POST", f"{KEYS}/main/make-primary", None),
        ("DELETE", f"{KEYS}/main", {"confirmName": "main", "force": True}),
    ]
    for method, path, body in calls:
        r = client.request(method, path, json=body, headers=bearer(token))
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error"]["code"] == "forbidden"
    assert [k.name for k in rt.services.keys.list()] == ["main"]
    assert self_of(client, bearer(secret)).status_code == 200
    denied = rt.services.audit.query(Actor.system(), limit=500).events
    mine = [e for e in denied if e.outcome == "denied" and e.actor_email == f"{role}@example.com"]
    assert len(mine) == len(calls)
    assert {e.action for e in mine} >= {"admin:keys:list", "admin:keys:delete"}
    # A client key is no admin credential, whatever its scopes.
    r = client.get(KEYS, headers=bearer(secret))
    assert r.status_code == 401 and r.json()["error"]["code"] == "client_key_not_accepted"


# --- usage ---------------------------------------------------------------------------


def test_usage_lists_systems_and_hourly_counts(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    secret = create(client, admin_token, name="main")["secret"]
    for system in ("web-1", "web-1", "cron"):
        headers = bearer(secret) | {"X-Searchgate-System": system}
        assert self_of(client, headers).status_code == 200
    r = client.get(KEYS, headers=bearer(secret) | {"X-Searchgate-System": "web-1"})
    assert r.status_code == 401  # not counted: the admin API does not take keys
    rt.usage.flush()
    r = client.get(f"{KEYS}/main/usage?days=7", headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["key"]["name"] == "main" and body["key"]["lastSystem"] in ("web-1", "cron")
    assert {u["system"]: u["requests"] for u in body["systems"]} == {"web-1": 2, "cron": 1}
    counts: dict[tuple[str, str], int] = {}
    for h in body["hourly"]:
        counts[(h["system"], h["outcome"])] = (
            counts.get((h["system"], h["outcome"]), 0) + h["count"]
        )
    assert counts == {("web-1", "success"): 2, ("cron", "success"): 1}
    for days in ("0", "31", "x", "-1"):
        r = client.get(f"{KEYS}/main/usage?days={days}", headers=bearer(admin_token))
        assert r.status_code == 400 and r.json()["error"]["field"] == "days"


# --- /api/v1/keys/self ---------------------------------------------------------------


def test_keys_self_says_which_key_a_caller_uses(client: TestClient, rt: Runtime) -> None:
    main = rt.services.keys.create(SYSTEM, "main", ALL_SCOPES)
    sayt = rt.services.keys.create(SYSTEM, "sayt-only", frozenset({Scope.SAYT}))
    r = self_of(client, bearer(main.secret) | {"X-Searchgate-System": "checkout"})
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["id"] == main.info.id and me["name"] == "main" and me["primary"] is True
    assert me["prefix"] == main.secret[:12] and me["state"] == "active"
    assert me["scopes"] == sorted(s.value for s in ALL_SCOPES)
    assert me["collections"] is None and me["expiresAt"] is None
    assert me["system"] == "checkout" and me["browserToken"] is None
    assert main.secret not in r.text
    # Any scope will do: this key can do nothing but SAYT.
    me = self_of(client, {"X-Client-Key": sayt.secret}).json()
    assert me["scopes"] == ["sayt"] and me["primary"] is False
    for headers, code in (
        ({}, "missing_key"),
        (bearer(generate_key()), "invalid_key"),
        (bearer("sgp_not-a-client-key"), "invalid_key"),
    ):
        r = self_of(client, headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == code


def test_keys_self_with_a_browser_token(client: TestClient, rt: Runtime) -> None:
    parent = rt.services.keys.create(SYSTEM, "web", ALL_SCOPES)
    token = derive_browser_token(
        parent.secret,
        collections=["shoes", "hats"],
        origins=[SHOP],
        ttl=timedelta(minutes=10),
        scopes=["search"],
        filter='brand:"Acme"',
    )
    headers = bearer(token) | {"Origin": SHOP}
    r = self_of(client, headers)
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == SHOP
    me = r.json()
    assert me["id"] == parent.info.id and me["scopes"] == ["search"]
    assert me["collections"] == ["hats", "shoes"]
    browser = me["browserToken"]
    assert browser["origins"] == [SHOP] and browser["collections"] == ["hats", "shoes"]
    assert browser["filter"] == 'brand:"Acme"'
    expires = datetime.fromisoformat(browser["expiresAt"])
    assert timedelta(minutes=9) < expires - datetime.now(UTC) <= timedelta(minutes=10)
    r = self_of(client, bearer(token) | {"Origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "origin_forbidden"
    rt.services.keys.disable(SYSTEM, "web")
    r = self_of(client, headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "key_disabled"


# --- /api/v1/keys/revoke -------------------------------------------------------------


def test_a_leak_report_disables_the_key_at_once(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    leaked = rt.services.keys.create(SYSTEM, "leaky", ALL_SCOPES)
    assert self_of(client, bearer(leaked.secret)).status_code == 200  # cached as usable
    r = client.post(
        "/api/v1/keys/revoke",
        json={"key": leaked.secret},
        headers={"User-Agent": "secret-scanner/1.0"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"revoked": True, "id": leaked.info.id, "name": "leaky"}
    assert leaked.secret not in r.text
    # At once in this process, whatever the cache held.
    r = self_of(client, bearer(leaked.secret))
    assert r.status_code == 401 and r.json()["error"]["code"] == "key_disabled"
    info = rt.services.keys.get("leaky")
    assert info.disabled and info.disabled_reason == "leak reported"
    [report] = events(rt, "admin:keys:leak-reported")
    assert report["target"] == leaked.info.id and report["outcome"] == "success"
    assert report["ip"] == "testclient" and report["userAgent"] == "secret-scanner/1.0"
    assert report["details"]["wasDisabled"] is False
    assert leaked.secret not in audit_text(rt)
    # Reported again (scanners retry): still 200, recorded again, nothing else changes.
    r = client.post("/api/v1/keys/revoke", json={"key": leaked.secret})
    assert r.status_code == 200 and r.json()["revoked"] is True
    assert events(rt, "admin:keys:leak-reported")[0]["details"]["wasDisabled"] is True
    # Reversible by an admin who decides the report was wrong.
    r = client.post(f"{KEYS}/leaky/enable", headers=bearer(admin_token))
    assert r.status_code == 200
    assert self_of(client, bearer(leaked.secret)).status_code == 200


def test_leak_reports_of_unknown_or_malformed_keys(client: TestClient, rt: Runtime) -> None:
    url = "/api/v1/keys/revoke"
    unknown = generate_key()
    r = client.post(url, json={"key": unknown})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_key"
    assert unknown not in r.text
    gone = rt.services.keys.create(SYSTEM, "gone", ALL_SCOPES)
    rt.services.keys.delete(SYSTEM, "gone", "gone", force=True)
    r = client.post(url, json={"key": gone.secret})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_key"
    tampered = unknown[:-1] + ("A" if unknown[-1] != "A" else "B")
    for body in (
        {"key": tampered},
        {"key": "sgk_short"},
        {"key": "hello world"},
        {"key": 42},
        {"clientKey": unknown},
        ["sgk_"],
    ):
        r = client.post(url, json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["field"] == "key"
        assert tampered not in r.text and unknown not in r.text
    r = client.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    r = client.post(url, content=b'{"key": "' + b"x" * 5000 + b'"}')
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert events(rt, "admin:keys:leak-reported") == []
