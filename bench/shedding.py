"""Load shedding: /healthz and a cheap search from another key while one key sends an
expensive search (a deep page sorted by title) from 16 connections.

A real one-worker server on a generated catalog; the flood runs in its own process
(so that its threads do not take this process's interpreter from the measuring one).
Each phase measures one /healthz and one cheap search after the other, for the given
seconds: first with no flood, then under it. Prints p50/p99/max per phase and what
the flooding key was answered (200, 429 too_many_concurrent, 503 overloaded).

Run ``python -m bench.shedding --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.catalog import products, write_direct
from bench.common import Latency, console, now_iso, scrub_environment, table, write_result
from bench.server import Server, fresh_dir
from searchgate.config import Settings
from searchgate.keys.scopes import ALL_SCOPES
from searchgate.permissions import Actor
from searchgate.runtime import build_services

EXPENSIVE = {"query": "", "pageSize": 1000, "sort": [{"field": "title"}], "skip": 8500}
CHEAP = {"query": "headphones", "pageSize": 10}


def flood(url: str, key: str, connections: int, stop: Any) -> Counter[str]:
    """The expensive search from ``connections`` connections until ``stop`` is set;
    what it was answered."""

    async def one(client: httpx.AsyncClient, seen: Counter[str]) -> None:
        while not stop.is_set():
            r = await client.post("/api/v1/search", json=EXPENSIVE)
            code = "ok" if r.status_code == 200 else r.json()["error"]["code"]
            seen[f"{r.status_code} {code}"] += 1

    async def main() -> Counter[str]:
        seen: Counter[str] = Counter()
        limits = httpx.Limits(max_connections=connections)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            base_url=url, headers=headers, limits=limits, timeout=120
        ) as client:
            await asyncio.gather(*(one(client, seen) for _ in range(connections)))
        return seen

    return asyncio.run(main())


def measure(url: str, key: str, seconds: float) -> dict[str, Latency]:
    health: list[float] = []
    cheap: list[float] = []
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, timeout=120) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            r = client.get("/healthz")
            health.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
            t0 = time.perf_counter()
            r = client.post("/api/v1/search", json=CHEAP, headers=headers)
            cheap.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
    return {"healthz": Latency.of_seconds(health), "cheap search": Latency.of_seconds(cheap)}


def run(data_dir: Path, records: int, connections: int, seconds: float) -> dict[str, Any]:
    write_direct(data_dir, products(records), 10_000)
    heavy, light = make_keys(data_dir, "heavy", "light")
    out: dict[str, Any] = {"at": now_iso(), "records": records, "connections": connections}
    with Server(data_dir, workers=1).start() as server:
        url = server.base_url
        measure(url, light, 2)  # warm-up
        out["idle"] = measure(url, light, seconds)
        with multiprocessing.Manager() as manager:
            stop = manager.Event()
            counts = manager.dict()
            proc = multiprocessing.Process(
                target=_flood_into, args=(url, heavy, connections, stop, counts)
            )
            proc.start()
            time.sleep(2)  # the flood reaches its steady state
            out["flood"] = measure(url, light, seconds)
            stop.set()
            proc.join(180)
            out["flooding key answers"] = dict(counts)
    return out


def _flood_into(url: str, key: str, connections: int, stop: Any, counts: Any) -> None:
    counts.update(flood(url, key, connections, stop))


def make_keys(data_dir: Path, *names: str) -> list[str]:
    services = build_services(Settings(data_dir=data_dir, database_url=None, key_pepper=None))
    try:
        actor = Actor.system("bench")
        return [services.keys.create(actor, name, ALL_SCOPES).secret for name in names]
    finally:
        services.db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/searchgate-bench-shedding"))
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args(argv)
    scrub_environment()
    data_dir = fresh_dir(args.data_dir.parent.resolve(), args.data_dir.name)
    result = run(data_dir, args.records, args.connections, args.seconds)
    rows = [
        (f"{phase}: {what}", lat.count, lat.p50_ms, lat.p99_ms, lat.max_ms)
        for phase in ("idle", "flood")
        for what, lat in result[phase].items()
    ]
    console.print(
        table(
            f"/healthz and a cheap search (another key) while one key sends the expensive "
            f"search from {args.connections} connections ({args.records:,} records)",
            ("phase", "requests", "p50 ms", "p99 ms", "max ms"),
            rows,
        )
    )
    console.print(f"flooding key answered: {result['flooding key answers']}")
    path = write_result(
        "shedding",
        {
            **result,
            "idle": {k: vars(v) for k, v in result["idle"].items()},
            "flood": {k: vars(v) for k, v in result["flood"].items()},
        },
    )
    console.print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
