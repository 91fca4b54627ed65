"""The admin API: personal API tokens only, permissions per token, every action in
the change log; client keys and session cookies get nowhere."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from starlette.testclient import TestClient

from searchgate.permissions import Actor
from searchgate.runtime import Runtime
from tests.conftest import PASSWORD, load, make_user

BASE = "/api/v1/admin"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_for(rt: Runtime, email: str, role: str, permissions: list[str] | None = None) -> str:
    uid = make_user(rt.services, email, role)
    return rt.services.tokens.create(Actor.system(), "t", permissions, user_id=uid).secret


def audit(client: TestClient, token: str, **params: str) -> list[dict[str, Any]]:
    r = client.get(f"{BASE}/audit", params={"limit": "500", **params}, headers=bearer(token))
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["events"]
    return events


def test_a_token_with_the_permission_works(client: TestClient, admin_token: str) -> None:
    r = client.get(f"{BASE}/me", headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["user"]["email"] == "root@example.com"
    assert "admin:users:manage" in me["token"]["permissions"]
    assert "admin:settings:manage" not in me["token"]["permissions"]  # never via a token
    r = client.get(f"{BASE}/users", headers=bearer(admin_token))
    assert r.status_code == 200
    body = r.json()
    assert [u["email"] for u in body["users"]] == ["root@example.com"]
    assert body["admins"] == {"active": 1, "max": 3, "tooMany": False, "withoutMfa": 1}
    assert admin_token not in r.text


def test_a_token_without_the_permission_gets_403_and_is_recorded(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    viewer = token_for(rt, "vic@example.com", "viewer")
    for method, path in (
        ("GET", "/users"),
        ("POST", "/users/root@example.com/disable"),
        ("DELETE", "/roles/viewer"),
        ("GET", "/audit"),
    ):
        r = client.request(method, BASE + path, headers=bearer(viewer))
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"]["code"] == "forbidden"
    # A token narrower than its owner's role is held to its own list.
    narrow = rt.services.tokens.create(
        Actor.system(),
        "read-only",
        ["admin:audit:read"],
        user_id=rt.services.users.get(Actor.system(), "root@example.com").id,
    ).secret
    assert client.get(f"{BASE}/audit", headers=bearer(narrow)).status_code == 200
    assert client.get(f"{BASE}/users", headers=bearer(narrow)).status_code == 403
    denied = audit(client, admin_token, outcome="denied")
    assert len(denied) == 5
    assert all(e["actor"]["tokenId"] and e["actor"]["kind"] == "personal_token" for e in denied)
    assert {e["action"] for e in denied} == {
        "admin:users:list",
        "admin:users:disable",
        "admin:roles:delete",
        "admin:audit:read",
    }


def test_client_keys_and_other_credentials_get_401(
    client: TestClient, admin_token: str, key: str
) -> None:
    cases: list[tuple[dict[str, str], str]] = [
        ({}, "missing_token"),
        (bearer(key), "client_key_not_accepted"),
        ({"X-Client-Key": key}, "client_key_not_accepted"),
        ({"Authorization": f"Basic {admin_token}"}, "bad_authorization"),
        (bearer("sgp_" + "A" * 38), "invalid_token"),
        (bearer(admin_token[:-1] + ("a" if admin_token[-1] != "a" else "b")), "invalid_token"),
    ]
    for headers, code in cases:
        r = client.get(f"{BASE}/users", headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.json()["error"]["code"] == code
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert key not in r.text and admin_token not in r.text
    r = client.get(f"{BASE}/users", headers=bearer(key))
    assert "data plane only" in r.json()["error"]["message"]
    # A console session cookie authorises nothing here either.
    client.cookies.set("__Host-searchgate-session", "whatever")
    assert client.get(f"{BASE}/users").status_code == 401


def test_tokens_and_cookies_never_authorise_the_data_plane(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    make_user(rt.services, "vic@example.com")
    secret = rt.services.auth.sign_in("vic@example.com", PASSWORD, ip=None, user_agent=None).secret
    for headers in (bearer(admin_token), bearer(secret), {"Cookie": f"session={secret}"}):
        r = client.post("/api/v1/search", json={"query": "x"}, headers=headers)
        assert r.status_code == 401, r.text


def test_expired_and_revoked_tokens_get_401(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    expiring = token_for(rt, "ops@example.com", "admin")
    revoked = rt.services.tokens.create(
        Actor.system(),
        "soon revoked",
        user_id=rt.services.users.get(Actor.system(), "ops@example.com").id,
    )
    assert client.get(f"{BASE}/me", headers=bearer(expiring)).status_code == 200
    digest = rt.services.tokens.pepper.digest(expiring)
    past = rt.services.tokens.clock() - timedelta(seconds=1)
    with rt.services.db.write() as s:
        s.execute(
            text("UPDATE personal_tokens SET expires_at = :t WHERE digest = :d"),
            {"t": past, "d": digest},
        )
    r = client.get(f"{BASE}/me", headers=bearer(expiring))
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_expired"
    rt.services.tokens.revoke(Actor.system(), revoked.info.id)
    r = client.get(f"{BASE}/me", headers=bearer(revoked.secret))
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"


def test_disabling_the_owner_stops_the_token_on_the_next_request(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    ops = token_for(rt, "ops@example.com", "admin")
    assert client.get(f"{BASE}/users", headers=bearer(ops)).status_code == 200
    r = client.post(f"{BASE}/users/ops@example.com/disable", headers=bearer(admin_token))
    assert r.status_code == 200 and r.json()["user"]["state"] == "disabled"
    r = client.get(f"{BASE}/users", headers=bearer(ops))
    assert r.status_code == 401, r.text


def test_every_admin_action_works_and_is_audited(
    client: TestClient, rt: Runtime, admin_token: str, auth: dict[str, str]
) -> None:
    h = bearer(admin_token)
    load(client, auth, "doomed", [{"id": "1", "title": "x"}, {"id": "2", "title": "y"}])
    steps: list[tuple[str, str, dict[str, Any] | None, int, str]] = [
        (
            "POST",
            "/roles",
            {"name": "auditor", "permissions": ["admin:audit:read"]},
            201,
            "admin:roles:create",
        ),
        (
            "PATCH",
            "/roles/auditor",
            {"description": "reads the log", "areas": ["Production"]},
            200,
            "admin:roles:update",
        ),
        (
            "POST",
            "/users",
            {
                "email": "aud@example.com",
                "password": PASSWORD,
                "role": "auditor",
                "displayName": "Aud",
            },
            201,
            "admin:users:create",
        ),
        ("PATCH", "/users/aud@example.com", {"role": "viewer"}, 200, "admin:users:update"),
        ("POST", "/users/aud@example.com/disable", None, 200, "admin:users:disable"),
        ("POST", "/users/aud@example.com/enable", None, 200, "admin:users:enable"),
        ("DELETE", "/users/aud@example.com", None, 200, "admin:users:delete"),
        ("DELETE", "/roles/auditor", None, 200, "admin:roles:delete"),
        ("DELETE", "/collections/doomed", None, 200, "console:collections:delete"),
    ]
    for method, path, body, status, action in steps:
        r = client.request(method, BASE + path, json=body, headers=h)
        assert r.status_code == status, (path, r.text)
        events = [e for e in audit(client, admin_token, action=action) if e["actor"]["tokenId"]]
        assert len(events) == 1, (action, events)
        assert events[0]["actor"]["tokenId"] and events[0]["outcome"] == "success"
        assert PASSWORD not in str(events[0])
    assert r.json() == {"deleted": "doomed", "records": 2}
    assert client.get("/api/v1/collections/doomed", headers=auth).status_code == 404
    r = client.get(f"{BASE}/collections", headers=h)
    assert r.status_code == 200 and r.json()["collections"] == []
    roles = client.get(f"{BASE}/roles", headers=h).json()["roles"]
    assert [r["name"] for r in roles] == ["admin", "merchandiser", "viewer"]
    assert rt.services.audit.verify().ok


def test_guards_and_validation_answer_with_clear_errors(
    client: TestClient, admin_token: str
) -> None:
    h = bearer(admin_token)
    r = client.post(f"{BASE}/users/root@example.com/disable", headers=h)
    assert r.status_code == 409 and "your own account" in r.json()["error"]["message"]
    r = client.patch(f"{BASE}/users/root@example.com", json={"role": "viewer"}, headers=h)
    assert r.status_code == 409 and "last active admin" in r.json()["error"]["message"]
    r = client.post(f"{BASE}/users", json={"email": "x@example.com", "role": "viewer"}, headers=h)
    assert r.status_code == 400 and r.json()["error"]["field"] == "password"
    r = client.post(
        f"{BASE}/users",
        json={"email": "x@example.com", "role": "viewer", "password": "short"},
        headers=h,
    )
    assert r.status_code == 400 and r.json()["error"]["field"] == "password"
    assert "short" not in r.text
    r = client.post(f"{BASE}/roles", json={"name": "r", "permissions": ["nope"]}, headers=h)
    assert r.status_code == 400 and r.json()["error"]["field"] == "permissions"
    r = client.get(f"{BASE}/audit", params={"since": "yesterday"}, headers=h)
    assert r.status_code == 400 and r.json()["error"]["field"] == "since"
    r = client.get(f"{BASE}/users/nobody@example.com", headers=h)
    assert r.status_code == 404


def test_audit_pages_filters_and_exports(client: TestClient, rt: Runtime, admin_token: str) -> None:
    limit = "2"
    for n in range(4):
        make_user(rt.services, f"u{n}@example.com")
    h = bearer(admin_token)
    first = client.get(f"{BASE}/audit", params={"limit": limit}, headers=h).json()
    assert len(first["events"]) == 2 and first["nextBefore"] == first["events"][-1]["seq"]
    second = client.get(
        f"{BASE}/audit", params={"limit": limit, "before": str(first["nextBefore"])}, headers=h
    ).json()
    assert [e["seq"] for e in second["events"]] == [
        first["events"][-1]["seq"] - 1,
        first["events"][-1]["seq"] - 2,
    ]
    r = client.get(
        f"{BASE}/audit/export", params={"action": "admin:users:create", "target": "u*"}, headers=h
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["target"] for row in rows] == [f"u{n}@example.com" for n in range(4)]
    assert audit(client, admin_token, action="admin:audit:export")[0]["details"] == {
        "filters": {"action": "admin:users:create", "target": "u*"}
    }
