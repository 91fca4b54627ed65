"""Several ``searchgate serve`` nodes on one private PostgreSQL server, as separate
processes: each its own data directory and port, all with the same server secrets
(given in the environment, as docs/operations.md says for several nodes).

Used by tests/e2e/test_multinode.py and bench/multinode.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests import pg
from tests.e2e.server import ServerProcess, cli_env

SECRETS = {
    "SEARCHGATE_KEY_PEPPER": "multinode-pepper-5f0c7e1a9b2d4c6e8a0b",
    "SEARCHGATE_AUDIT_KEY": "multinode-audit-key-3d9e2b7c1f4a6e8d0c2b",
}
COLLECTION = "multi"
COLLECTION_SETTINGS = {
    "idField": "id",
    "titleField": "title",
    "searchable": [{"name": "title"}],
}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# Named ``__Host-sg_session`` where the console counts the site as secure (HTTPS, or
# this machine's own address, as browsers do), else ``sg_session``.
SESSION_COOKIE = "sg_session"


def node_env(data_dir: Path, database_url: str) -> dict[str, str]:
    return {**cli_env(data_dir, database_url), **SECRETS}


class Node(ServerProcess):
    """A server process with the cluster's secrets; restartable on its port."""

    def __init__(
        self, name: str, data_dir: Path, database_url: str, extra: dict[str, str] | None = None
    ) -> None:
        # The server gets the cluster's secrets and ``extra`` settings (its commands,
        # run by ``cli``, the secrets alone).
        super().__init__(data_dir, database_url, env={**SECRETS, **(extra or {})})
        self.name = name
        self.log_path = data_dir.parent / f"node-{name}.log"

    def cli(self, *args: str, stdin: str | None = None) -> str:
        """``searchgate ARGS`` run on this node's host (its data directory)."""
        assert self.database_url is not None
        done = subprocess.run(
            [sys.executable, "-m", "searchgate.cli.main", *args],
            env=node_env(self.data_dir, self.database_url),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"searchgate {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout


@dataclass
class Cluster:
    server: pg.PostgresServer
    database_url: str
    nodes: list[Node]
    key: str
    admin_token: str
    auth: dict[str, str] = field(init=False)
    admin: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.auth = {"Authorization": f"Bearer {self.key}"}
        self.admin = {"Authorization": f"Bearer {self.admin_token}"}

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_cluster(
    base: Path,
    count: int = 3,
    admin_email: str = "ops@example.com",
    extra: dict[str, str] | None = None,
) -> Cluster:
    """A private PostgreSQL server, ``count`` nodes on it (ready), a client key with
    every scope, and an admin's API token. The caller stops the nodes and the server.
    ``extra``: settings every node runs with."""
    server = pg.PostgresServer()
    server.start()
    url = server.create_database("searchgate")
    nodes = [Node(chr(ord("a") + i), base / f"node-{i}" / "data", url, extra) for i in range(count)]
    try:
        first = nodes[0]
        key = json.loads(
            first.cli("keys", "create", "--name", "multinode", "--all-scopes", "--json")
        )["secret"]
        first.cli(
            "users",
            "create",
            "--email",
            admin_email,
            "--role",
            "admin",
            "--name",
            "Ops",
            "--password-stdin",
            stdin="correct horse battery staple\n",
        )
        token = json.loads(
            first.cli("users", "token", "--user", admin_email, "--name", "multinode", "--json")
        )["token"]
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_ready(timeout=90)
        cluster = Cluster(server, url, nodes, key, token)
        r = httpx.put(
            f"{first.url}/api/v1/collections/{COLLECTION}",
            json=COLLECTION_SETTINGS,
            headers=cluster.auth,
            timeout=30,
        )
        assert r.status_code in (200, 201), r.text
    except BaseException:
        for node in nodes:
            node.stop()
        server.stop()
        raise
    return cluster


def word(prefix: str, n: int) -> str:
    """A word that matches no other record's: letters only (digits would split it in
    two), and twelve of them that differ from every other such word in most places
    (typo tolerance would match a word one letter away)."""
    digest = hashlib.sha256(f"{prefix}:{n}".encode()).hexdigest()[:12]
    return prefix + "".join(chr(ord("a") + int(c, 16)) for c in digest)


def search_count(node: Node, auth: dict[str, str], query: str) -> int:
    r = httpx.post(
        f"{node.url}/api/v1/search",
        json={"collection": COLLECTION, "query": query, "pageSize": 0},
        headers=auth,
        timeout=10,
    )
    assert r.status_code == 200, r.text
    count: int = r.json()["totalRecordCount"]
    return count


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Polls ``condition`` until it holds; returns the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if condition():
            return time.monotonic() - started
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(0.005)


def upload(node: Node, auth: dict[str, str], records: list[dict[str, Any]]) -> None:
    """Uploads without waiting for indexing."""
    r = httpx.post(
        f"{node.url}/api/v1/collections/{COLLECTION}/records",
        json=records,
        headers=auth,
        timeout=30,
    )
    assert r.status_code == 200, r.text


def _set_cookies(r: httpx.Response) -> dict[str, str]:
    """The cookies an answer sets, read from its headers (the client's cookie jar keeps
    none for a bare IP address host)."""
    found = {}
    for header in r.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        found[name.strip()] = rest.split(";", 1)[0]
    return found


def sign_in(node: Node, email: str, password: str) -> dict[str, str]:
    """Signs in through ``node``'s console as a browser would; returns the session
    cookie."""
    page = httpx.get(node.url + "/sign-in", timeout=10)
    match = _CSRF.search(page.text)
    assert match, page.text[:500]
    r = httpx.post(
        node.url + "/sign-in",
        data={"email": email, "password": password, "csrf_token": match.group(1)},
        headers={"Origin": node.url},
        cookies=_set_cookies(page),
        timeout=10,
    )
    assert r.status_code in (200, 303), r.text[:2000]
    session = {k: v for k, v in _set_cookies(r).items() if k.endswith(SESSION_COOKIE)}
    assert session, f"no session cookie after signing in: {r.status_code}"
    return session
