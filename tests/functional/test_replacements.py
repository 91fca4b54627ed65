"""Staged replacements: a collection replaced atomically across many requests."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from starlette.testclient import TestClient

from searchgate.audit.events import AuditFilter
from searchgate.catalog.models import StagedRecordRow
from searchgate.keys.scopes import Scope
from searchgate.permissions import Actor
from searchgate.runtime import Runtime
from tests.conftest import ManualClock, load
from tests.keyhelp import SYSTEM

SETTINGS = {"idField": "id", "titleField": "title", "searchable": [{"name": "title"}]}
BASE = "/api/v1/collections/c/replacements"


def records(n: int, tag: str, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "title": f"item {tag}"} for i in range(start, start + n)]


def ndjson(rows: list[Any]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


def found(client: TestClient, auth: dict[str, str], query: str) -> int:
    r = client.post(
        "/api/v1/search",
        json={"collection": "c", "query": query, "pageSize": 0},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    return int(r.json()["totalRecordCount"])


def ids(client: TestClient, auth: dict[str, str]) -> set[str]:
    r = client.post(
        "/api/v1/search",
        json={"collection": "c", "query": "", "pageSize": 1000},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    return {rec["allMeta"]["id"] for rec in r.json()["records"]}


def start(client: TestClient, auth: dict[str, str]) -> str:
    r = client.post(BASE, headers=auth)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def stage(client: TestClient, auth: dict[str, str], rid: str, rows: list[Any]) -> dict[str, Any]:
    r = client.post(
        f"{BASE}/{rid}/records",
        content=ndjson(rows),
        headers={**auth, "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_searches_see_the_old_catalog_until_commit_and_exactly_the_new_one_after(
    client: TestClient, rt: Runtime, auth: dict[str, str]
) -> None:
    load(client, auth, "c", records(30, "old"), SETTINGS)
    rid = start(client, auth)
    for n in range(3):
        stage(client, auth, rid, records(10, "new", start=100 + 10 * n))
        rt.indexer.catch_up()
        assert found(client, auth, "old") == 30
        assert found(client, auth, "new") == 0
    r = client.get(f"{BASE}/{rid}", headers=auth)
    assert r.status_code == 200 and r.json()["stagedRecords"] == 30
    r = client.post(f"{BASE}/{rid}/commit?wait=true", headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["records"], body["replaced"], body["searchable"]) == (30, 30, True)
    assert found(client, auth, "old") == 0
    assert ids(client, auth) == {f"r{i}" for i in range(100, 130)}
    assert client.get("/api/v1/collections/c", headers=auth).json()["recordCount"] == 30
    # Committed: a repeated commit (an uploader killed before it read the answer) gets
    # the same answer and changes nothing; no more batches are taken.
    r = client.get(f"{BASE}/{rid}", headers=auth)
    assert (r.json()["state"], r.json()["stagedRecords"]) == ("committed", 30)
    again = client.post(f"{BASE}/{rid}/commit", headers=auth)
    assert again.status_code == 200
    assert {k: v for k, v in again.json().items() if k != "searchable"} == {
        k: v for k, v in body.items() if k != "searchable"
    }
    r = client.post(f"{BASE}/{rid}/records", json=records(1, "late"), headers=auth)
    assert r.status_code == 409
    assert client.delete(f"{BASE}/{rid}", headers=auth).status_code == 409
    rt.indexer.catch_up()
    assert ids(client, auth) == {f"r{i}" for i in range(100, 130)}


def test_a_batch_sent_twice_is_counted_once(
    client: TestClient, rt: Runtime, auth: dict[str, str]
) -> None:
    load(client, auth, "c", records(5, "old"), SETTINGS)
    rid = start(client, auth)
    batch = records(20, "new", start=50)
    assert stage(client, auth, rid, batch)["replacement"]["stagedRecords"] == 20
    again = stage(client, auth, rid, batch)
    assert (again["staged"], again["replacement"]["stagedRecords"]) == (20, 20)
    r = client.post(f"{BASE}/{rid}/commit?wait=true", headers=auth)
    assert r.json()["records"] == 20
    assert ids(client, auth) == {f"r{i}" for i in range(50, 70)}


def test_invalid_records_are_reported_as_the_records_api_does(
    client: TestClient, auth: dict[str, str]
) -> None:
    load(client, auth, "c", records(2, "old"), SETTINGS)
    rid = start(client, auth)
    body = stage(client, auth, rid, [{"id": "a", "title": "x"}, {"title": "no id"}, 7])
    assert body["staged"] == 1
    assert body["invalidRecordCount"] == 2
    assert [d["line"] for d in body["invalidRecordDetails"]] == [2, 3]
    r = client.post(f"{BASE}/{rid}/records", content=b"[{]", headers=auth)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"


def test_abort_leaves_the_collection_untouched(
    client: TestClient, rt: Runtime, auth: dict[str, str]
) -> None:
    load(client, auth, "c", records(4, "old"), SETTINGS)
    rid = start(client, auth)
    stage(client, auth, rid, records(9, "new", start=10))
    r = client.delete(f"{BASE}/{rid}", headers=auth)
    assert r.status_code == 200 and r.json()["stagedRecordsRemoved"] == 9
    assert client.post(f"{BASE}/{rid}/commit", headers=auth).status_code == 404
    rt.indexer.catch_up()
    assert ids(client, auth) == {f"r{i}" for i in range(4)}


def test_one_open_replacement_per_collection(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "c", records(1, "old"), SETTINGS)
    rid = start(client, auth)
    r = client.post(BASE, headers=auth)
    assert r.status_code == 409, r.text
    assert r.json()["error"]["replacementId"] == rid
    other = client.post("/api/v1/collections/d/replacements", headers=auth)
    assert other.status_code == 201
    assert (
        client.post(f"/api/v1/collections/d/replacements/{rid}/commit", headers=auth).status_code
        == 404
    )


def test_a_new_collection_is_created_by_the_commit(
    client: TestClient, auth: dict[str, str]
) -> None:
    r = client.post("/api/v1/collections/fresh/replacements", headers=auth)
    rid = r.json()["id"]
    assert client.get("/api/v1/collections/fresh", headers=auth).status_code == 404
    r = client.post(
        f"/api/v1/collections/fresh/replacements/{rid}/records",
        json=[{"id": "x", "title": "hello"}],
        headers=auth,
    )
    assert r.status_code == 200, r.text
    r = client.post(f"/api/v1/collections/fresh/replacements/{rid}/commit?wait=true", headers=auth)
    assert r.status_code == 200 and r.json()["createdCollection"] is True
    assert client.get("/api/v1/collections/fresh", headers=auth).json()["recordCount"] == 1


def test_settings_changed_during_the_replacement_refuse_the_commit(
    client: TestClient, auth: dict[str, str]
) -> None:
    load(client, auth, "c", records(1, "old"), SETTINGS)
    rid = start(client, auth)
    stage(client, auth, rid, records(2, "new"))
    changed = {**SETTINGS, "searchable": [{"name": "title"}, {"name": "tag"}]}
    assert client.put("/api/v1/collections/c", json=changed, headers=auth).status_code == 200
    r = client.post(f"{BASE}/{rid}/commit", headers=auth)
    assert r.status_code == 409 and r.json()["error"]["field"] == "settings"


@pytest.mark.manual_clock
def test_a_replacement_without_batches_expires_and_is_cleaned_up(
    client: TestClient, rt: Runtime, auth: dict[str, str], app_clock: ManualClock
) -> None:
    load(client, auth, "c", records(3, "old"), SETTINGS)
    ttl = rt.services.settings.replacement_ttl_seconds
    rid = start(client, auth)
    stage(client, auth, rid, records(5, "new", start=10))
    app_clock.advance(seconds=ttl - 1)
    # A batch renews it.
    stage(client, auth, rid, records(5, "new", start=20))
    app_clock.advance(seconds=ttl - 1)
    assert client.get(f"{BASE}/{rid}", headers=auth).json()["stagedRecords"] == 10
    app_clock.advance(seconds=2)
    assert client.post(f"{BASE}/{rid}/commit", headers=auth).status_code == 404
    assert rt.services.replacements.expire() == 0
    with rt.services.db.read() as s:
        left = s.scalar(select(func.count()).select_from(StagedRecordRow))
    assert left == 0
    rt.indexer.catch_up()
    assert ids(client, auth) == {f"r{i}" for i in range(3)}
    # A new replacement may start once the stale one is gone.
    start(client, auth)
    page = rt.services.audit.query(Actor.system(), AuditFilter(action="data:replacements:expire"))
    assert [(e.target, e.details) for e in page.events] == [
        ("c", {"replacement": rid, "staged": 10, "committed": False})
    ]


def test_every_step_is_audited_with_the_key_as_actor(
    client: TestClient, rt: Runtime, key: str, auth: dict[str, str]
) -> None:
    key_id = rt.services.keys.verify(key).id  # type: ignore[union-attr]
    load(client, auth, "c", records(1, "old"), SETTINGS)
    rid = start(client, auth)
    stage(client, auth, rid, records(2, "new"))
    client.post(f"{BASE}/{rid}/commit", headers=auth)
    aborted = start(client, auth)
    client.delete(f"{BASE}/{aborted}", headers=auth)
    page = rt.services.audit.query(Actor.system(), AuditFilter(action="data:replacements:*"))
    events = [(e.action, e.actor_token_id, e.details) for e in reversed(page.events)]
    assert events == [
        ("data:replacements:start", key_id, {"replacement": rid}),
        ("data:replacements:batch", key_id, {"replacement": rid, "staged": 2, "invalid": 0}),
        (
            "data:replacements:commit",
            key_id,
            {"replacement": rid, "records": 2, "replaced": 1, "createdCollection": False},
        ),
        ("data:replacements:start", key_id, {"replacement": aborted}),
        ("data:replacements:abort", key_id, {"replacement": aborted, "staged": 0}),
    ]
    assert rt.services.audit.verify().ok


def test_the_records_scope_is_required(client: TestClient, rt: Runtime) -> None:
    search_only = rt.services.keys.create(SYSTEM, "search", {Scope.SEARCH}).secret
    r = client.post(BASE, headers={"Authorization": f"Bearer {search_only}"})
    assert r.status_code == 403
    assert client.post(BASE).status_code == 401


def test_replacement_inputs_answer_2xx_or_4xx(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "c", records(1, "old"), SETTINGS)
    rid = start(client, auth)

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        path=st.sampled_from(["records", "commit", ""]),
        replacement=st.one_of(st.just(rid), st.text(max_size=40)),
        body=st.one_of(
            st.binary(max_size=200),
            st.lists(
                st.dictionaries(
                    st.sampled_from(["id", "title", "x"]),
                    st.one_of(
                        st.none(),
                        st.integers(-(2**53), 2**53),
                        st.text(max_size=10),
                        st.booleans(),
                    ),
                ),
                max_size=5,
            ).map(orjson.dumps),
        ),
        ctype=st.sampled_from(["application/json", "application/x-ndjson", "text/csv", ""]),
    )
    def check(path: str, replacement: str, body: bytes, ctype: str) -> None:
        url = f"{BASE}/{quote(replacement, safe='')}" + (f"/{path}" if path else "")
        headers = {**auth, "Content-Type": ctype} if ctype else auth
        for method in ("POST", "GET", "DELETE"):
            if path == "commit" and method != "POST":
                continue
            if method == "DELETE" and replacement == rid:
                continue
            if path == "commit" and replacement == rid:
                continue
            r = client.request(method, url, content=body, headers=headers)
            assert r.status_code < 500, (method, url, r.status_code, r.text)

    check()
