"""The authentication overhead benchmark: search throughput of one server process with
real client key checks and usage tracking, against the same server process with a
no-op authenticator (bench/auth_server.py), in the same run.

Both servers run at once on one data directory (a generated catalog, each server with
its own index slot) and take turns under the same load (wrk replaying the real query
mix with two refinements per search, else Python load processes), in the order
A B B A A B B A ...: a linear drift of the machine's speed cancels out. The issue's
target: authentication costs at most 3% of search throughput.

Run ``python -m bench.auth_bench --help``; ``--quick`` checks the script in about a
minute.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import timeit
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import load, queries
from bench.catalog import products, write_direct
from bench.common import REPO, console, machine, now_iso, scrub_environment, table, write_result
from bench.raw import copy_slots
from bench.server import Server, fresh_dir, make_key
from searchgate.config import Settings
from searchgate.db import Database
from searchgate.keys.usage import UsageQueries, UsageTracker

TARGET_OVERHEAD = 0.03
MODES = ("real", "noop")
FULL: dict[str, Any] = {"records": 100_000, "duration": 5.0, "rounds": 6, "sample": 1000}
QUICK: dict[str, Any] = {"records": 5000, "duration": 1.0, "rounds": 2, "sample": 200}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Search throughput with real key checks and usage tracking vs the same "
        "server with a no-op authenticator; prints a table and writes JSON to bench/results/."
    )
    p.add_argument("--queries", type=Path, default=queries.DEFAULT_PATH, help="TSV query mix")
    p.add_argument("--records", type=int, help="catalog size (default 100,000)")
    p.add_argument("--duration", type=float, help="seconds per measured run (default 5)")
    p.add_argument("--rounds", type=int, help="measured runs per server (default 6)")
    p.add_argument("--sample", type=int, help="search queries drawn (default 1,000)")
    p.add_argument("--connections", type=int, default=2, help="concurrent connections")
    p.add_argument("--seed", type=int, default=queries.SEED)
    p.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    p.add_argument("--data-root", type=Path, help="where the data directory goes (tmp)")
    p.add_argument("--keep", action="store_true", help="keep the data directory")
    p.add_argument("--out", type=Path, help="JSON result path (default bench/results/)")
    p.add_argument("--quick", action="store_true", help="5,000 records, 1 s runs, 2 rounds")
    args = p.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.rounds < 1 or args.duration <= 0 or args.connections < 1:
        p.error("--rounds and --connections must be at least 1, --duration positive")
    return args


class AuthServer(Server):
    """One server process started by bench/auth_server.py, with the real or the no-op
    authenticator; otherwise exactly ``searchgate serve --workers 1``."""

    def __init__(self, data_dir: Path, mode: str) -> None:
        super().__init__(data_dir, workers=1)
        self.mode = mode

    def start(self, timeout: float = 300.0) -> AuthServer:
        env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("SEARCHGATE_")}
        env["PYTHONUNBUFFERED"] = "1"
        cmd = [sys.executable, "-m", "bench.auth_server", "--data-dir", str(self.data_dir)]
        cmd += ["--port", str(self.port), "--auth", self.mode]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True
            )
        self._wait_ready(timeout)
        return self


def build_workload(
    servers: dict[str, AuthServer], key: str, mix: list[queries.Query], args: argparse.Namespace
) -> load.Workload:
    """Search bodies with two refinements a shopper could have clicked, each checked on
    both servers: they must answer alike (the no-op server serves the same searches)."""
    import random

    drawn = queries.sample(mix, args.sample, args.seed)
    rng = random.Random(args.seed)
    auth = {"Authorization": f"Bearer {key}"}
    clients = {m: httpx.Client(base_url=s.base_url, headers=auth, timeout=60) for m, s in servers.items()}
    try:
        navs: dict[str, list[dict[str, Any]]] = {}
        for q in dict.fromkeys(drawn):
            r = clients["real"].post("/api/v1/search", json={"query": q, "pageSize": 0})
            r.raise_for_status()
            navs[q] = r.json()["availableNavigation"]
        bodies = [queries.search_body(q, queries.choose_refinements(navs[q], rng)) for q in drawn]
        for raw in dict.fromkeys(orjson.dumps(b) for b in bodies):
            totals = set()
            for mode, client in clients.items():
                r = client.post("/api/v1/search", content=raw)
                if r.status_code != 200:
                    raise RuntimeError(f"{mode}: search {raw!r} failed: {r.status_code} {r.text}")
                totals.add(int(r.json()["totalRecordCount"]))
            if len(totals) != 1:
                raise RuntimeError(f"the servers disagree on {raw!r}: {totals}")
    finally:
        for client in clients.values():
            client.close()
    return load.Workload("search", [orjson.dumps(b).decode() for b in bodies], "/api/v1/search")


def record_cost_ns() -> float:
    """Median cost of one UsageTracker.record call in this process (in-memory only)."""
    tracker = UsageTracker(Database("sqlite://"), None, flush_seconds=3600)  # type: ignore[arg-type]
    n = 200_000

    def one() -> None:
        tracker.record("key_0123456789abcdef", "storefront-web-1", "success", "192.0.2.10")

    runs = timeit.repeat(one, number=n, repeat=5)
    return statistics.median(runs) / n * 1e9


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in MODES:
        mine = [r for r in runs if r["mode"] == mode]
        out[mode] = {
            "runs": len(mine),
            "requests_per_s": statistics.median(r["requests_per_s"] for r in mine),
            "p50_ms": statistics.median(r["p50_ms"] for r in mine),
            "p99_ms": statistics.median(r["p99_ms"] for r in mine),
            "cpu_ms_per_request": statistics.median(r["cpu_ms_per_request"] for r in mine),
            "errors": sum(r["errors"] for r in mine),
        }
    real, noop = out["real"], out["noop"]
    # Each round's two adjacent runs compared: drift between rounds does not enter.
    pairs = [
        1 - a["requests_per_s"] / b["requests_per_s"]
        for a, b in (
            (
                next(r for r in runs if r["round"] == n and r["mode"] == "real"),
                next(r for r in runs if r["round"] == n and r["mode"] == "noop"),
            )
            for n in sorted({r["round"] for r in runs})
        )
    ]
    out["overhead"] = {
        "throughput_of_medians": 1 - real["requests_per_s"] / noop["requests_per_s"],
        "throughput_paired_median": statistics.median(pairs),
        "throughput_paired": pairs,
        "cpu_per_request": real["cpu_ms_per_request"] / noop["cpu_ms_per_request"] - 1,
        "p50_ms_added": real["p50_ms"] - noop["p50_ms"],
    }
    return out


def run(args: argparse.Namespace, mix: list[queries.Query], root: Path) -> dict[str, Any]:
    results: dict[str, Any] = {
        "at": now_iso(),
        "machine": machine(),
        "config": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in vars(args).items()
            if k not in ("data_root", "out")
        },
        "client": "wrk" if args.client != "python" and load.have_wrk() else "python",
        "runs": [],
    }
    data_dir = fresh_dir(root, "data")
    console.print(f"catalog: {args.records:,} products, written in-process ...")
    upload = write_direct(data_dir, products(args.records), 10_000)
    results["catalog"] = asdict(upload)
    key, key_file = make_key(data_dir)
    # Each server gets a ready index slot of its own.
    copy_slots(data_dir / "index", 2)
    servers: dict[str, AuthServer] = {}
    try:
        for mode in MODES:
            console.print(f"starting the {mode} server ...")
            servers[mode] = AuthServer(data_dir, mode).start()
        workload = build_workload(servers, key, mix, args)
        results["workload"] = {"searches": len(workload.lines), "distinct": len(set(workload.lines))}

        def measure(mode: str, seconds: float) -> load.LoadResult:
            server = servers[mode]
            return load.run(
                workload, server.base_url, key_file, args.connections, seconds, server.pids(), root, args.client
            )

        for mode in MODES:
            console.print(f"warming up the {mode} server ...")
            measure(mode, max(args.duration / 2, 1.0))
        for n in range(args.rounds):
            order = MODES if n % 2 == 0 else MODES[::-1]
            for mode in order:
                console.print(f"round {n + 1}/{args.rounds}: {mode} ...")
                r = measure(mode, args.duration)
                cpu = r.cpu.get("server_cpu_s", 0.0)
                results["runs"].append(
                    {"round": n, "mode": mode}
                    | asdict(r)
                    | {"cpu_ms_per_request": round(1000 * cpu / max(r.requests, 1), 3)}
                )
        real_requests = sum(r["requests"] for r in results["runs"] if r["mode"] == "real")
    finally:
        for server in servers.values():
            server.stop()
    # The real server flushed its usage on stop: the key's traffic must cover every
    # request it answered in the measured runs.
    db = Database(Settings(data_dir=data_dir).resolved_database_url)
    try:
        key_id = UsageQueries(db).systems_key_ids()[0] if False else None  # noqa: SIM108
    finally:
        db.dispose()
    results["usage_check"] = {"measured_real_requests": real_requests, "key_id": key_id}
    return results
