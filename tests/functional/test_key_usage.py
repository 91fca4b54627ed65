"""Requests through the real app are counted per key, system and outcome."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from starlette.testclient import TestClient

from searchgate.keys.scopes import Scope
from searchgate.keys.usage import UsageQueries
from searchgate.keys.usage_models import KeySystemRow, KeyUsageHourRow
from searchgate.runtime import Runtime
from tests.conftest import load
from tests.keyhelp import SYSTEM


def counts(rt: Runtime, key_id: str) -> Counter[tuple[str, str]]:
    rt.usage.flush()
    since = datetime.now(UTC) - timedelta(hours=2)
    out: Counter[tuple[str, str]] = Counter()
    for h in UsageQueries(rt.services.db).hourly(key_id, since):
        out[(h.system, h.outcome)] += h.count
    return out


def test_requests_are_counted_by_system_and_outcome(
    client: TestClient, rt: Runtime, auth: dict[str, str]
) -> None:
    load(client, auth, "shop", [{"id": "1", "title": "red shoe"}])
    key_id = rt.services.keys.list()[0].id
    before = counts(rt, key_id)
    web = auth | {"X-Searchgate-System": "web-1"}
    r = client.post("/api/v1/search", json={"collection": "shop", "query": "shoe"}, headers=web)
    assert r.status_code == 200, r.text
    r = client.get("/api/v1/collections/nope", headers=web)
    assert r.status_code == 404
    r = client.get("/api/v1/collections", headers=auth | {"User-Agent": "feed-job/2.1"})
    assert r.status_code == 200
    assert counts(rt, key_id) - before == Counter(
        {("web-1", "success"): 1, ("web-1", "client_error"): 1, ("feed-job/2.1", "success"): 1}
    )
    uses = {u.system: u for u in UsageQueries(rt.services.db).systems(key_id)}
    assert uses["web-1"].requests == 2
    assert uses["web-1"].last_ip == "testclient"
    info = rt.services.keys.get(key_id)
    assert info.last_used_at is not None
    assert info.last_used_at > datetime.now(UTC) - timedelta(minutes=5)
    assert info.last_system in {"web-1", "feed-job/2.1"}


def test_refusals_of_a_known_key_count_as_refused(client: TestClient, rt: Runtime) -> None:
    created = rt.services.keys.create(SYSTEM, "sayt-only", frozenset({Scope.SAYT}))
    headers = {"Authorization": f"Bearer {created.secret}", "X-Searchgate-System": "web-1"}
    r = client.get("/api/v1/collections", headers=headers)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "scope_missing"
    rt.services.keys.disable(SYSTEM, created.info.id, reason="test")
    rt.services.keys.forget_cache()
    r = client.get("/api/v1/collections", headers=headers)
    assert r.status_code == 401
    assert counts(rt, created.info.id) == Counter({("web-1", "refused"): 2})


def test_requests_without_a_known_key_are_not_counted(client: TestClient, rt: Runtime) -> None:
    assert client.get("/api/v1/collections").status_code == 401
    bad = {"Authorization": "Bearer sgk_" + "A" * 38}
    assert client.get("/api/v1/collections", headers=bad).status_code == 401
    assert client.get("/healthz").status_code == 200
    assert client.get("/").status_code in (200, 302, 303)
    assert rt.usage.pending_requests() == 0
    rt.usage.flush()
    with rt.services.db.read() as s:
        assert s.scalar(select(func.count()).select_from(KeyUsageHourRow)) == 0
        assert s.scalar(select(func.count()).select_from(KeySystemRow)) == 0
