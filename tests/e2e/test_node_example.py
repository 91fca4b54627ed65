"""The Node example (examples/node) through a whole key rotation.

Real parts only: the example's own ``npm ci`` (GroupBy's published ``groupby-api``
client, unchanged), a ``searchgate serve`` process, an OpenBao dev server holding the
client key in KV v2, two Node server processes reading it there with read-only tokens,
and ``searchgate rotate`` as its own process, as an operator runs it.

- ``node-storefront`` re-reads the key every 2 s and is searched without pause while
  the rotation runs: it moves to the new key by itself, and no search fails.
- ``node-nightly`` keeps the key for the default 5 minutes and is searched only before
  the rotation (outside its quiet period, so the rotation cannot know it) and after
  the old key's deletion: its first search then gets a 401, it re-reads the key once,
  and the search succeeds.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from searchgate.secretstores import open_store
from tests.e2e.rotation_support import Operator, TunedServer, running, seed
from tests.e2e.server import stop_process
from tests.pg import free_port
from tests.stores import BaoServer, unique_path

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node"
STOREFRONT = "node-storefront"
NIGHTLY = "node-nightly"
QUIET_SECONDS = 3
ROTATE = ["--quiet", f"{QUIET_SECONDS}s", "--probation", "2s", "--move-timeout", "60s"]
ROTATE += ["--poll", "0.2s", "--json"]
QUERIES = ("tv", "lamp", "speaker", "camera", "laptop", "black", "")


def node_tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        return node, npm
    missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if not path)
    message = f"{missing} not installed (scripts/system-deps installs nodejs and npm)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def npm_ci(npm: str) -> None:
    """``npm ci`` in the example's folder, skipped while node_modules was installed from
    this very package-lock.json (a stamp beside the modules holds the lock's hash)."""
    digest = hashlib.sha256((EXAMPLE / "package-lock.json").read_bytes()).hexdigest()
    stamp = EXAMPLE / "node_modules" / ".installed-from-lock"
    lock_file = Path(tempfile.gettempdir()) / "searchgate-node-example-npm-ci.lock"
    with open(lock_file, "w") as lock:
        # Test processes running side by side share the folder: one installs.
        fcntl.flock(lock, fcntl.LOCK_EX)
        with contextlib.suppress(OSError):
            if stamp.read_text() == digest:
                return
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=EXAMPLE,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci failed in {EXAMPLE}:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
        stamp.write_text(digest)


class NodeServer:
    """``node server.js`` of the example, as one system reading the key from OpenBao."""

    def __init__(self, node: str, system: str, env: dict[str, str], log_dir: Path) -> None:
        self.system = system
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{system}.log"
        base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
        self.env = {**base, **env, "SEARCHGATE_SYSTEM": system, "PORT": str(self.port)}
        self.cmd = [node, "server.js"]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.cmd, cwd=EXAMPLE, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.system} exited with {self.proc.returncode}:\n{self.log()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + "/stats", timeout=5).status_code == 200:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"{self.system} did not answer within 30 s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def search(self, http: httpx.Client, query: str) -> httpx.Response:
        return http.get(self.url + "/search", params={"q": query, "pageSize": 5})

    def stats(self) -> dict[str, Any]:
        r = httpx.get(self.url + "/stats", timeout=10)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def stop(self) -> None:
        stop_process(self.proc)


@dataclass
class Load:
    """Searches through one Node server without pause, in a few threads."""

    node: NodeServer
    threads: int = 2
    results: list[tuple[float, int, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _run(self, offset: int) -> None:
        with httpx.Client(timeout=30) as http:
            n = offset
            while not self.stop.is_set():
                query = QUERIES[n % len(QUERIES)]
                n += 1
                try:
                    r = self.node.search(http, query)
                    status, detail = r.status_code, r.text[:300]
                    if status == 200 and "totalRecordCount" not in r.json():
                        status = 0
                except httpx.HTTPError as exc:
                    status, detail = 0, type(exc).__name__
                self.results.append((time.time(), status, detail))

    def start(self) -> None:
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._threads.append(t)

    def wait_for(self, count: int, since: float = 0.0, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(1 for t, s, _ in list(self.results) if t >= since and s == 200) >= count:
                return
            self.stop.wait(0.05)
        raise TimeoutError(f"fewer than {count} searches answered through {self.node.system}")

    def close(self) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(timeout=60)


@dataclass
class World(Operator):
    bao: BaoServer
    path: str
    old_key: str
    old_id: str

    def node_env(self, tmp_path: Path, *, token_file: bool) -> dict[str, str]:
        """What a Node server is given: where the key is, and a token that may only read it."""
        mount, rest = self.path.split("/", 1)
        token = self.bao.token_with_policy(
            f'path "{mount}/data/{rest}" {{ capabilities = ["read"] }}', default_policy=False
        )
        env = {
            "SEARCHGATE_URL": self.server.url,
            "SEARCHGATE_KEY_PATH": self.path,
            "VAULT_ADDR": self.bao.addr,
        }
        if token_file:
            file = tmp_path / f"vault-token-{len(list(tmp_path.glob('vault-token-*')))}"
            file.write_text(token + "\n")
            file.chmod(0o600)
            env["VAULT_TOKEN_FILE"] = str(file)
        else:
            env["VAULT_TOKEN"] = token
        return env


@pytest.fixture
def node() -> str:
    node, npm = node_tools()
    npm_ci(npm)
    return node


@pytest.fixture
def world(tmp_path: Path, bao_server: BaoServer) -> Iterator[World]:
    path = "secret/" + unique_path()
    seeded = seed(tmp_path / "data", open_store("vault", path, env=bao_server.env), records=500)
    with running(TunedServer(tmp_path / "data")) as server:
        yield World(server, seeded.token, bao_server, path, seeded.key, seeded.key_id)


def rotate(w: World) -> subprocess.CompletedProcess[str]:
    cmd, env = w.rotate_command("vault", w.path, *ROTATE, env=w.bao.env)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=200, check=False)


@pytest.mark.timeout(600)
def test_the_node_example_searches_through_a_rotation_without_a_failure(
    node: str, world: World, tmp_path: Path
) -> None:
    w = world
    storefront = NodeServer(
        node,
        STOREFRONT,
        {**w.node_env(tmp_path, token_file=False), "SEARCHGATE_KEY_MAX_AGE_SECONDS": "2"},
        tmp_path,
    )
    # The default key age (5 minutes): it still holds the old key after the deletion.
    nightly = NodeServer(node, NIGHTLY, w.node_env(tmp_path, token_file=True), tmp_path)
    load = Load(storefront)
    try:
        storefront.start()
        nightly.start()
        with httpx.Client(timeout=30) as http:
            before = [nightly.search(http, q) for q in QUERIES[:3]]
        nightly_last_use = time.monotonic()
        assert [r.status_code for r in before] == [200] * 3, [r.text for r in before]
        assert before[0].json()["totalRecordCount"] > 0
        assert nightly.stats()["keyReads"] == 1

        load.start()
        load.wait_for(20)
        # The rotation waits only for systems seen on the old key within its quiet
        # period before the start: the nightly system must not be one of them.
        while time.monotonic() < nightly_last_use + QUIET_SECONDS + 1:
            load.stop.wait(0.1)
        done = rotate(w)
        rotation_ended = time.time()
        load.wait_for(20, since=rotation_ended)

        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout)
        assert result["outcome"] == "finished", result
        [deleted] = w.admin("/audit", action="admin:keys:delete", target=w.old_id)["events"]
        assert deleted["outcome"] == "success"
        assert w.self_check(w.old_key).status_code == 401

        # After the deletion: the nightly system's held key is refused once, it re-reads
        # the store and its search succeeds.
        with httpx.Client(timeout=30) as http:
            after = [nightly.search(http, q) for q in QUERIES[:3]]
        assert [r.status_code for r in after] == [200] * 3, [r.text for r in after]
        load.close()
        storefront_stats, nightly_stats = storefront.stats(), nightly.stats()
    finally:
        load.close()
        storefront.stop()
        nightly.stop()

    failed = [(s, d) for _, s, d in load.results if s != 200]
    report = {
        "searchesThroughStorefront": len(load.results),
        "failed": len(failed),
        "storefront": storefront_stats,
        "nightly": nightly_stats,
        "rotation": result["rotationId"],
    }
    (tmp_path / "node-example.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))

    assert failed == [], failed[:10]
    assert storefront_stats["failedSearches"] == 0 and nightly_stats["failedSearches"] == 0
    # The storefront moved to the new key by itself, before the old one was disabled.
    rotation = w.admin(f"/rotations/{result['rotationId']}")["rotation"]
    assert rotation["steps"]["verify"]["moved"] == [STOREFRONT]
    assert storefront_stats["keyReads"] > 1
    # The nightly system read the key once at its start and once more on the 401.
    assert nightly_stats["keyReads"] == 2 and nightly_stats["refreshesOn401"] == 1
    assert "searchgate answered 401 (invalid_key): re-reading the client key" in nightly.log()
    # Both sent their system name: the new key's usage knows them by it (once flushed).
    deadline = time.monotonic() + 30
    while True:
        usage = w.admin(f"/keys/{result['newKeyId']}/usage")["systems"]
        systems = {u["system"] for u in usage}
        if systems == {STOREFRONT, NIGHTLY} or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert systems == {STOREFRONT, NIGHTLY}
    new_key = open_store("vault", w.path, env=w.bao.env).read().value
    for log in (storefront.log(), nightly.log()):
        assert w.old_key not in log and new_key not in log
