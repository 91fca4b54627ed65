"""Client keys on the data plane: how a key is presented, refused, scoped and stored."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path
from typing import Any

import fastapi.routing
import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from searchgate.config import Settings
from searchgate.demo import demo_settings, generate
from searchgate.keys.scopes import ALL_SCOPES, Scope
from searchgate.runtime import Runtime, build_services
from searchgate_client.keyformat import generate_key
from tests.conftest import ManualClock, load
from tests.keyhelp import SYSTEM

UPLOAD_CONFIG = "collection=default\n"


def call(client: TestClient, method: str, path: str, headers: dict[str, str] | None = None) -> Any:
    """One request to a data-plane route, with a body it accepts apart from the key."""
    headers = headers or {}
    if path == "/data/v1/upload/stream":
        files = {"config": ("config", UPLOAD_CONFIG), "data": ("data.json", "[]")}
        return client.post(path, files=files, headers=headers)
    if path == "/api/v1/sayt/search":
        return client.get(path, params={"query": "mac"}, headers=headers)
    body: Any = None
    if path == "/api/v1/search":
        body = {"query": "mac"}
    elif path == "/api/v1/search/refinements":
        body = {"originalQuery": {"query": "mac"}, "navigationName": "brand"}
    elif path.endswith("/records/delete"):
        body = {"ids": ["SKU0000001"]}
    elif path.endswith("/records"):
        body = []
    elif method == "PUT":
        body = demo_settings()
    return client.request(method, path, json=body, headers=headers)


def app_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path template) of every route, through included routers too."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    found = iterate(app.routes) if iterate is not None else app.routes  # FastAPI >= 0.165
    out = []
    for r in found:
        path = getattr(r, "path_format", None) or getattr(r, "path", "")
        out.extend((m, path) for m in sorted(getattr(r, "methods", None) or ()) if m != "HEAD")
    return out


def is_data_plane(path: str) -> bool:
    """A client-key route. The admin API takes personal tokens, not keys:
    tests/functional/test_admin_api.py; leak reports are public:
    tests/functional/test_admin_keys_api.py."""
    return (
        path.startswith(("/api/", "/data/"))
        and not path.startswith("/api/v1/admin/")
        and path != "/api/v1/keys/revoke"
    )


def data_plane(client: TestClient) -> list[tuple[str, str]]:
    """Every data-plane route of the app, with path parameters filled in."""
    return [
        (m, p.replace("{name}", "default").replace("{record_id}", "SKU0000001"))
        for m, p in app_routes(client.app)
        if is_data_plane(p)
    ]


def test_every_data_plane_route_needs_a_key(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "default", list(generate(20)), demo_settings())
    routes = data_plane(client)
    assert len(routes) >= 12, routes
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer " + generate_key()}):
            r = call(client, method, path, headers)
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            error = r.json()["error"]
            assert error["code"] in ("missing_key", "invalid_key"), error
            assert r.headers["www-authenticate"].startswith("Bearer")
    # Nothing was changed by any of those calls.
    r = client.get("/api/v1/collections/default", headers=auth)
    assert r.status_code == 200 and r.json()["recordCount"] == 20


def test_a_key_is_accepted_from_each_documented_place(
    client: TestClient, auth: dict[str, str], key: str
) -> None:
    load(client, auth, "default", list(generate(50)), demo_settings())
    query = {"query": "laptop"}
    for headers, body in (
        ({"Authorization": f"Bearer {key}"}, query),
        ({"authorization": f"bearer  {key} "}, query),
        ({"X-Client-Key": key}, query),
        ({}, {**query, "clientKey": key}),
    ):
        r = client.post("/api/v1/search", json=body, headers=headers)
        assert r.status_code == 200, (headers, r.text)
        assert key not in r.text  # originalRequest leaves the key out
    r = client.post(
        "/api/v1/search/refinements",
        json={"originalQuery": {**query, "clientKey": key}, "navigationName": "brand"},
    )
    assert r.status_code == 200, r.text
    config = f"collection=default\nclientKey={key}\n"
    data = '[{"id": "x1", "title": "Extra Laptop", "price": 1}]'
    r = client.post(
        "/data/v1/upload/stream",
        files={"config": ("config", config), "data": ("data.json", data)},
    )
    assert r.status_code == 200, r.text
    assert key not in r.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic c2VjcmV0LXZhbHVl"},
        {"Authorization": "Bearer sgk_short"},
        {"Authorization": "Bearer hunter2-not-a-key"},
        {"X-Client-Key": "sgk_" + "A" * 38},
    ],
)
def test_missing_or_wrong_keys_are_401_without_echo(
    client: TestClient, headers: dict[str, str]
) -> None:
    r = client.post("/api/v1/search", json={"query": "mac"}, headers=headers)
    assert r.status_code == 401
    error = r.json()["error"]
    assert set(error) >= {"code", "message", "requestId"}
    for value in headers.values():
        secret = value.split(" ", 1)[-1].strip()
        if secret:
            assert secret not in r.text


def test_a_wrong_key_with_a_valid_checksum_is_401_without_echo(
    client: TestClient, key: str
) -> None:
    unknown = generate_key()
    for body in ({"query": "x", "clientKey": unknown}, {"query": "x", "clientKey": 12}):
        r = client.post("/api/v1/search", json=body)
        assert r.status_code == 401, r.text
        assert unknown not in r.text
    # A known key with one character changed fails its checksum, and is not echoed.
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    r = client.post("/api/v1/search", json={"query": "x"}, headers={"X-Client-Key": tampered})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_key"
    assert tampered not in r.text and key not in r.text


@pytest.mark.parametrize("param", ["clientKey", "client_key", "ClientKey", "apiKey", "key", "q"])
def test_a_key_in_the_url_is_refused_even_beside_a_valid_one(
    client: TestClient, auth: dict[str, str], key: str, param: str
) -> None:
    for method, path in (("POST", "/api/v1/search"), ("GET", "/api/v1/collections")):
        r = client.request(method, path, params={param: key}, json={"query": "x"}, headers=auth)
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["code"] == "key_in_url" and "rotate" in error["message"]
        assert key not in r.text


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("POST", "/api/v1/search", Scope.SEARCH),
        ("POST", "/api/v1/search/refinements", Scope.SEARCH),
        ("GET", "/api/v1/collections", Scope.SEARCH),
        ("GET", "/api/v1/collections/default/records/SKU0000001", Scope.SEARCH),
        ("GET", "/api/v1/sayt/search", Scope.SAYT),
        ("POST", "/api/v1/collections/default/records", Scope.RECORDS_WRITE),
        ("POST", "/api/v1/collections/default/records/delete", Scope.RECORDS_WRITE),
        ("DELETE", "/api/v1/collections/default/records/SKU0000001", Scope.RECORDS_WRITE),
        ("POST", "/data/v1/upload/stream", Scope.RECORDS_WRITE),
        ("PUT", "/api/v1/collections/default", Scope.COLLECTIONS_WRITE),
        ("DELETE", "/api/v1/collections/default", Scope.COLLECTIONS_DELETE),
    ],
)
def test_a_key_without_the_scope_gets_403_naming_it(
    client: TestClient, rt: Runtime, method: str, path: str, scope: Scope
) -> None:
    others = frozenset(Scope) - {scope}
    secret = rt.services.keys.create(SYSTEM, "all-but-one", others).secret
    r = call(client, method, path, {"X-Client-Key": secret})
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error["code"] == "scope_missing"
    assert error["scope"] == scope.value and repr(scope.value) in error["message"]
    assert secret not in r.text


@pytest.mark.manual_clock
def test_a_deleted_key_stops_working_within_the_cache_window(
    client: TestClient, rt: Runtime, settings: Settings, app_clock: ManualClock
) -> None:
    secret = rt.services.keys.create(SYSTEM, "short-lived", ALL_SCOPES).secret
    headers = {"X-Client-Key": secret}
    assert client.get("/api/v1/collections", headers=headers).status_code == 200
    # Deleted by another process (as `searchgate keys delete` is): this server learns of
    # it when its cached verdict expires (key_cache_seconds, 1 s in these settings) at
    # the latest; sooner when its revocation watch sees the change (docs/operations.md).
    other = build_services(settings, migrate=False)
    try:
        other.keys.delete(SYSTEM, "short-lived", "short-lived", force=True)
    finally:
        other.db.dispose()
    app_clock.advance(seconds=settings.key_cache_seconds)
    r = client.get("/api/v1/collections", headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "invalid_key" and secret not in r.text


def test_a_key_deleted_in_this_process_is_refused_at_once(client: TestClient, rt: Runtime) -> None:
    secret = rt.services.keys.create(SYSTEM, "gone", ALL_SCOPES).secret
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/collections", headers=headers).status_code == 200
    rt.services.keys.delete(SYSTEM, "gone", "gone", force=True)
    assert client.get("/api/v1/collections", headers=headers).status_code == 401


def test_only_a_peppered_digest_of_a_key_is_stored(
    client: TestClient, rt: Runtime, settings: Settings
) -> None:
    created = rt.services.keys.create(SYSTEM, "stored", ALL_SCOPES)
    secret = created.secret
    assert client.get("/api/v1/collections", headers={"X-Client-Key": secret}).status_code == 200
    expected = hmac.new(b"test-pepper", secret.encode(), hashlib.sha256).digest()
    with rt.services.db.read() as s:
        rows = s.execute(text("SELECT * FROM client_keys WHERE name = 'stored'")).mappings().all()
    assert len(rows) == 1
    row = dict(rows[0])
    assert bytes(row["digest"]) == expected
    assert bytes(row["digest"]) != hashlib.sha256(secret.encode()).digest()  # peppered
    assert row["display_prefix"] == secret[:12]
    for value in row.values():
        assert secret not in str(value)
        assert secret[12:] not in str(value)  # nothing beyond the display prefix
    # No file of the deployment holds the key: database, its journals, indexes, secrets.
    url = settings.resolved_database_url
    files = [p for p in Path(settings.data_dir).rglob("*") if p.is_file()]
    if url.startswith("sqlite"):
        db_file = Path(url.removeprefix("sqlite:///"))
        files += [p for p in db_file.parent.glob(db_file.name + "*") if p.is_file()]
        assert db_file in files and db_file.stat().st_size > 0
    for path in files:
        data = path.read_bytes()
        assert secret.encode() not in data, path
        assert re.search(re.escape(secret[12:]).encode(), data) is None, path
