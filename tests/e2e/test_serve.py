"""``searchgate serve`` as a real process: migrations, health, readiness, uploads."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory

from searchgate.migrations import alembic_config
from tests.e2e.server import ServerProcess, cli_env, create_key
from tests.pg import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "data")
    yield srv
    srv.stop()


def test_serve_migrates_a_fresh_data_dir_and_reports_health(server: ServerProcess) -> None:
    assert not server.data_dir.exists()
    server.start()
    assert server.wait_for("/healthz").json() == {"status": "ok"}
    server.wait_ready()
    ready = server.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["database"] == "ok"
    assert ready["indexLag"] == 0
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    with sqlite3.connect(server.data_dir / "searchgate.db") as db:
        (version,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert version == head
    assert {"collections", "records", "changes", "client_keys"} <= tables

    # The uvicorn server runs in the serve process itself: its pid is the server's.
    assert server.children() == []

    key = create_key(server.data_dir, None)
    auth = {"Authorization": f"Bearer {key}"}
    r = httpx.post(
        f"{server.url}/api/v1/collections/shop/records?wait=true",
        json=[{"id": "1", "title": "Lamp"}, {"id": "2", "title": "Desk lamp"}],
        headers=auth,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    r = httpx.post(
        f"{server.url}/api/v1/search",
        json={"collection": "shop", "query": "lamp"},
        headers=auth,
        timeout=10,
    )
    assert r.status_code == 200
    assert r.json()["totalRecordCount"] == 2
    assert r.headers["x-request-id"]
    r = httpx.post(f"{server.url}/api/v1/search", json={"query": "lamp"}, timeout=10)
    assert r.status_code == 401


def serve_process(data_dir: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "searchgate.cli.main", "serve", "--port", str(port)],
        env=cli_env(data_dir, None),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_says_it_listens_only_once_the_port_is_bound(tmp_path: Path) -> None:
    port = free_port()
    proc = serve_process(tmp_path / "data", port)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "listening on" in line:
                break
        else:
            pytest.fail(f"serve exited with {proc.wait()} without saying it listens")
        assert line.strip() == f"Searchgate listening on http://127.0.0.1:{port}"
        # The line is a promise: a client that reads it can connect at once.
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        proc = serve_process(tmp_path / "data", port)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert lines == [
        f"error: cannot listen on 127.0.0.1:{port}: the address is in use (is another "
        "server running? choose another --port)"
    ], out + err
