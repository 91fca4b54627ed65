"""Replication and revocation lag between nodes: three ``searchgate serve`` processes
on one private PostgreSQL server (tests/e2e/cluster.py starts them).

- Replication lag: an upload of one record through node A (answered without waiting
  for indexing), then node C is searched every few milliseconds until the record is
  found; the lag runs from A's answer to C's first answer holding the record. Measured
  with the default commit policy (``index_commit_idle_seconds`` 0.15 s after the last
  change, at most ``index_commit_seconds`` 1 s under a steady stream), with commits at once
  (0 s), and as the time an upload with ``?wait=true`` takes (it returns once every
  node can find the record).
- Under a sustained upload: the same replication lag while another client uploads demo
  records through A without pause (batches of ``--batch``), and the rate that upload
  kept.
- Revocation lag: a key B has just accepted is disabled through A's admin API; the lag
  runs from A's answer to B's first refusal (B is called every few milliseconds).

    .venv/bin/python -m bench.multinode [--uploads 100] [--disables 30] [--batch 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from tests.e2e.cluster import COLLECTION, Cluster, start_cluster, word

from bench.common import Latency, console, fmt, machine, scrub_environment, table, write_result
from searchgate.demo import generate

POLL_SECONDS = 0.002
DEADLINE_SECONDS = 30.0


def _searchable(client: httpx.Client, word: str) -> bool:
    r = client.post("/api/v1/search", json={"collection": COLLECTION, "query": word, "pageSize": 0})
    r.raise_for_status()
    return bool(r.json()["totalRecordCount"])


def replication(cluster: Cluster, uploads: int, tag: str) -> list[float]:
    a, _b, c = cluster.nodes
    lags = []
    with (
        httpx.Client(base_url=a.url, headers=cluster.auth, timeout=30) as to_a,
        httpx.Client(base_url=c.url, headers=cluster.auth, timeout=30) as to_c,
    ):
        for n in range(uploads):
            unique = word("rep" + tag, n)
            r = to_a.post(
                f"/api/v1/collections/{COLLECTION}/records",
                json=[{"id": f"{tag}-{n}", "title": f"{unique} lamp"}],
            )
            r.raise_for_status()
            answered = time.monotonic()
            while not _searchable(to_c, unique):
                if time.monotonic() - answered > DEADLINE_SECONDS:
                    raise TimeoutError(f"upload {n} not searchable on C")
                time.sleep(POLL_SECONDS)
            lags.append(time.monotonic() - answered)
    return lags


def waited_uploads(cluster: Cluster, uploads: int) -> list[float]:
    a = cluster.nodes[0]
    took = []
    with httpx.Client(base_url=a.url, headers=cluster.auth, timeout=60) as to_a:
        for n in range(uploads):
            started = time.monotonic()
            r = to_a.post(
                f"/api/v1/collections/{COLLECTION}/records?wait=true",
                json=[{"id": f"waited-{n}", "title": f"{word('waited', n)} chair"}],
            )
            r.raise_for_status()
            took.append(time.monotonic() - started)
    return took


def sustained(cluster: Cluster, uploads: int, batch: int) -> tuple[list[float], float]:
    """Replication lags measured while demo records stream into A; and the records per
    second that stream kept meanwhile."""
    stop = threading.Event()
    sent = 0
    failure: list[BaseException] = []

    def feed() -> None:
        nonlocal sent
        records = list(generate(batch * 20))
        round_ = 0
        try:
            with httpx.Client(base_url=cluster.nodes[0].url, headers=cluster.auth, timeout=60) as c:
                while not stop.is_set():
                    for start in range(0, len(records), batch):
                        if stop.is_set():
                            return
                        chunk = [
                            {**r, "id": f"bulk-{round_}-{r['id']}"}
                            for r in records[start : start + batch]
                        ]
                        c.post(
                            f"/api/v1/collections/{COLLECTION}/records", json=chunk
                        ).raise_for_status()
                        sent += len(chunk)
                    round_ += 1
        except BaseException as exc:  # reported by the measuring thread
            failure.append(exc)

    feeder = threading.Thread(target=feed, daemon=True)
    started = time.monotonic()
    feeder.start()
    try:
        lags = replication(cluster, uploads, "s")
    finally:
        stop.set()
        feeder.join(timeout=120)
    elapsed = time.monotonic() - started
    if failure:
        raise RuntimeError("the sustained upload failed") from failure[0]
    return lags, sent / elapsed


def revocation(cluster: Cluster, disables: int) -> list[float]:
    a, b, _c = cluster.nodes
    lags = []
    with (
        httpx.Client(base_url=a.url, headers=cluster.admin, timeout=30) as admin_a,
        httpx.Client(base_url=b.url, timeout=30) as to_b,
    ):
        for n in range(disables):
            r = admin_a.post(
                "/api/v1/admin/keys", json={"name": f"bench-revoke-{n}", "scopes": ["search"]}
            )
            r.raise_for_status()
            created: dict[str, Any] = r.json()
            auth = {"Authorization": f"Bearer {created['secret']}"}
            key_id = created["key"]["id"]
            # B has the key in its cache when it is disabled.
            assert to_b.get("/api/v1/keys/self", headers=auth).status_code == 200
            admin_a.post(f"/api/v1/admin/keys/{key_id}/disable", json={}).raise_for_status()
            answered = time.monotonic()
            while to_b.get("/api/v1/keys/self", headers=auth).status_code != 401:
                if time.monotonic() - answered > DEADLINE_SECONDS:
                    raise TimeoutError(f"key {n} still accepted by B")
                time.sleep(POLL_SECONDS)
            lags.append(time.monotonic() - answered)
    return lags


def run_cluster(base: Path, commit_seconds: str, work: Any) -> Any:
    cluster = start_cluster(base, extra={"SEARCHGATE_INDEX_COMMIT_SECONDS": commit_seconds})
    try:
        return work(cluster)
    finally:
        cluster.stop()
        cluster.server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--disables", type=int, default=30)
    parser.add_argument("--batch", type=int, default=1000, help="records per sustained upload")
    args = parser.parse_args()
    scrub_environment()
    results: dict[str, Latency] = {}
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="sg-multinode-") as tmp:
        base = Path(tmp)

        def default_commit(cluster: Cluster) -> None:
            results["upload A -> searchable on C (defaults: idle 0.15 s, commit 1 s)"] = (
                Latency.of_seconds(replication(cluster, args.uploads, "d"))
            )
            results["upload A ?wait=true, answered"] = Latency.of_seconds(
                waited_uploads(cluster, args.uploads)
            )
            results["disable on A -> refused by B"] = Latency.of_seconds(
                revocation(cluster, args.disables)
            )
            lags, rate = sustained(cluster, args.uploads, args.batch)
            name = f"upload A -> searchable on C, A taking {rate:,.0f} records/s meanwhile"
            results[name] = Latency.of_seconds(lags)
            rates["sustained upload records/s"] = rate

        run_cluster(base / "default", "1", default_commit)
        run_cluster(
            base / "at-once",
            "0",
            lambda cluster: results.__setitem__(
                "upload A -> searchable on C (commit 0 s)",
                Latency.of_seconds(replication(cluster, args.uploads, "i")),
            ),
        )
    console.print(
        table(
            "Three nodes on one PostgreSQL (ms)",
            ["measure", "count", "p50", "p90", "p99", "max"],
            [
                [name, lat.count, lat.p50_ms, lat.p90_ms, lat.p99_ms, lat.max_ms]
                for name, lat in results.items()
            ],
        )
    )
    path = write_result(
        "multinode",
        {
            "machine": machine(),
            "uploads": args.uploads,
            "disables": args.disables,
            "batch": args.batch,
            "rates": rates,
            "results": {name: vars(lat) for name, lat in results.items()},
        },
    )
    console.print(f"written to {fmt(str(path))}")


if __name__ == "__main__":
    main()
