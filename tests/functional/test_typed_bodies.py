"""Admin API bodies are typed models the framework validates, read the API's way first:
JSON whatever the Content-Type says, empty is ``{}``, the nesting and size limits before
any model, the credential checked before anything the body says, and any input a 2xx
or 4xx with the error body (never a 5xx, never a 422)."""

from __future__ import annotations

import html
from typing import Any

from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from starlette.routing import Match
from starlette.testclient import TestClient

from searchgate.api import (
    routes_admin,
    routes_admin_invitations,
    routes_admin_keys,
    routes_admin_rotation,
    routes_collections,
    routes_keys,
    routes_upload,
)
from searchgate.api.query import INSTANT_RULE
from searchgate.jsondepth import MAX_JSON_DEPTH
from searchgate.keys.scopes import Scope
from searchgate.runtime import Runtime
from tests.conftest import make_user
from tests.functional.console_support import signed_in_admin, use_https
from tests.keyhelp import SYSTEM

ADMIN = "/api/v1/admin"
NO_CONTROL = "a filter holds no control characters"
FORM = "application/x-www-form-urlencoded"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(r: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] and error["message"] and error["requestId"], r.text
    if field is not None:
        assert error["field"] == field, r.text
    return error


def test_a_json_body_is_json_whatever_its_content_type(
    client: TestClient, admin_token: str
) -> None:
    h = bearer(admin_token)
    body = b'{"name": "editor", "permissions": ["console:collections:read"]}'
    # curl -d labels its body a form.
    r = client.post(f"{ADMIN}/roles", content=body, headers={**h, "Content-Type": FORM})
    assert r.status_code == 201 and r.json()["role"]["name"] == "editor", r.text
    r = client.patch(
        f"{ADMIN}/roles/editor", content=b'{"description": "edits"}', headers=h
    )  # no Content-Type at all
    assert r.status_code == 200 and r.json()["role"]["description"] == "edits", r.text


def test_an_empty_body_is_the_empty_object(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    h = bearer(admin_token)
    key = rt.services.keys.create(SYSTEM, "k", frozenset({Scope.SEARCH})).info
    # Every field of a disable is optional; an empty body is no reason.
    r = client.post(f"{ADMIN}/keys/{key.id}/disable", headers=h)
    assert r.status_code == 200 and r.json()["key"]["disabledReason"] is None, r.text
    # A required field is named, as in {}.
    for content in (b"", b"{}", b"  "):
        assert_error(client.post(f"{ADMIN}/users", content=content, headers=h), 400, "email")


def test_malformed_and_too_deep_bodies_name_the_body(client: TestClient, admin_token: str) -> None:
    h = {**bearer(admin_token), "Content-Type": "application/json"}
    error = assert_error(client.post(f"{ADMIN}/roles", content=b"{not json", headers=h), 400)
    assert error["field"] == "body" and "not valid JSON" in error["message"]
    deep = b'{"name": "r", "x": ' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}"
    error = assert_error(client.post(f"{ADMIN}/roles", content=deep, headers=h), 400, "body")
    assert error["limit"] == MAX_JSON_DEPTH


def test_the_credential_is_checked_before_the_body(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    deep = b"[" * 1000 + b"]" * 1000
    for content in (b"{not json", deep, b'{"store": 1}'):
        r = client.post(f"{ADMIN}/rotations", content=content)
        assert_error(r, 401)
        assert r.json()["error"]["code"] == "missing_token", r.text
    viewer = rt.services.tokens.create(
        SYSTEM, "t", user_id=make_user(rt.services, "v@example.com", "viewer")
    ).secret
    for content in (b"{not json", deep, b'{"store": 1}', b""):
        r = client.post(f"{ADMIN}/rotations", content=content, headers=bearer(viewer))
        assert_error(r, 403)


def test_a_body_over_the_size_limit_is_a_413(client: TestClient, admin_token: str) -> None:
    limit = client.app.state.runtime.services.settings.limits.max_body_bytes  # type: ignore[attr-defined]
    big = b'{"name": "' + b"x" * limit + b'"}'
    r = client.post(f"{ADMIN}/roles", content=big, headers=bearer(admin_token))
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large", r.text

    def chunks() -> Any:
        yield b'{"name": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    r = client.post(f"{ADMIN}/roles", content=chunks(), headers=bearer(admin_token))
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large", r.text


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["name", "permissions", "reason", "expiresAt", "store", "x"])
            | st.text(max_size=5),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
CONTENT_TYPES = st.sampled_from(
    [None, "application/json", "text/plain", FORM, "multipart/form-data; boundary=x"]
)


def test_no_body_answers_5xx_or_422(client: TestClient, rt: Runtime, admin_token: str) -> None:
    key = rt.services.keys.create(SYSTEM, "k", frozenset({Scope.SEARCH})).info
    calls = [
        ("POST", f"{ADMIN}/roles"),
        ("PATCH", f"{ADMIN}/users/root@example.com"),
        ("POST", f"{ADMIN}/keys/{key.id}/expiry"),
        ("POST", f"{ADMIN}/keys/{key.id}/roll"),
        ("DELETE", f"{ADMIN}/keys/{key.id}"),
        ("POST", f"{ADMIN}/rotations"),
        ("POST", f"{ADMIN}/invitations"),
    ]

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        body=st.binary(max_size=64) | JSON_VALUES.map(lambda v: repr(v).encode()),
        json_body=JSON_VALUES,
        content_type=CONTENT_TYPES,
        as_json=st.booleans(),
    )
    def check(body: bytes, json_body: Any, content_type: str | None, as_json: bool) -> None:
        headers = bearer(admin_token)
        if content_type is not None:
            headers["Content-Type"] = content_type
        for method, path in calls:
            if as_json:
                r = client.request(method, path, json=json_body, headers=headers)
            else:
                r = client.request(method, path, content=body, headers=headers)
            assert r.status_code < 500 and r.status_code != 422, (method, path, r.text)
            if r.status_code >= 400:
                assert r.json()["error"]["code"], r.text

    check()


ROUTERS = (
    routes_admin,
    routes_admin_invitations,
    routes_admin_keys,
    routes_admin_rotation,
    routes_collections,
    routes_keys,
    routes_upload,
)


def declared_answer(method: str, path: str) -> TypeAdapter[Any]:
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    for route in (r for m in ROUTERS for r in m.router.routes):
        if isinstance(route, APIRoute) and route.matches(scope)[0] is Match.FULL:
            model = route.response_model
            assert model is not None, path
            return TypeAdapter(model)
    raise AssertionError(f"no route for {method} {path}")


def test_admin_answers_are_what_the_document_says(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    h = bearer(admin_token)
    rt.services.keys.create(SYSTEM, "shop", frozenset({Scope.SEARCH}), primary=True)

    def call(method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        r = client.request(method, path, headers=h, **kwargs)
        assert r.status_code == status, (method, path, r.text)
        # Every field named, none missing: extra fields fail too.
        declared_answer(method, path).validate_python(r.json())
        return r.json()

    call("GET", f"{ADMIN}/me")
    call("GET", f"{ADMIN}/users")
    call(
        "POST",
        f"{ADMIN}/users",
        201,
        json={"email": "e@example.com", "password": "x" * 16, "role": "viewer"},
    )
    call("PATCH", f"{ADMIN}/users/e@example.com", json={"displayName": "E"})
    call("POST", f"{ADMIN}/users/e@example.com/disable")
    call("POST", f"{ADMIN}/users/e@example.com/password", json={"password": "y" * 16})
    call("DELETE", f"{ADMIN}/users/e@example.com")
    call(
        "POST",
        f"{ADMIN}/roles",
        201,
        json={"name": "ed", "permissions": ["console:collections:read"]},
    )
    call("GET", f"{ADMIN}/roles")
    call("GET", f"{ADMIN}/collections")
    invited = call(
        "POST", f"{ADMIN}/invitations", 201, json={"email": "i@example.com", "role": "viewer"}
    )
    call("GET", f"{ADMIN}/invitations", params={"all": "true"})
    call("DELETE", f"{ADMIN}/invitations/{invited['invitation']['id']}")
    key = call("POST", f"{ADMIN}/keys", 201, json={"name": "k", "scopes": ["search"]})["key"]
    call("GET", f"{ADMIN}/keys", params={"all": "yes"})
    call("PATCH", f"{ADMIN}/keys/{key['id']}", json={"origins": ["https://shop.example"]})
    call("GET", f"{ADMIN}/keys/{key['id']}/usage", params={"days": "2"})
    call("POST", f"{ADMIN}/keys/{key['id']}/roll", 201, json={"expiresInSeconds": 60})
    call("POST", f"{ADMIN}/keys/new-primary", 201, json={})
    call("DELETE", f"{ADMIN}/keys/{key['id']}", json={"confirmName": "k", "force": True})
    store = {"kind": "file", "location": "file:/var/lib/searchgate/client-key.json"}
    started = call("POST", "/api/v1/admin/rotations", 201, json={"store": store})
    rid = started["rotation"]["id"]
    call("GET", "/api/v1/admin/rotations/current")
    call("GET", f"/api/v1/admin/rotations/{rid}/traffic")
    call("POST", f"/api/v1/admin/rotations/{rid}/abort", json={"lease": started["lease"]})
    call("GET", f"{ADMIN}/audit", params={"limit": "5"})


def test_data_plane_answers_are_what_the_document_says(
    client: TestClient, auth: dict[str, str], key: str
) -> None:
    def call(method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        r = client.request(method, path.split("?")[0], headers=auth, **kwargs)
        assert r.status_code == status, (method, path, r.text)
        declared_answer(method, path.split("?")[0]).validate_python(r.json())
        return r.json()

    base = "/api/v1/collections/shop"
    call("PUT", base, 201, json={"titleField": "title"}, params={"wait": "true"})
    call("GET", "/api/v1/collections")
    call("GET", base)
    records = [{"id": "a", "title": "A"}, {"id": "b", "title": "B"}, {"title": "no id"}]
    call("POST", f"{base}/records", json=records, params={"wait": "true"})
    call("GET", f"{base}/records/a")
    call("DELETE", f"{base}/records/a")
    call("POST", f"{base}/records/delete", json={"ids": ["b"]})
    r = client.post(
        "/data/v1/upload/stream",
        files={
            "config": ("config", "collection: shop\n", "text/plain"),
            "data": ("data", b'[{"id": "c", "title": "C"}]', "application/json"),
        },
        headers=auth,
    )
    assert r.status_code == 200, r.text
    declared_answer("POST", "/data/v1/upload/stream").validate_python(r.json())
    call("GET", "/api/v1/keys/self")
    call("DELETE", base, params={"wait": "true"})
    r = client.post("/api/v1/keys/revoke", json={"key": key})
    assert r.status_code == 200, r.text
    declared_answer("POST", "/api/v1/keys/revoke").validate_python(r.json())


def test_no_query_text_answers_5xx(client: TestClient, admin_token: str) -> None:
    h = bearer(admin_token)
    params = [
        (f"{ADMIN}/audit", "since"),
        (f"{ADMIN}/audit", "until"),
        (f"{ADMIN}/audit", "user"),
        (f"{ADMIN}/audit/export", "outcome"),
        (f"{ADMIN}/keys", "all"),
        (f"{ADMIN}/invitations", "all"),
    ]

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(value=st.text(max_size=40) | st.datetimes().map(lambda d: d.isoformat()))
    def check(value: str) -> None:
        for path, name in params:
            r = client.get(path, params={name: value}, headers=h)
            assert r.status_code in (200, 400), (path, name, r.text)
            if r.status_code == 400:
                error = r.json()["error"]
                # The rule, never the value (a query string may hold a secret).
                assert error["field"] == name, r.text
                assert error["message"] in (f"{name}: {INSTANT_RULE}", f"{name}: {NO_CONTROL}")

    check()
    r = client.get(f"{ADMIN}/audit", params={"since": "yesterday"}, headers=h)
    assert_error(r, 400, "since")


def test_a_control_character_in_a_change_log_filter_is_a_400(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    # PostgreSQL refuses a NUL in any text it is sent: this was a 500 there.
    for name in ("user", "action", "target", "outcome"):
        r = client.get(f"{ADMIN}/audit", params={name: "a\x00b"}, headers=bearer(admin_token))
        assert_error(r, 400, name)
    use_https(client)
    signed_in_admin(client, rt)
    r = client.get("/admin/audit", params={"user": "\x00"})
    assert r.status_code == 400 and NO_CONTROL in html.unescape(r.text), r.text
