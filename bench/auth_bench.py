"""The authentication overhead benchmark: search throughput of one server process with
real client key checks and usage tracking, against the same server process with a
no-op authenticator (bench/auth_server.py), in the same run.

Both servers run at once on one data directory (a generated catalog, each server with
its own index slot) and get the same load (wrk replaying the query mix, the demo mix
unless ``--queries`` names a real one, with two refinements per search, else Python
load processes) on two schedules:

- ``alternate``: one server at a time, in the order A B B A A B B A ...; a linear
  drift of the machine's speed cancels out.
- ``together``: both servers under load at the same time, each with its own load
  generator: whatever else runs on a shared machine slows both alike, and with equal
  shares of the cores the cheaper server answers more.

Each round compares its two runs; the overhead is the median over rounds. Halfway
the servers are restarted in the opposite order, so that each authenticator gets the
first index slot and start place for half of the rounds. Beside it,
the extra work per request (``authenticate`` and the usage recorder) is timed in
process and set against the no-op server's CPU time per request. The issue's target:
authentication costs at most 3% of search throughput.

Run ``python -m bench.auth_bench --help``; ``--quick`` checks the script in about a
minute.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import timeit
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from starlette.requests import Request

from bench import load, queries
from bench.auth_report import MODES, show
from bench.catalog import products, write_direct
from bench.common import REPO, console, machine, now_iso, scrub_environment, write_result
from bench.raw import copy_slots
from bench.server import Server, fresh_dir, make_key
from searchgate.api import auth
from searchgate.config import Settings
from searchgate.keys.scopes import Scope
from searchgate.keys.usage import UsageQueries, UsageTracker, outcome_for
from searchgate.runtime import build_services

SCHEDULES = ("alternate", "together")
FULL: dict[str, Any] = {"records": 100_000, "duration": 3.0, "rounds": 8, "sample": 1000}
QUICK: dict[str, Any] = {"records": 5000, "duration": 1.0, "rounds": 2, "sample": 200}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Search throughput with real key checks and usage tracking vs the same "
        "server with a no-op authenticator; prints a table and writes JSON to bench/results/."
    )
    p.add_argument("--queries", type=Path, help="a TSV query mix to replay (default: the demo mix)")
    p.add_argument("--records", type=int, help="catalog size (default 100,000)")
    p.add_argument("--duration", type=float, help="seconds per measured run (default 3)")
    p.add_argument("--rounds", type=int, help="rounds per schedule (default 8)")
    p.add_argument("--sample", type=int, help="search queries drawn (default 1,000)")
    p.add_argument("--connections", type=int, default=2, help="concurrent connections")
    p.add_argument("--seed", type=int, default=queries.SEED)
    p.add_argument(
        "--schedule",
        choices=[*SCHEDULES, "both"],
        default="both",
        help="servers loaded in turns, at the same time, or both schedules (default)",
    )
    p.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    p.add_argument("--data-root", type=Path, help="where the data directory goes (tmp)")
    p.add_argument("--keep", action="store_true", help="keep the data directory")
    p.add_argument("--out", type=Path, help="JSON result path (default bench/results/)")
    p.add_argument("--quick", action="store_true", help="5,000 records, 1 s runs, 2 rounds")
    args = p.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.rounds < 2 or args.rounds % 2 or args.duration <= 0 or args.connections < 1:
        p.error("--rounds must be even and at least 2, --connections at least 1")
    return args


class AuthServer(Server):
    """One server process started by bench/auth_server.py, with the real or the no-op
    authenticator; otherwise exactly ``searchgate serve --workers 1``."""

    def __init__(self, data_dir: Path, mode: str) -> None:
        super().__init__(data_dir, workers=1)
        self.mode = mode

    def start(self, timeout: float = 300.0) -> AuthServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCHGATE_")}
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
    drawn = queries.sample(mix, args.sample, args.seed)
    rng = random.Random(args.seed)
    auth = {"Authorization": f"Bearer {key}"}
    clients = {
        m: httpx.Client(base_url=s.base_url, headers=auth, timeout=60) for m, s in servers.items()
    }
    try:
        navs: dict[str, list[dict[str, Any]]] = {}
        for q in dict.fromkeys(drawn):
            # Both servers get the same warm-up.
            shown = []
            for client in clients.values():
                r = client.post("/api/v1/search", json={"query": q, "pageSize": 0})
                r.raise_for_status()
                shown.append(r.json()["availableNavigation"])
            if shown[0] != shown[1]:
                raise RuntimeError(f"the servers show different navigations for {q!r}")
            navs[q] = shown[0]
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


def _median_us(fn: Callable[[], object], n: int) -> float:
    return statistics.median(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6


def in_process_costs(data_dir: Path, key: str) -> dict[str, float]:
    """What the real server does per request beyond the no-op one, timed in this
    process (much steadier than throughput on a shared machine): ``authenticate`` on
    a request like wrk's, and the usage recorder's ``record``."""
    services = build_services(Settings(data_dir=data_dir), migrate=False)
    try:
        headers = [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-type", b"application/json"),
        ]
        scope: dict[str, Any] = {
            "type": "http",
            "method": "POST",
            "path": "/api/v1/search",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
        }

        def request() -> Request:
            return Request(scope | {"state": {}})

        def authenticate() -> None:
            auth.authenticate(services.keys, request(), Scope.SEARCH, None, queries.COLLECTION)

        tracker = UsageTracker(services.db, services.keys, flush_seconds=3600)

        def record() -> None:
            tracker.record("key_0123456789abcdef", "unknown", outcome_for(200), "127.0.0.1")

        n = 20_000
        return {
            "authenticate_us": round(_median_us(authenticate, n) - _median_us(request, n), 2),
            "record_us": round(_median_us(record, n * 5), 2),
        }
    finally:
        services.db.dispose()


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per authenticator and the overhead, per schedule."""
    out: dict[str, Any] = {}
    for schedule in SCHEDULES:
        mine = [r for r in runs if r["schedule"] == schedule]
        if not mine:
            continue
        part: dict[str, Any] = {}
        for mode in MODES:
            rs = [r for r in mine if r["mode"] == mode]
            part[mode] = {
                "runs": len(rs),
                "requests_per_s": statistics.median(r["requests_per_s"] for r in rs),
                "p50_ms": statistics.median(r["p50_ms"] for r in rs),
                "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                "cpu_ms_per_request": statistics.median(r["cpu_ms_per_request"] for r in rs),
                "errors": sum(r["errors"] for r in rs),
            }
        by_round = {(r["round"], r["mode"]): r for r in mine}
        rounds = sorted({r["round"] for r in mine})
        # Each round's two runs compared: drift between rounds does not enter.
        pairs = [
            1 - by_round[(n, "real")]["requests_per_s"] / by_round[(n, "noop")]["requests_per_s"]
            for n in rounds
        ]
        cpu_pairs = [
            by_round[(n, "real")]["cpu_ms_per_request"]
            / by_round[(n, "noop")]["cpu_ms_per_request"]
            - 1
            for n in rounds
        ]
        part["overhead"] = {
            "throughput_paired_median": statistics.median(pairs),
            "throughput_paired": pairs,
            "cpu_per_request_paired_median": statistics.median(cpu_pairs),
            "p50_ms_added": part["real"]["p50_ms"] - part["noop"]["p50_ms"],
        }
        out[schedule] = part
    return out


def new_results(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "at": now_iso(),
        "machine": machine(),
        "config": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in vars(args).items()
            if k not in ("data_root", "out")
        },
        "client": "wrk" if args.client != "python" and load.have_wrk() else "python",
        "mix": queries.describe(args.queries, args.seed),
        "runs": [],
    }


def run(
    args: argparse.Namespace, mix: list[queries.Query], root: Path, results: dict[str, Any]
) -> None:
    """Fills ``results`` as it goes: what was measured before a failure is kept."""
    data_dir = fresh_dir(root, "data")
    console.print(f"catalog: {args.records:,} products, written in-process ...")
    upload = write_direct(data_dir, products(args.records), 10_000)
    results["catalog"] = asdict(upload)
    key, key_file = make_key(data_dir)
    # Each server gets a ready index slot of its own.
    copy_slots(data_dir / "index", 2)
    started = datetime.now(UTC) - timedelta(hours=1)
    workload: load.Workload | None = None
    schedules = SCHEDULES if args.schedule == "both" else (args.schedule,)
    # Two halves with the servers started in the opposite order: the first one started
    # takes the first index slot and runs measurably faster on a busy machine whatever
    # its authenticator, so each authenticator gets each place for half the rounds.
    for half, start_order in enumerate((MODES, MODES[::-1])):
        rounds = range(half * args.rounds // 2, (half + 1) * args.rounds // 2)
        if not rounds:
            continue
        servers: dict[str, AuthServer] = {}
        try:
            for mode in start_order:
                console.print(f"starting the {mode} server ...")
                servers[mode] = AuthServer(data_dir, mode).start()
            if workload is None:
                workload = build_workload(servers, key, mix, args)
                results["workload"] = {
                    "searches": len(workload.lines),
                    "distinct": len(set(workload.lines)),
                }
            measure = _measurer(servers, workload, key_file, root, args)
            for mode in MODES:
                console.print(f"warming up the {mode} server ...")
                measure(mode, max(args.duration / 2, 1.0))
            for schedule in schedules:
                for n in rounds:
                    console.print(f"{schedule} round {n + 1}/{args.rounds} ...")
                    if schedule == "alternate":
                        order = MODES if n % 2 == 0 else MODES[::-1]
                        got = {mode: measure(mode, args.duration) for mode in order}
                    else:
                        got = together(measure, args.duration)
                    for mode, r in got.items():
                        cpu = r.cpu.get("server_cpu_s", 0.0)
                        results["runs"].append(
                            {"schedule": schedule, "round": n, "mode": mode}
                            | {"started": "first" if mode == start_order[0] else "second"}
                            | asdict(r)
                            | {"cpu_ms_per_request": round(1000 * cpu / max(r.requests, 1), 3)}
                        )
        finally:
            for server in servers.values():
                server.stop()
    results["usage_check"] = usage_check(data_dir, key, results["runs"], started)
    results["in_process"] = in_process_costs(data_dir, key)


def _measurer(
    servers: dict[str, AuthServer],
    workload: load.Workload,
    key_file: Path,
    root: Path,
    args: argparse.Namespace,
) -> Callable[[str, float], load.LoadResult]:
    def measure(mode: str, seconds: float) -> load.LoadResult:
        server = servers[mode]
        # A directory per server: the two load generators may run at once.
        work_dir = root / f"load-{mode}"
        work_dir.mkdir(exist_ok=True)
        return load.run(
            workload,
            server.base_url,
            key_file,
            args.connections,
            seconds,
            server.pids(),
            work_dir,
            args.client,
        )

    return measure


def together(
    measure: Callable[[str, float], load.LoadResult], seconds: float
) -> dict[str, load.LoadResult]:
    """Both servers under load at the same time."""
    got: dict[str, load.LoadResult] = {}
    failed: list[BaseException] = []

    def one(mode: str) -> None:
        try:
            got[mode] = measure(mode, seconds)
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=one, args=(mode,)) for mode in MODES]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if failed:
        raise failed[0]
    return got


def usage_check(
    data_dir: Path, key: str, runs: list[dict[str, Any]], started: datetime
) -> dict[str, Any]:
    """The real server wrote its usage when it stopped: the key's counted traffic must
    cover every request it answered in the measured runs (it also counted the warm-up
    and the workload checks; the no-op server only its first request)."""
    services = build_services(Settings(data_dir=data_dir), migrate=False)
    try:
        info = services.keys.verify(key)
        assert info is not None
        counted = UsageQueries(services.db).traffic_since(info.id, started)
        systems = [u.system for u in UsageQueries(services.db).systems(info.id)]
    finally:
        services.db.dispose()
    measured = sum(r["requests"] for r in runs if r["mode"] == "real")
    return {
        "counted": counted,
        "measured_real_requests": measured,
        "systems": systems,
        "ok": counted >= measured,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scrub_environment()
    mix = queries.mix_or_exit(args.queries, args.seed)
    if args.client == "wrk" and not load.have_wrk():
        console.print("error: wrk is not installed (apt-get install wrk)", style="red")
        return 2
    if args.client == "auto" and not load.have_wrk():
        console.print("wrk not found: using Python load processes, which share the cores")
    root = Path(tempfile.mkdtemp(prefix="searchgate-authbench-", dir=args.data_root))
    results = new_results(args)
    status = 0
    try:
        run(args, mix, root, results)
        results["summary"] = summarise(results["runs"])
        costs = results["in_process"]
        noop_cpu = statistics.median(
            r["cpu_ms_per_request"] for r in results["runs"] if r["mode"] == "noop"
        )
        costs["share"] = (costs["authenticate_us"] + costs["record_us"]) / 1000 / noop_cpu
        if not results["usage_check"]["ok"]:
            status = 1
    except Exception as exc:
        results["error"] = f"{type(exc).__name__}: {exc}"
        console.print(f"error: {results['error']}", style="red", markup=False)
        status = 1
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    show(results)
    path = write_result("auth", results, args.out)
    console.print(f"results: {path}" + (f"; data kept in {root}" if args.keep else ""))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
