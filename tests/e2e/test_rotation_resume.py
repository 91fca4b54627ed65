"""A rotation killed after each of its steps, and re-run until it finishes.

A real ``searchgate serve`` process, a real OpenBao server holding the key (KV v2), a
storefront that keeps searching with the key it reads from the store (refreshing on a
401, as the SDK does), and ``searchgate rotate`` run as a process of its own. The
rotation process dies right after each step is recorded (the testing hook
SEARCHGATE_ROTATION_CRASH_AFTER exits with 137, as a SIGKILL would), and once more by a
real SIGKILL in the middle of the probation. Between every death and the next run, the
key in the store must authenticate; at the end, the old key is refused, the change log
holds one event per step, and the storefront never failed a request.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from searchgate.secretstores import SecretStore, open_store
from tests.e2e.rotation_support import Operator, TunedServer, running, seed
from tests.stores import BaoServer, unique_path

pytestmark = pytest.mark.e2e

ROTATE = ["--quiet", "1s", "--probation", "3s", "--move-timeout", "60s", "--lease", "2s"]
ROTATE += ["--poll", "0.2s", "--json"]


@dataclass
class Storefront:
    """Searches all along with the key from the store: cached, re-read every 0.3 s (the
    SDK's refresh) and at once on a 401, then retried. ``failed`` counts the searches
    that failed even after that."""

    url: str
    store: SecretStore
    requests: int = 0
    refreshed_on_401: int = 0
    failed: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        headers = {"X-Searchgate-System": "storefront"}
        key, read_at = self.store.read().value, time.monotonic()
        with httpx.Client(base_url=self.url, timeout=10, headers=headers) as http:
            while not self.stop.is_set():
                if time.monotonic() - read_at > 0.3:
                    key, read_at = self.store.read().value, time.monotonic()
                body = {"collection": "default", "query": "tv", "pageSize": 1}
                r = http.post(
                    "/api/v1/search", json=body, headers={"Authorization": f"Bearer {key}"}
                )
                self.requests += 1
                if r.status_code == 401:
                    self.refreshed_on_401 += 1
                    key, read_at = self.store.read().value, time.monotonic()
                    r = http.post(
                        "/api/v1/search", json=body, headers={"Authorization": f"Bearer {key}"}
                    )
                if r.status_code != 200:
                    self.failed.append(f"{r.status_code} {r.text[:200]}")
                time.sleep(0.05)


@dataclass
class Setup(Operator):
    store: SecretStore
    path: str
    vault_env: dict[str, str]
    old_key: str
    old_id: str

    def rotate(self, *extra: str, crash_after: str | None = None) -> subprocess.Popen[str]:
        env = {**self.vault_env}
        if crash_after:
            env["SEARCHGATE_ROTATION_CRASH_AFTER"] = crash_after
        cmd, environ = self.rotate_command("vault", self.path, *ROTATE, *extra, env=env)
        return subprocess.Popen(
            cmd, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def store_key_works(self) -> None:
        """The invariant: whatever happened, the store holds a key that authenticates."""
        assert self.key_status(self.store.read().value) == 200


@pytest.fixture
def setup(tmp_path: Path, bao_server: BaoServer) -> Iterator[Setup]:
    path = "secret/" + unique_path()
    store = open_store("vault", path, env=bao_server.env)
    seeded = seed(tmp_path / "data", store, records=50)
    with running(TunedServer(tmp_path / "data"), timeout=45) as server:
        yield Setup(server, seeded.token, store, path, bao_server.env, seeded.key, seeded.key_id)


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def current_rotation(s: Setup) -> dict[str, Any] | None:
    rot: dict[str, Any] | None = s.admin("/rotations/current")["rotation"]
    return rot


def test_a_rotation_killed_after_every_step_finishes_without_losing_a_key(setup: Setup) -> None:
    s = setup
    shop = Storefront(s.server.url, open_store("vault", s.path, env=s.vault_env))
    thread = threading.Thread(target=shop.run, daemon=True)
    thread.start()
    try:
        time.sleep(1.0)  # the storefront is a system of the old key before the start
        for step in ("preconditions", "create-key", "store-write", "verify"):
            code, out, err = finish(s.rotate(crash_after=step))
            assert code == 137, (step, code, err[-2000:])
            rot = current_rotation(s)
            assert rot is not None and rot["stepName"] == step, rot
            s.store_key_works()

        # A real SIGKILL during the probation: the old key is disabled, the store has
        # the new one.
        proc = s.rotate()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            rot = current_rotation(s)
            if rot and rot["oldKey"]["state"] == "disabled":
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.1)
        code, out, err = finish(proc)
        assert code == -signal.SIGKILL, (code, err[-2000:])
        s.store_key_works()
        assert s.key_status(s.old_key) == 401  # disabled: probation

        for step in ("drain", "confirm"):
            code, out, err = finish(s.rotate(crash_after=step))
            assert code == 137, (step, code, err[-2000:])
            s.store_key_works()

        code, out, err = finish(s.rotate())
        assert code == 0, err[-2000:]
        result = json.loads(out)
        assert result["outcome"] == "finished", result
    finally:
        shop.stop.set()
        thread.join(timeout=10)

    rid = result["rotationId"]
    new_key = s.store.read().value
    assert s.key_status(new_key) == 200 and s.key_status(s.old_key) == 401
    assert current_rotation(s) is None
    rotation = s.admin(f"/rotations/{rid}")["rotation"]
    assert rotation["status"] == "finished" and rotation["newKeyId"] == result["newKeyId"]
    assert rotation["oldKey"]["state"] == "deleted"
    # The run killed after step 2 took its secret with it: that key was replaced.
    assert len(rotation["replacedKeyIds"]) == 1

    events = s.admin("/audit", target=rid, action="admin:rotation:*", limit="100")["events"]
    done = Counter(
        e["details"].get("step", e["action"]) for e in events if e["outcome"] == "success"
    )
    assert done == {
        "admin:rotation:start": 1,
        "preconditions": 1,
        "create-key": 2,
        "store-write": 1,
        "verify": 1,
        "drain": 1,
        "confirm": 1,
        "admin:rotation:finish": 1,
    }
    keys = s.admin("/keys")["keys"]
    assert [k["id"] for k in keys] == [result["newKeyId"]]

    assert shop.requests > 50
    assert shop.failed == [], shop.failed[:5]
    # The storefront moved by reading the store, before the old key was disabled.
    assert rotation["steps"]["verify"]["moved"] == ["storefront"]
    assert new_key not in s.server.log_tail(10_000) and s.old_key not in s.server.log_tail(10_000)
