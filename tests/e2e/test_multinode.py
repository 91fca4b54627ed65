"""Three ``searchgate serve`` nodes on one PostgreSQL server, each a process with its
own data directory and port: what one node changes, the others see at once (their
followers are woken by NOTIFY); a node cut off from the database refuses client keys
with 503 ``revocations_unconfirmed`` within the staleness bound and recovers by itself;
a node killed with SIGKILL catches up before it reports ready.

Deadlines here are generous bounds for a shared machine, not figures: the lags are
measured by bench/multinode.py.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests import pg
from tests.e2e.cluster import (
    COLLECTION,
    Cluster,
    search_count,
    sign_in,
    start_cluster,
    upload,
    wait_until,
    word,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# "Within 1 s" in the issue; the margin is for a loaded two-core machine.
PROPAGATION_DEADLINE = 5.0
STALENESS = 5.0  # Settings().key_revocation_staleness_seconds, what the nodes run with
# A node notices within the bound; the margin covers a look that was under way.
REFUSAL_DEADLINE = STALENESS + 5.0
RECOVERY_DEADLINE = 60.0
VIEWER_EMAIL = "viewer@example.com"
VIEWER_PASSWORD = "another horse battery staple"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not pg.available():
        pytest.skip("PostgreSQL 15 is not installed (scripts/system-deps installs it)")
    started = start_cluster(tmp_path_factory.mktemp("multinode"))
    try:
        yield started
    finally:
        started.stop()
        started.server.stop()


def keys_self(url: str, auth: dict[str, str]) -> httpx.Response:
    return httpx.get(url + "/api/v1/keys/self", headers=auth, timeout=10)


def test_an_upload_through_a_is_searchable_through_c(cluster: Cluster) -> None:
    a, _b, c = cluster.nodes
    for n in range(5):
        unique = word("spread", n)
        upload(a, cluster.auth, [{"id": f"spread-{n}", "title": f"{unique} lamp"}])
        wait_until(
            lambda w=unique: search_count(c, cluster.auth, w) == 1,  # type: ignore[misc]
            PROPAGATION_DEADLINE,
            f"upload {n} through A searchable through C",
        )


def test_a_waiting_upload_through_a_is_searchable_everywhere_when_answered(
    cluster: Cluster,
) -> None:
    a, b, c = cluster.nodes
    r = httpx.post(
        f"{a.url}/api/v1/collections/{COLLECTION}/records?wait=true",
        json=[{"id": "waited", "title": "waitedword chair"}],
        headers=cluster.auth,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert search_count(b, cluster.auth, "waitedword") == 1
    assert search_count(c, cluster.auth, "waitedword") == 1


def test_a_key_disabled_through_a_is_refused_by_b(cluster: Cluster) -> None:
    a, b, _c = cluster.nodes
    created = a.cli("keys", "create", "--name", "to-disable", "--scope", "search", "--json")
    info = json.loads(created)
    auth = {"Authorization": f"Bearer {info['secret']}"}
    # B holds the key in its cache.
    assert keys_self(b.url, auth).status_code == 200
    r = httpx.post(
        f"{a.url}/api/v1/admin/keys/{info['key']['id']}/disable",
        json={"reason": "multinode test"},
        headers=cluster.admin,
        timeout=10,
    )
    assert r.status_code == 200, r.text

    def refused() -> bool:
        answer = keys_self(b.url, auth)
        return answer.status_code == 401 and answer.json()["error"]["code"] == "key_disabled"

    wait_until(refused, PROPAGATION_DEADLINE, "the key disabled through A refused by B")


def test_a_console_session_from_a_works_on_b_and_ends_there_when_the_user_is_disabled(
    cluster: Cluster,
) -> None:
    a, b, _c = cluster.nodes
    a.cli(
        "users",
        "create",
        "--email",
        VIEWER_EMAIL,
        "--role",
        "viewer",
        "--name",
        "Vi",
        "--password-stdin",
        stdin=VIEWER_PASSWORD + "\n",
    )
    session = sign_in(a, VIEWER_EMAIL, VIEWER_PASSWORD)

    def home_on_b() -> httpx.Response:
        return httpx.get(b.url + "/", cookies=session, timeout=10, follow_redirects=False)

    first = home_on_b()
    assert first.status_code == 200, (first.status_code, first.headers.get("location"))
    r = httpx.post(
        f"{a.url}/api/v1/admin/users/{VIEWER_EMAIL}/disable", headers=cluster.admin, timeout=10
    )
    assert r.status_code == 200, r.text

    def signed_out() -> bool:
        answer = home_on_b()
        return answer.status_code in (302, 303) and "sign-in" in answer.headers["location"]

    wait_until(signed_out, PROPAGATION_DEADLINE, "the session of the disabled user ended on B")


def test_a_node_killed_and_restarted_catches_up_before_it_is_ready(cluster: Cluster) -> None:
    a, _b, c = cluster.nodes
    assert c.kill() == -signal.SIGKILL
    batches = 20
    for n in range(batches):
        upload(
            a,
            cluster.auth,
            [{"id": f"while-down-{n}-{i}", "title": f"whiledown batch{n}"} for i in range(50)],
        )
    wait_until(
        lambda: search_count(a, cluster.auth, "whiledown") == batches * 50,
        PROPAGATION_DEADLINE * 4,
        "the uploads searchable through A",
    )
    c.start()
    c.wait_ready(timeout=90)
    # Ready means caught up: every record written while it was down is searchable now.
    assert search_count(c, cluster.auth, "whiledown") == batches * 50


class Watcher:
    """Calls a node with a client key until stopped, recording every status."""

    def __init__(self, url: str, auth: dict[str, str]) -> None:
        self.url = url
        self.auth = auth
        self.statuses: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                r = httpx.post(
                    self.url + "/api/v1/search",
                    json={"collection": COLLECTION, "query": "lamp"},
                    headers=self.auth,
                    timeout=10,
                )
                self.statuses.append(r.status_code)
            except httpx.TransportError:
                pass
            time.sleep(0.05)


def test_a_node_cut_off_from_the_database_refuses_keys_then_recovers(cluster: Cluster) -> None:
    nodes = cluster.nodes
    for node in nodes:
        assert keys_self(node.url, cluster.auth).status_code == 200
    watchers = [Watcher(node.url, cluster.auth) for node in nodes]
    for w in watchers:
        w.thread.start()
    cluster.server.pause()
    try:
        for node in nodes:

            def refused(url: str = node.url) -> bool:
                r = keys_self(url, cluster.auth)
                if r.status_code != 503:
                    return False
                assert r.json()["error"]["code"] == "revocations_unconfirmed", r.text
                assert int(r.headers["Retry-After"]) >= 1
                return True

            wait_until(refused, REFUSAL_DEADLINE, f"node {node.name} refuses keys, cut off")
    finally:
        cluster.server.resume()
    try:
        for node in nodes:
            wait_until(
                lambda url=node.url: keys_self(url, cluster.auth).status_code == 200,  # type: ignore[misc]
                RECOVERY_DEADLINE,
                f"node {node.name} accepts keys again",
            )
            assert search_count(node, cluster.auth, "lamp") >= 1
    finally:
        for w in watchers:
            w.stop.set()
            w.thread.join()
    for node, w in zip(nodes, watchers, strict=True):
        assert 503 in w.statuses, node.name
        assert set(w.statuses) <= {200, 503}, (node.name, sorted(set(w.statuses)))


def test_every_node_is_ready_after_the_outage(cluster: Cluster) -> None:
    for node in cluster.nodes:
        node.wait_ready(timeout=RECOVERY_DEADLINE)
