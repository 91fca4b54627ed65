"""SIGKILL of a real server in the middle of concurrent uploads.

Proves the durability promise: every upload acknowledged with HTTP 200 is searchable
after a restart, and no upload is ever half applied (each batch is entirely present or
entirely absent, in the database and in the rebuilt index alike).
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import pg
from tests.e2e.server import ServerProcess, create_key

pytestmark = pytest.mark.e2e

UPLOADERS = 4
BATCH = 250
COLLECTION = "load"


@dataclass
class Uploader:
    """Sends batches with distinct ids until the server goes away."""

    number: int
    url: str
    auth: dict[str, str]
    wait: bool
    acknowledged: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # sent, never answered
    rejected: list[tuple[str, int]] = field(default_factory=list)

    def batch(self, n: int) -> tuple[str, list[dict[str, Any]]]:
        name = f"u{self.number}b{n}"
        return name, [
            {"id": f"{name}-{i}", "title": f"item {i} of {name}", "batch": name, "n": i}
            for i in range(BATCH)
        ]

    def run(self, stop: threading.Event) -> None:
        path = f"/api/v1/collections/{COLLECTION}/records" + ("?wait=true" if self.wait else "")
        with httpx.Client(base_url=self.url, headers=self.auth, timeout=30) as client:
            n = 0
            while not stop.is_set():
                name, records = self.batch(n)
                n += 1
                try:
                    r = client.post(path, json=records)
                except httpx.TransportError:
                    self.unknown.append(name)
                    return
                if r.status_code == 200:
                    self.acknowledged.append(name)
                else:
                    self.rejected.append((name, r.status_code))
                    return


def batch_counts(srv: ServerProcess, auth: dict[str, str]) -> tuple[int, dict[str, int]]:
    r = httpx.post(
        f"{srv.url}/api/v1/search",
        json={"collection": COLLECTION, "query": "", "pageSize": 0},
        headers=auth,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    nav = next(n for n in body["availableNavigation"] if n["name"] == "batch")
    assert not nav["moreRefinements"]
    return body["totalRecordCount"], {ref["value"]: ref["count"] for ref in nav["refinements"]}


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None  # the default: a SQLite file in the data directory
    server: pg.PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database(f"sg_e2e_{random.randrange(10**9)}")


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for srv in started:
        srv.stop()


@pytest.mark.timeout(90)
def test_sigkill_during_uploads_loses_no_acknowledged_record(
    tmp_path: Path, database_url: str | None, servers: list[ServerProcess]
) -> None:
    data_dir = tmp_path / "data"
    first = ServerProcess(data_dir, database_url)
    servers.append(first)
    first.start()
    first.wait_ready()
    assert first.children() == [], "serve must run uvicorn in its own process"
    key = create_key(data_dir, database_url)
    auth = {"Authorization": f"Bearer {key}"}
    settings = {
        "idField": "id",
        "titleField": "title",
        "searchable": [{"name": "title"}],
        "navigations": [{"name": "batch", "maxValues": 5000}],
    }
    r = httpx.put(f"{first.url}/api/v1/collections/{COLLECTION}", json=settings, headers=auth)
    assert r.status_code == 201, r.text

    stop = threading.Event()
    uploaders = [Uploader(i, first.url, auth, wait=i % 2 == 0) for i in range(UPLOADERS)]
    threads = [threading.Thread(target=u.run, args=(stop,)) for u in uploaders]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while sum(len(u.acknowledged) for u in uploaders) < 12 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 0.3))
    assert first.kill() == -signal.SIGKILL
    stop.set()
    for t in threads:
        t.join(timeout=40)
    acknowledged = [b for u in uploaders for b in u.acknowledged]
    unknown = [b for u in uploaders for b in u.unknown]
    assert not [r for u in uploaders for r in u.rejected]
    assert len(acknowledged) >= 12, "the uploads did not get going before the kill"

    second = ServerProcess(data_dir, database_url)
    servers.append(second)
    second.start()
    second.wait_ready()
    total, counts = batch_counts(second, auth)
    # Every acknowledged batch is there, whole; any other batch is whole or absent.
    missing = [b for b in acknowledged if counts.get(b) != BATCH]
    assert not missing, f"acknowledged batches lost or partial: {missing}"
    partial = {b: c for b, c in counts.items() if c != BATCH}
    assert not partial, f"half-applied uploads: {partial}"
    assert set(counts) <= set(acknowledged) | set(unknown)
    # The index matches the database exactly.
    info = httpx.get(f"{second.url}/api/v1/collections/{COLLECTION}", headers=auth).json()
    assert info["recordCount"] == total == BATCH * len(counts)
    sample = acknowledged[-1]
    r = httpx.get(
        f"{second.url}/api/v1/collections/{COLLECTION}/records/{sample}-{BATCH - 1}",
        headers=auth,
    )
    assert r.status_code == 200 and r.json()["batch"] == sample

    # The restarted server takes uploads again.
    r = httpx.post(
        f"{second.url}/api/v1/collections/{COLLECTION}/records?wait=true",
        json=Uploader(99, second.url, auth, wait=True).batch(0)[1],
        headers=auth,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert batch_counts(second, auth)[1]["u99b0"] == BATCH
