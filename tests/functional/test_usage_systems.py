"""Which system called, as key usage records it: from X-Searchgate-System, the stream
upload's ``system`` config line or the User-Agent, with anything shaped like a key
masked before it is stored (usage tables, the key's last use, the change log)."""

from __future__ import annotations

from sqlalchemy import text
from starlette.testclient import TestClient

from searchgate.keys.scopes import ALL_SCOPES
from searchgate.keys.usage import UsageQueries
from searchgate.runtime import Runtime
from tests.conftest import make_user
from tests.keyhelp import SYSTEM

RECORDS = [{"id": "p1", "title": "Blue kettle"}]


def stored_text(rt: Runtime) -> list[str]:
    """Every value stored about who called: usage, keys' last use, the change log."""
    rows: list[str] = []
    with rt.services.db.read() as s:
        for query in (
            "SELECT system FROM key_usage_hourly",
            "SELECT system FROM key_systems",
            "SELECT last_system FROM client_keys",
            "SELECT user_agent FROM audit_events",
            "SELECT details_json FROM audit_events",
        ):
            rows.extend(str(v) for (v,) in s.execute(text(query)) if v is not None)
    return rows


def systems(rt: Runtime, key_id: str) -> list[str]:
    rt.usage.flush()
    return [u.system for u in UsageQueries(rt.services.db).systems(key_id)]


def upload(client: TestClient, config: str, headers: dict[str, str] | None = None) -> None:
    r = client.post(
        "/data/v1/upload/stream",
        files={
            "config": ("config", config, "text/plain"),
            "data": ("data", b'[{"id": "u1", "title": "Red kettle"}]', "application/json"),
        },
        headers=headers or {},
    )
    assert r.status_code == 200, r.text


def test_key_shaped_systems_and_user_agents_are_masked_before_they_are_stored(
    client: TestClient, rt: Runtime
) -> None:
    created = rt.services.keys.create(SYSTEM, "shop", ALL_SCOPES)
    key = created.secret
    # Any key's shape, not only the caller's own: another key, a personal API token.
    other = rt.services.keys.create(SYSTEM, "other", ALL_SCOPES).secret
    token = rt.services.tokens.create(
        SYSTEM, "t", None, user_id=make_user(rt.services, "root@example.com", "admin")
    ).secret
    auth = {"Authorization": f"Bearer {key}"}
    calls = [
        {"User-Agent": f"feeder/1.0 ({key})"},
        {"X-Searchgate-System": f"cron {other}"},
        {"User-Agent": f"{'x' * 40} {token}"},
    ]
    for headers in calls:
        r = client.post(
            "/api/v1/collections/c/records?wait=true", json=RECORDS, headers={**auth, **headers}
        )
        assert r.status_code == 200, r.text
    r = client.post(
        "/api/v1/admin/keys",
        json={"name": "via-api", "scopes": ["search"]},
        headers={"Authorization": f"Bearer {token}", "User-Agent": f"admin-script {token}"},
    )
    assert r.status_code == 201, r.text
    seen = systems(rt, created.info.id)
    assert len(seen) == 3, seen
    assert all("[redacted]" in s for s in seen), seen
    stored = stored_text(rt)
    assert any("[redacted]" in v for v in stored)
    for secret in (key, other, token):
        leaked = [v for v in stored if secret[4:16] in v]
        assert not leaked, leaked


def test_the_stream_upload_names_its_system_in_the_config(client: TestClient, rt: Runtime) -> None:
    created = rt.services.keys.create(SYSTEM, "feeds", ALL_SCOPES)
    key = created.secret
    upload(client, f"clientKey: {key}\ncollection: c\nsystem: nightly-feed\n")
    assert systems(rt, created.info.id) == ["nightly-feed"]
    # The header, where a tool can send one, names the system as on every other call.
    upload(
        client,
        f"clientKey: {key}\ncollection: c\nsystem: nightly-feed\n",
        {"X-Searchgate-System": "catalog-sync"},
    )
    assert sorted(systems(rt, created.info.id)) == ["catalog-sync", "nightly-feed"]
    info = rt.services.keys.get(created.info.id)
    assert info.last_system == "catalog-sync"
    # Masked like the header: a key pasted there is not stored.
    other = rt.services.keys.create(SYSTEM, "other", ALL_SCOPES).secret
    upload(client, f"clientKey: {key}\ncollection: c\nsystem: loader {other}\n")
    named = [s for s in systems(rt, created.info.id) if s.startswith("loader ")]
    assert named == [f"loader {other[:8]}\u2026[redacted]"], named
