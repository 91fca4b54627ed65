"""Explicit limits, set small here, each answered with a JSON error that names it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from searchgate.config import Limits, Settings

MAX_BODY = 20_000


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        key_pepper="test-pepper",
        index_writer_heap_bytes=50_000_000,
        index_writer_threads=1,
        indexer_poll_seconds=0.02,
        limits=Limits(
            max_body_bytes=MAX_BODY,
            max_records_per_request=50,
            max_record_bytes=400,
            max_fields_per_record=5,
            max_collections=3,
        ),
    )


def rows(n: int) -> list[dict[str, Any]]:
    return [{"id": str(i), "title": f"t{i}"} for i in range(n)]


def count(client: TestClient, auth: dict[str, str], collection: str) -> int | None:
    r = client.get(f"/api/v1/collections/{collection}", headers=auth)
    return int(r.json()["recordCount"]) if r.status_code == 200 else None


def assert_too_large(r: Any) -> None:
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["limit"] == MAX_BODY
    assert "SEARCHGATE_LIMIT_MAX_BODY_BYTES" in error["message"]


def test_body_size_with_declared_length(client: TestClient, auth: dict[str, str]) -> None:
    big = orjson.dumps([{"id": str(i), "title": "x" * 100} for i in range(200)])
    assert len(big) > MAX_BODY
    r = client.post(
        "/api/v1/collections/c/records",
        content=big,
        headers={**auth, "Content-Type": "application/json"},
    )
    assert_too_large(r)
    r = client.post(
        "/data/v1/upload/stream",
        files={"config": ("config", "collection: c"), "data": ("data", big, "application/json")},
        headers=auth,
    )
    assert_too_large(r)
    assert count(client, auth, "c") is None


def test_chunked_body_without_length(client: TestClient, auth: dict[str, str]) -> None:
    def body() -> Iterator[bytes]:
        yield b"["
        for i in range(400):
            yield orjson.dumps({"id": str(i), "title": "y" * 60}) + b","
        yield b'{"id": "last"}]'

    r = client.post(
        "/api/v1/collections/c/records",
        content=body(),
        headers={**auth, "Content-Type": "application/json"},
    )
    assert_too_large(r)
    assert count(client, auth, "c") is None
    # A chunked body under the limit goes through.
    r = client.post(
        "/api/v1/collections/c/records",
        content=iter([b"[", orjson.dumps({"id": "1", "title": "t"}), b"]"]),
        headers={**auth, "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert count(client, auth, "c") == 1


def test_records_per_request(client: TestClient, auth: dict[str, str]) -> None:
    r = client.post("/api/v1/collections/c/records", json=rows(51), headers=auth)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "limit_exceeded"
    assert error["limit"] == 50
    assert "SEARCHGATE_LIMIT_MAX_RECORDS_PER_REQUEST" in error["message"]
    assert count(client, auth, "c") is None
    csv = "id\n" + "".join(f"{i}\n" for i in range(51))
    r = client.post(
        "/data/v1/upload/stream",
        files={"config": ("config", "collection: c"), "data": ("data", csv, "text/csv")},
        headers=auth,
    )
    assert r.status_code == 422
    assert (
        client.post("/api/v1/collections/c/records", json=rows(50), headers=auth).json()["upserted"]
        == 50
    )
    r = client.post(
        "/api/v1/collections/c/records/delete",
        json={"ids": [str(i) for i in range(51)]},
        headers=auth,
    )
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "ids"
    assert count(client, auth, "c") == 50


def test_record_size_and_field_count(client: TestClient, auth: dict[str, str]) -> None:
    batch = [
        {"id": "big", "title": "z" * 500},
        {"id": "wide", "a": 1, "b": 2, "c": 3, "d": 4, "e": 5},
        {"id": "ok", "a": 1, "b": 2, "c": 3, "d": "é" * 150},
    ]
    r = client.post("/api/v1/collections/c/records", json=batch, headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["upserted"] == 1
    details = body["invalidRecordDetails"]
    assert details[0]["index"] == 0
    assert "SEARCHGATE_LIMIT_MAX_RECORD_BYTES" in details[0]["reason"]
    assert "at most 400 bytes" in details[0]["reason"]
    assert details[1]["index"] == 1
    assert "SEARCHGATE_LIMIT_MAX_FIELDS_PER_RECORD" in details[1]["reason"]
    assert "this one has 6" in details[1]["reason"]
    # Size counts bytes, not characters: 150 "é" are 300 bytes of UTF-8.
    r = client.post(
        "/api/v1/collections/c/records",
        json=[{"id": "multi", "d": "é" * 190}],
        headers=auth,
    )
    assert r.json()["invalidRecordCount"] == 1
    r = client.post("/api/v1/collections/c/records?failOnFirstError=true", json=batch, headers=auth)
    assert r.status_code == 420


def test_collection_count(client: TestClient, auth: dict[str, str]) -> None:
    for name in ("a", "b"):
        assert client.put(f"/api/v1/collections/{name}", json={}, headers=auth).status_code == 201
    assert client.post("/api/v1/collections/c/records", json=rows(1), headers=auth).status_code == (
        200
    )
    for r in (
        client.put("/api/v1/collections/d", json={}, headers=auth),
        client.post("/api/v1/collections/d/records", json=rows(1), headers=auth),
    ):
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["field"] == "collection"
        assert error["limit"] == 3
        assert "SEARCHGATE_LIMIT_MAX_COLLECTIONS" in error["message"]
    # Changing an existing collection is not a new one.
    assert client.put("/api/v1/collections/a", json={}, headers=auth).status_code == 200
    assert client.delete("/api/v1/collections/b", headers=auth).status_code == 200
    assert client.put("/api/v1/collections/d", json={}, headers=auth).status_code == 201
    names = [
        c["name"] for c in client.get("/api/v1/collections", headers=auth).json()["collections"]
    ]
    assert names == ["a", "c", "d"]


def test_key_in_url_is_refused(client: TestClient, auth: dict[str, str], key: str) -> None:
    for url in (
        f"/api/v1/collections/c/records?clientKey={key}",
        f"/api/v1/collections/c/records?client_key={key}",
    ):
        r = client.post(url, json=rows(1), headers=auth)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "key_in_url"
        assert key not in r.text
    r = client.get(f"/api/v1/collections?clientKey={key}")
    assert r.status_code == 400
    assert count(client, auth, "c") is None
