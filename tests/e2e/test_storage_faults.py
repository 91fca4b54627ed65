"""Honest answers when storage fails, against real server processes on a real small
filesystem (a tmpfs with a size) that the tests fill and then give room again."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import ServerProcess, cli_env, create_key
from tests.smallfs import SmallFs, small_fs

pytestmark = pytest.mark.e2e

BATCH = 200


@pytest.fixture
def fs(tmp_path: Path) -> Iterator[SmallFs]:
    with small_fs(tmp_path / "fs", 32) as mounted:
        yield mounted


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for srv in started:
        srv.stop()


def _records(name: str, n: int = BATCH) -> list[dict[str, Any]]:
    return [
        {"id": f"{name}-{i}", "title": f"item {i} of {name} " + "words " * 40, "batch": name}
        for i in range(n)
    ]


def _local_port(response: httpx.Response) -> int:
    stream = response.extensions["network_stream"]
    return int(stream.get_extra_info("client_addr")[1])


def _until(check: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


def _readyz(srv: ServerProcess) -> httpx.Response:
    return srv.get("/readyz")


def _log_records(srv: ServerProcess) -> list[dict[str, Any]]:
    found = []
    for line in srv.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


def _count(srv: ServerProcess, auth: dict[str, str], collection: str) -> tuple[int, int]:
    """(records in the database, records the index finds) of a collection."""
    info = httpx.get(f"{srv.url}/api/v1/collections/{collection}", headers=auth, timeout=30)
    assert info.status_code == 200, info.text
    found = httpx.post(
        f"{srv.url}/api/v1/search",
        json={"collection": collection, "query": "", "pageSize": 0},
        headers=auth,
        timeout=30,
    )
    assert found.status_code == 200, found.text
    return int(info.json()["recordCount"]), int(found.json()["totalRecordCount"])


@pytest.mark.timeout(240)
def test_a_full_disk_answers_507_never_500_loses_nothing_and_recovers(
    fs: SmallFs, servers: list[ServerProcess]
) -> None:
    """SQLite and the indexes both on the small filesystem, uploads until it is full."""
    srv = ServerProcess(fs.path)
    servers.append(srv)
    srv.start()
    srv.wait_ready()
    key = create_key(fs.path, None)
    auth = {"Authorization": f"Bearer {key}"}
    fs.leave_free(3)

    acknowledged: list[str] = []
    statuses: dict[int, int] = {}
    refused: list[httpx.Response] = []
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=srv.url, headers=auth, timeout=60, limits=limits) as client:
        for n in range(400):
            name = f"b{n}"
            r = client.post("/api/v1/collections/fill/records", json=_records(name))
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code == 200:
                acknowledged.append(name)
                continue
            refused.append(r)
            # The connection that carried the refusal carries the next request.
            healthy = client.get("/healthz")
            assert healthy.status_code == 200
            assert _local_port(healthy) == _local_port(r)
            if len(refused) >= 5:
                break
    assert set(statuses) <= {200, 507}, statuses
    assert refused, f"the filesystem never filled: {statuses}"
    assert acknowledged, statuses
    error = refused[0].json()["error"]
    assert error["code"] == "storage_unavailable"
    assert error["reason"] == "full"
    assert "nothing of this request was saved" in error["message"]
    assert error["requestId"] == refused[0].headers["x-request-id"]

    # Not ready while the data directory cannot be written.
    not_ready = _until(lambda: (r := _readyz(srv)).status_code == 503 and r, "not ready")
    assert "storage" in not_ready.json()["reason"], not_ready.text

    # The refusal's log record holds its request id, its code and the exception.
    logged = [rec for rec in _log_records(srv) if rec.get("request_id") == error["requestId"]]
    assert len(logged) == 1, logged
    assert logged[0]["status"] == 507 and logged[0]["error"] == "storage_unavailable"
    assert "database or disk is full" in logged[0]["exc"] or "No space" in logged[0]["exc"]

    fs.free()
    _until(lambda: _readyz(srv).status_code == 200, "ready again once space returned")
    r = httpx.post(
        f"{srv.url}/api/v1/collections/fill/records?wait=true",
        json=_records("after"),
        headers=auth,
        timeout=60,
    )
    assert r.status_code == 200, r.text
    acknowledged.append("after")
    stored, found = _count(srv, auth, "fill")
    # Every acknowledged record is there, and nothing that was refused.
    assert stored == found == BATCH * len(acknowledged)
    for name in (acknowledged[0], acknowledged[-2], "after"):
        one = httpx.get(f"{srv.url}/api/v1/collections/fill/records/{name}-0", headers=auth)
        assert one.status_code == 200, (name, one.text)


@pytest.mark.timeout(180)
def test_an_upload_committed_while_indexing_fails_is_acknowledged(
    tmp_path: Path, fs: SmallFs, servers: list[ServerProcess]
) -> None:
    """The database on another filesystem: the write commits, the index cannot be written."""
    database_url = f"sqlite:///{tmp_path / 'searchgate.db'}"
    srv = ServerProcess(fs.path, database_url)
    servers.append(srv)
    srv.start()
    srv.wait_ready()
    key = create_key(fs.path, database_url)
    auth = {"Authorization": f"Bearer {key}"}
    fs.fill()

    for collection in ("fresh", "other"):
        r = httpx.post(
            f"{srv.url}/api/v1/collections/{collection}/records",
            json=_records(collection, 50),
            headers=auth,
            timeout=60,
        )
        assert r.status_code == 200, r.text
        assert r.json()["upserted"] == 50
    not_ready = _until(lambda: (r := _readyz(srv)).status_code == 503 and r, "not ready")
    body = not_ready.json()
    assert body["indexerError"] and "index" in body["reason"], body

    fs.free()
    _until(lambda: _readyz(srv).status_code == 200, "ready again once space returned")
    for collection in ("fresh", "other"):
        # Searchable within the timed commit (SEARCHGATE_INDEX_COMMIT_SECONDS).
        _until(lambda c=collection: _count(srv, auth, c) == (50, 50), f"{collection} indexed")


@pytest.mark.timeout(120)
def test_an_internal_error_is_logged_with_its_request_id_and_keeps_the_connection(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    srv = ServerProcess(tmp_path / "data")
    servers.append(srv)
    srv.start()
    srv.wait_ready()
    key = create_key(srv.data_dir, None)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    db = srv.data_dir / "searchgate.db"
    with httpx.Client(
        base_url=srv.url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
        limits=limits,
    ) as client:
        path = "/api/v1/collections/shop/records"
        assert client.post(path, json=_records("first", 3)).status_code == 200
        # A database changed by hand under the server (a trigger left by a script, a
        # restore from another schema): a real failure no route expects.
        with sqlite3.connect(db) as conn:
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON records "
                "BEGIN SELECT RAISE(ABORT, 'records are refused here'); END"
            )
        failed = client.post(path, json=_records("second", 3))
        with sqlite3.connect(db) as conn:
            conn.execute("DROP TRIGGER refuse")
        assert failed.status_code == 500, failed.text
        rid = failed.headers["x-request-id"]
        assert failed.json()["error"] == {
            "code": "internal_error",
            "message": "the server failed to handle this request; quote the request id",
            "requestId": rid,
        }
        after = client.post(path, json=_records("second", 3))
        assert after.status_code == 200, after.text
        assert _local_port(after) == _local_port(failed)
    records = _log_records(srv)
    logged = [rec for rec in records if rec.get("request_id") == rid]
    assert len(logged) == 1, logged
    assert logged[0]["level"] == "error" and logged[0]["error"] == "internal_error"
    assert logged[0]["status"] == 500 and "records are refused here" in logged[0]["exc"]
    # No second record of the failure without its request id.
    log_text = srv.log_path.read_text(errors="replace")
    failures = [line for line in log_text.splitlines() if "records are refused here" in line]
    assert len(failures) == 1, log_text[-3000:]


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "searchgate.cli.main", *args],
        env=cli_env(data_dir, None),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.timeout(120)
def test_start_up_on_read_only_storage_is_one_line_and_a_failure(fs: SmallFs) -> None:
    data_dir = fs.path / "data"
    done = _cli(data_dir, "migrate")
    assert done.returncode == 0, done.stderr
    fs.remount("ro")
    for args, where in (
        (("serve", "--port", "0"), data_dir),
        (("keys", "list"), data_dir),
        (("migrate",), data_dir),
        # A data directory that cannot be created.
        (("serve", "--port", "0"), fs.path / "new"),
    ):
        done = _cli(where, *args, "--data-dir", str(where))
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        assert done.returncode != 0, (args, done.stdout, done.stderr)
        if args[0] in ("serve", "migrate"):
            assert done.returncode == 1, (args, done.stderr)
        assert len(lines) == 1, (args, lines)
        assert lines[0].startswith(f"error: the data directory {where} cannot be written"), lines
        assert "read-only" in lines[0], lines
