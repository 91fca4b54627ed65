"""The evidence for issue 5: a full key rotation under load drops no request.

Real parts only: ``searchgate serve --workers 2`` (two uvicorn worker processes, each
with its own key cache and usage flusher), a real OpenBao server holding the key in KV
v2, four storefront systems that each read the key from OpenBao through the SDK
(``CachedKey(from_store(open_store("vault", ...)))``, re-read every 2 s and on a 401)
and search without pause, a fifth system that searches only now and then (so the
rotation cannot see it, and it still holds the old key after the deletion), and
``searchgate rotate`` as a process of its own, with the admin's personal token and the
VAULT_* environment, exactly as an operator runs it.

Reported (a table with ``pytest -s``, and JSON in the test's tmp dir): requests, failed
requests, requests the SDK recovered by refreshing the key on a 401, requests served by
the old key after its deletion, latency before and during the rotation. Asserted: no
failed request, no old-key success after the deletion (nor for a prober that tries the
old key on fresh connections right after it), and a finished rotation: exit 0, the old
key refused, the store's key authenticating as the rotation's new key. No latency is
asserted: the machine is shared.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from bench.common import console, machine
from bench.rotation_load import LoadClient, RotationLoad, figures_table, summarize

from searchgate.secretstores import open_store
from searchgate_client import CachedKey, from_store
from searchgate_client.keyformat import display_prefix
from tests import pg
from tests.e2e.rotation_support import Operator, TunedServer, running, seed
from tests.stores import BaoServer, unique_path

pytestmark = pytest.mark.e2e

WORKERS = 2
CLIENTS = 4
SDK_MAX_AGE = 2.0  # seconds the SDK keeps the key before reading the store again
RARE_SYSTEM = "nightly-feed"  # searches now and then, with the SDK's default cache (5 min)
RARE_CALLS = 3
BEFORE_SECONDS = 5.0  # load before the rotation starts: the "before" latency
AFTER_SECONDS = 2.0
# Usage reaches the database every 0.2 s, so the rotation's waits see systems quickly;
# the key cache stays at its default (1 s): each worker process has its own.
SERVER_ENV = {"SEARCHGATE_KEY_USAGE_FLUSH_SECONDS": "0.2"}
ROTATE = ["--quiet", "3s", "--probation", "2s", "--move-timeout", "60s", "--json"]


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None  # a SQLite file in the data directory
    server: pg.PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database(f"sg_rot_{random.randrange(10**9)}")


@dataclass
class World(Operator):
    path: str
    vault_env: dict[str, str]
    old_key: str
    old_id: str
    database: str


@pytest.fixture
def world(tmp_path: Path, bao_server: BaoServer, database_url: str | None) -> Iterator[World]:
    data_dir = tmp_path / "data"
    path = "secret/" + unique_path()
    store = open_store("vault", path, env=bao_server.env)
    seeded = seed(data_dir, store, database_url, records=500)
    server = TunedServer(data_dir, database_url, SERVER_ENV, ["--workers", str(WORKERS)])
    with running(server):
        yield World(
            server,
            seeded.token,
            path,
            bao_server.env,
            seeded.key,
            seeded.key_id,
            "postgres" if database_url else "sqlite",
        )


@dataclass
class OldKeyProber:
    """Waits for the change log's admin:keys:delete event of the old key, then sends
    the old key right away, each time on a fresh connection (so that both worker
    processes, each with its own key cache, get asked)."""

    world: World
    statuses: list[int] = field(default_factory=list)
    deleted_at: float | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        w = self.world
        while not self.stop.is_set() and self.deleted_at is None:
            events = w.admin("/audit", action="admin:keys:delete", target=w.old_id)["events"]
            done = [e for e in events if e["outcome"] == "success"]
            if done:
                self.deleted_at = datetime.fromisoformat(done[0]["time"]).timestamp()
            else:
                self.stop.wait(0.1)
        # No keep-alive: every request opens a connection, which the kernel hands to
        # either worker.
        fresh = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=w.server.url, limits=fresh, timeout=30) as http:
            probe_until = time.monotonic() + 2.0
            while not self.stop.is_set() and time.monotonic() < probe_until:
                r = http.post(
                    "/api/v1/search",
                    json={"collection": "default", "query": "tv", "pageSize": 1},
                    headers={
                        "Authorization": f"Bearer {w.old_key}",
                        "X-Searchgate-System": "prober",
                    },
                )
                self.statuses.append(r.status_code)


def rotate(w: World) -> subprocess.Popen[str]:
    cmd, env = w.rotate_command("vault", w.path, *ROTATE, env=w.vault_env)
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def epoch(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


@pytest.mark.timeout(300)
def test_a_rotation_under_load_fails_no_request(world: World, tmp_path: Path) -> None:
    w = world
    host = machine()  # the load average before this test's own load
    assert len(w.server.children()) >= WORKERS, "serve must run two worker processes"
    load = RotationLoad(
        w.server.url,
        lambda: from_store(open_store("vault", w.path, env=w.vault_env)),
        clients=CLIENTS,
        max_age_seconds=SDK_MAX_AGE,
    )
    # A system that searched before the rotation but not in the quiet period before its
    # start, so the rotation cannot know it: it still holds the old key after the
    # deletion, and only the SDK's refresh on the 401 saves its next request.
    rare = LoadClient(
        RARE_SYSTEM,
        w.server.url,
        CachedKey(from_store(open_store("vault", w.path, env=w.vault_env)), max_age_seconds=300),
    )
    prober = OldKeyProber(w)
    prober_thread = threading.Thread(target=prober.run, daemon=True)
    with load:
        for _ in range(RARE_CALLS):
            rare.once()
        load.wait_for_calls(per_client=5, timeout=60)
        time.sleep(BEFORE_SECONDS)
        rotation_started = time.time()
        prober_thread.start()
        proc = rotate(w)
        try:
            out, err = proc.communicate(timeout=200)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"the rotation did not finish in 200 s:\n{err[-3000:]}")
        rotation_ended = time.time()
        for _ in range(RARE_CALLS):
            rare.once()
        rare.close()
        time.sleep(AFTER_SECONDS)
        load.stop()
    prober.stop.set()
    prober_thread.join(timeout=60)

    assert proc.returncode == 0, err[-3000:]
    result = json.loads(out)
    assert result["outcome"] == "finished", result
    rotation = w.admin(f"/rotations/{result['rotationId']}")["rotation"]
    assert rotation["status"] == "finished"

    store_key = open_store("vault", w.path, env=w.vault_env).read().value
    new_check = w.self_check(store_key)
    assert new_check.status_code == 200 and new_check.json()["id"] == result["newKeyId"]
    old_check = w.self_check(w.old_key)
    assert old_check.status_code == 401, old_check.text

    drain = rotation["steps"]["drain"]
    deleted_at = prober.deleted_at
    assert deleted_at is not None, "no admin:keys:delete event for the old key"
    old_prefix, new_prefix = display_prefix(w.old_key), display_prefix(store_key)
    figures = summarize(
        sorted(load.calls + rare.calls, key=lambda c: c.started_at),
        labels={old_prefix: "old", new_prefix: "new"},
        rotation_started=rotation_started,
        rotation_ended=rotation_ended,
        old_prefix=old_prefix,
        old_disabled_at=epoch(drain.get("disabledAt")),
        old_deleted_at=deleted_at,
    )
    figures["proberAfterDeletion"] = dict(
        sorted((str(s), prober.statuses.count(s)) for s in set(prober.statuses))
    )
    figures["oldKeyServedAfterDeletion"] += sum(1 for s in prober.statuses if 200 <= s < 300)
    figures["rotation"] = {
        "id": rotation["id"],
        "seconds": round(rotation_ended - rotation_started, 2),
        "commandStartedAt": datetime.fromtimestamp(rotation_started, UTC).isoformat(),
        "steps": {name: step["at"] for name, step in rotation["steps"].items()},
        "oldKeyDisabledAt": drain.get("disabledAt"),
        "oldKeyDeletedAt": datetime.fromtimestamp(deleted_at, UTC).isoformat(),
        "moved": rotation["steps"]["verify"]["moved"],
    }
    figures["setup"] = {
        "workers": WORKERS,
        "database": w.database,
        "clients": CLIENTS,
        "rareSystem": {"name": RARE_SYSTEM, "sdkMaxAgeSeconds": 300, "calls": 2 * RARE_CALLS},
        "sdkMaxAgeSeconds": SDK_MAX_AGE,
        "rotate": ROTATE,
        "serverEnv": SERVER_ENV,
        "store": "OpenBao dev server (KV v2)",
    }
    figures["machine"] = host
    report = tmp_path / "rotation-under-load.json"
    report.write_text(json.dumps(figures, indent=2, default=str))
    console.print(figures_table(figures, f"rotation under load ({w.database}, {WORKERS} workers)"))
    console.print(f"figures: {report}")

    assert figures["failed"] == 0, figures["failures"]
    assert figures["oldKeyServedAfterDeletion"] == 0, figures
    assert prober.statuses and set(prober.statuses) == {401}, figures["proberAfterDeletion"]
    # The load really spanned the rotation, and every system moved to the new key by
    # itself, before the old key was disabled.
    assert figures["latency"]["before"]["requests"] > 0
    assert figures["latency"]["during"]["requests"] > 0
    systems = [c.system for c in load.clients]
    assert rotation["steps"]["verify"]["moved"] == systems
    for system in systems:
        assert figures["systems"][system]["servedBy"].get("new", 0) > 0, figures["systems"]
    # The rare system sent the deleted key once, was refused, and the SDK recovered.
    assert figures["systems"][RARE_SYSTEM] == {
        "requests": 2 * RARE_CALLS,
        "failed": 0,
        "refreshed": 1,
        "servedBy": {"old": RARE_CALLS, "new": RARE_CALLS},
        "firstNewKeyAt": rare.calls[RARE_CALLS].started_at,
    }
    assert rare.calls[RARE_CALLS].attempts[0].key_prefix == old_prefix
