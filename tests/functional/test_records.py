"""Records API: upserts (JSON array, NDJSON), replace, read, delete, wait, invalid records."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from starlette.testclient import TestClient

from searchgate.runtime import Runtime
from tests.conftest import load

SETTINGS = {
    "idField": "id",
    "titleField": "title",
    "searchable": [{"name": "title"}, {"name": "tag"}],
    "navigations": [{"name": "tag"}, {"name": "price", "type": "Range", "ranges": [{"low": 0}]}],
}


def records(n: int, tag: str, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"id": f"r{i}", "title": f"Item {i} {tag}", "tag": tag, "price": i}
        for i in range(start, start + n)
    ]


def total(client: TestClient, auth: dict[str, str], collection: str, query: str = "") -> int:
    r = client.post(
        "/api/v1/search",
        json={"collection": collection, "query": query, "pageSize": 0},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    return int(r.json()["totalRecordCount"])


def ndjson(rows: list[Any]) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in rows) + b"\n"


def test_json_array_upsert_by_id_last_occurrence_wins(
    client: TestClient, auth: dict[str, str]
) -> None:
    load(client, auth, "c", records(5, "old"), SETTINGS)
    batch = [
        {"id": "r1", "title": "first r1", "tag": "a"},
        {"id": "r9", "title": "new nine", "tag": "a"},
        {"id": "r1", "title": "second r1", "tag": "b"},
    ]
    r = client.post("/api/v1/collections/c/records?wait=true", json=batch, headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["upserted"] == 2
    assert body["searchable"] is True
    assert body["createdCollection"] is False
    assert client.get("/api/v1/collections/c/records/r1", headers=auth).json() == batch[2]
    assert client.get("/api/v1/collections/c", headers=auth).json()["recordCount"] == 6
    assert total(client, auth, "c", "second") == 1
    assert total(client, auth, "c", "first") == 0
    # Integer ids are stored as their string form.
    r = client.post(
        "/api/v1/collections/c/records?wait=true", json=[{"id": 42, "title": "x"}], headers=auth
    )
    assert r.json()["upserted"] == 1
    assert client.get("/api/v1/collections/c/records/42", headers=auth).json()["id"] == 42


def test_ndjson_upsert(client: TestClient, auth: dict[str, str]) -> None:
    rows = [*records(3, "nd"), {"id": "r0", "title": "zero again", "tag": "nd"}]
    for ctype in ("application/x-ndjson", "application/json"):
        r = client.post(
            "/api/v1/collections/nd/records?wait=true",
            content=ndjson(rows),
            headers={**auth, "Content-Type": ctype},
        )
        assert r.status_code == 200, r.text
        assert r.json()["upserted"] == 3
    assert client.get("/api/v1/collections/nd/records/r0", headers=auth).json()["title"] == (
        "zero again"
    )
    assert total(client, auth, "nd") == 3
    r = client.post(
        "/api/v1/collections/nd/records",
        content=b"id,title\n1,x\n",
        headers={**auth, "Content-Type": "text/csv"},
    )
    assert r.status_code == 400
    assert "/data/v1/upload/stream" in r.json()["error"]["message"]


def test_get_and_delete_single_records(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "c", [*records(4, "x"), {"id": "AB/12", "title": "slash id"}], SETTINGS)
    r = client.get("/api/v1/collections/c/records/AB/12", headers=auth)
    assert r.status_code == 200
    assert r.json()["title"] == "slash id"
    missing = client.get("/api/v1/collections/c/records/nope", headers=auth)
    assert missing.status_code == 404
    assert missing.json()["error"]["field"] == "id"

    r = client.delete("/api/v1/collections/c/records/r2?wait=true", headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["deleted"] == 1
    assert client.get("/api/v1/collections/c/records/r2", headers=auth).status_code == 404
    assert total(client, auth, "c") == 4
    again = client.delete("/api/v1/collections/c/records/r2", headers=auth)
    assert again.status_code == 404
    assert client.delete("/api/v1/collections/c/records/AB/12", headers=auth).status_code == 200
    assert client.delete("/api/v1/collections/zz/records/r1", headers=auth).status_code == 404


def test_delete_by_ids(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "c", records(10, "x"), SETTINGS)
    r = client.post(
        "/api/v1/collections/c/records/delete?wait=true",
        json={"ids": ["r1", "r2", "r2", "absent", "r3"]},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert r.json()["deleted"] == 3
    assert total(client, auth, "c") == 7
    assert client.get("/api/v1/collections/c", headers=auth).json()["recordCount"] == 7
    bad_bodies: list[dict[str, Any]] = [{"ids": "r1"}, {"ids": [{"id": 1}]}, {"nothing": []}]
    for bad in bad_bodies:
        r = client.post("/api/v1/collections/c/records/delete", json=bad, headers=auth)
        assert r.status_code == 400
        assert r.json()["error"]["field"] == "ids"
    r = client.post("/api/v1/collections/zz/records/delete", json={"ids": ["a"]}, headers=auth)
    assert r.status_code == 404


def test_wait_true_returns_once_searchable(client: TestClient, auth: dict[str, str]) -> None:
    client.put("/api/v1/collections/w", json=SETTINGS, headers=auth)
    for round_ in range(5):
        batch = records(50, f"round{round_}", start=round_ * 50)
        r = client.post("/api/v1/collections/w/records?wait=true", json=batch, headers=auth)
        assert r.status_code == 200
        assert r.json()["searchable"] is True
        assert total(client, auth, "w", f"round{round_}") == 50
        assert total(client, auth, "w") == 50 * (round_ + 1)


def test_invalid_records_are_skipped_and_reported(client: TestClient, auth: dict[str, str]) -> None:
    client.put("/api/v1/collections/v", json=SETTINGS, headers=auth)
    batch: list[Any] = [
        {"id": "ok1", "title": "fine"},
        {"title": "no id"},
        "not an object",
        {"id": "bad-price", "price": "cheap"},
        {"id": "nested", "tag": [["x"]]},
        {"id": "ok2", "title": "fine too"},
    ]
    r = client.post("/api/v1/collections/v/records?wait=true", json=batch, headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["upserted"] == 2
    assert body["invalidRecordCount"] == 4
    details = body["invalidRecordDetails"]
    assert [d["index"] for d in details] == [1, 2, 3, 4]
    assert details[0]["field"] == "id" and "missing id" in details[0]["reason"]
    assert "field" not in details[1] and "JSON object" in details[1]["reason"]
    assert details[2] == {
        "index": 3,
        "field": "price",
        "id": "bad-price",
        "reason": "'price' is a range navigation: a number is required",
    }
    assert details[3]["field"] == "tag"
    assert total(client, auth, "v") == 2

    lines = b'{"id": "n1", "title": "a"}\n{broken\n\n{"title": "no id"}\n{"id": "n2"}\n'
    r = client.post(
        "/api/v1/collections/v/records",
        content=lines,
        headers={**auth, "Content-Type": "application/x-ndjson"},
    )
    body = r.json()
    assert body["upserted"] == 2
    assert body["invalidRecordCount"] == 2
    assert [(d["line"], d.get("field")) for d in body["invalidRecordDetails"]] == [
        (2, None),
        (4, "id"),
    ]
    assert "not valid JSON" in body["invalidRecordDetails"][0]["reason"]


def test_fail_on_first_error_rejects_everything(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "f", records(3, "keep"), SETTINGS)
    batch = [{"id": "r0", "title": "changed"}, {"id": "n1", "price": "x"}, {"title": "no id"}]
    r = client.post("/api/v1/collections/f/records?failOnFirstError=true", json=batch, headers=auth)
    assert r.status_code == 420, r.text
    body = r.json()
    assert body["error"]["code"] == "upload_rejected"
    assert body["error"]["field"] == "price"
    assert "nothing was applied" in body["error"]["message"]
    assert body["invalidRecordCount"] == 2
    assert [d["index"] for d in body["invalidRecordDetails"]] == [1, 2]
    assert client.get("/api/v1/collections/f/records/r0", headers=auth).json()["title"] != (
        "changed"
    )
    assert client.get("/api/v1/collections/f/records/n1", headers=auth).status_code == 404
    # A rejected first upload does not create the collection either.
    r = client.post(
        "/api/v1/collections/fresh/records?failOnFirstError=true&mode=replace",
        json=[{"id": "a"}, {"no": "id"}],
        headers=auth,
    )
    assert r.status_code == 420
    assert client.get("/api/v1/collections/fresh", headers=auth).status_code == 404


def test_upload_without_valid_records_does_not_create_a_collection(
    client: TestClient, auth: dict[str, str]
) -> None:
    r = client.post("/api/v1/collections/empty/records", json=[{"x": 1}], headers=auth)
    assert r.status_code == 200
    assert r.json()["invalidRecordCount"] == 1
    assert r.json()["createdCollection"] is False
    assert client.get("/api/v1/collections/empty", headers=auth).status_code == 404
    load(client, auth, "empty", [{"id": "1", "title": "T", "brand": "B"}])
    nav = client.get("/api/v1/collections/empty", headers=auth).json()["settings"]["navigations"]
    assert [n["name"] for n in nav] == ["brand"]


def test_replace_is_atomic_for_concurrent_searches(
    client: TestClient, auth: dict[str, str]
) -> None:
    old, new = 1500, 2500
    load(client, auth, "cat", records(old, "old"), SETTINGS)
    seen: list[int] = []
    stop = threading.Event()

    def searcher() -> None:
        while not stop.is_set():
            seen.append(total(client, auth, "cat"))

    thread = threading.Thread(target=searcher)
    thread.start()
    try:
        for round_ in range(4):
            size, tag = (new, "new") if round_ % 2 == 0 else (old, "old")
            r = client.post(
                "/api/v1/collections/cat/records?mode=replace&wait=true",
                json=records(size, tag, start=round_ * 10_000),
                headers=auth,
            )
            assert r.status_code == 200, r.text
            assert total(client, auth, "cat") == size
    finally:
        stop.set()
        thread.join()
    assert len(seen) > 10
    assert set(seen) <= {old, new}, sorted(set(seen))
    assert new in seen
    # Nothing of the earlier catalogs survives the last replace.
    assert total(client, auth, "cat", "new") == 0
    assert client.get("/api/v1/collections/cat/records/r0", headers=auth).status_code == 404
    assert client.get("/api/v1/collections/cat", headers=auth).json()["recordCount"] == old


def test_concurrent_first_uploads_to_a_new_collection(
    client: TestClient, auth: dict[str, str], rt: Runtime
) -> None:
    def upload(n: int) -> int:
        r = client.post(
            "/api/v1/collections/race/records",
            json=records(20, f"t{n}", start=n * 100),
            headers=auth,
        )
        return int(r.status_code)

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(upload, range(6)))
    assert statuses == [200] * 6
    assert client.get("/api/v1/collections/race", headers=auth).json()["recordCount"] == 120
    assert rt.indexer.wait_for(rt.services.catalog.current_seq(), 30)
    assert total(client, auth, "race") == 120
