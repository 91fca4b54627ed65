"""A key rotation with the systems spread over three nodes loses no request.

Real parts only: three ``searchgate serve`` nodes on one PostgreSQL (tests/e2e/cluster.py),
the primary client key in an OpenBao KV v2 secret, one storefront system per node that
reads the key from OpenBao through the SDK (re-read every 2 s and on a 401) and searches
that node without pause, and ``searchgate rotate`` as its own process against node A,
as an operator runs it. What each node learns of the systems (key usage) and of the
old key's end (its disabling and deletion) goes through the database.

Asserted: the rotation finishes and every system moved, the old key is deleted and
refused by every node, the store's key is the new one on every node, and not one
search failed.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bench.rotation_load import LoadClient

from searchgate.secretstores import open_store
from searchgate_client import CachedKey, from_store
from searchgate_client.keyformat import display_prefix
from tests import pg
from tests.e2e.cluster import COLLECTION, Cluster, start_cluster, upload, wait_until
from tests.e2e.rotation_support import SHORT_WAITS, Operator
from tests.stores import BaoServer, unique_path

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SDK_MAX_AGE = 2.0  # seconds a system keeps the key before reading OpenBao again
ROTATE = ["--quiet", "3s", "--probation", "2s", "--move-timeout", "60s", "--poll", "0.2s"]
ROTATE += ["--json"]
PROPAGATION_DEADLINE = 5.0  # as in tests/e2e/test_multinode.py


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    if not pg.available():
        pytest.skip("PostgreSQL 15 is not installed (scripts/system-deps installs it)")
    started = start_cluster(tmp_path, count=3, extra=SHORT_WAITS)
    try:
        yield started
    finally:
        started.stop()
        started.server.stop()


def test_a_rotation_with_systems_on_every_node_fails_no_request(
    cluster: Cluster, bao_server: BaoServer
) -> None:
    a = cluster.nodes[0]
    created = json.loads(
        a.cli("keys", "create", "--name", "storefront", "--all-scopes", "--primary", "--json")
    )
    old_key, old_id = created["secret"], created["key"]["id"]
    path = "secret/" + unique_path()
    open_store("vault", path, env=bao_server.env).write(old_key, expected_version=None)
    upload(a, cluster.auth, [{"id": f"r{n}", "title": f"lamp {n}"} for n in range(20)])

    systems = [
        LoadClient(
            f"storefront-{node.name}",
            node.url,
            CachedKey(
                from_store(open_store("vault", path, env=bao_server.env)),
                max_age_seconds=SDK_MAX_AGE,
            ),
            collection=COLLECTION,
            pause_seconds=0.02,
        )
        for node in cluster.nodes
    ]
    stop = threading.Event()
    threads = [threading.Thread(target=s.run, args=(stop,), daemon=True) for s in systems]
    operator = Operator(a, cluster.admin_token)
    for t in threads:
        t.start()
    try:
        wait_until(
            lambda: all(sum(c.ok for c in s.calls) >= 10 for s in systems),
            60,
            "every system searching",
        )
        cmd, env = operator.rotate_command("vault", path, *ROTATE, env=bao_server.env)
        done = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=150, check=False
        )
        after = {s.system: len(s.calls) for s in systems}
        wait_until(
            lambda: all(len(s.calls) >= after[s.system] + 10 for s in systems),
            60,
            "every system searching after the rotation",
        )
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)

    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["outcome"] == "finished", result
    rotation = operator.admin(f"/rotations/{result['rotationId']}")["rotation"]
    assert sorted(rotation["steps"]["verify"]["moved"]) == sorted(s.system for s in systems)
    [deleted] = operator.admin("/audit", action="admin:keys:delete", target=old_id)["events"]
    assert deleted["outcome"] == "success"

    new_key = open_store("vault", path, env=bao_server.env).read().value
    for node in cluster.nodes:
        wait_until(
            lambda url=node.url: (
                httpx.get(  # type: ignore[misc]
                    url + "/api/v1/keys/self", headers={"Authorization": f"Bearer {old_key}"}
                ).status_code
                == 401
            ),
            PROPAGATION_DEADLINE,
            f"the old key refused by node {node.name}",
        )
        r = httpx.get(
            node.url + "/api/v1/keys/self", headers={"Authorization": f"Bearer {new_key}"}
        )
        assert r.status_code == 200 and r.json()["id"] == result["newKeyId"], r.text

    failed = [(s.system, c.status, c.error) for s in systems for c in s.calls if not c.ok]
    assert failed == [], failed[:10]
    # Each system searched with the old key, then moved to the new one by itself.
    old_prefix, new_prefix = display_prefix(old_key), display_prefix(new_key)
    for s in systems:
        assert s.calls[0].served_by == old_prefix, s.system
        assert s.calls[-1].served_by == new_prefix, s.system
