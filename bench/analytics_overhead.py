"""The search analytics overhead benchmark: search throughput of one server process that
counts searches for analytics (``SEARCHGATE_ANALYTICS_ENABLED=true``, the default)
against the same server with counting off, in the same run.

Both servers run at once on one data directory (a generated catalog, each server with
its own index slot) and are loaded in turns, one at a time, in the order A B B A A B
B A ... (a linear drift of a shared machine's speed cancels out), by wrk replaying the
query mix (the demo mix unless ``--queries`` names a real one) with two refinements per
search, else by Python load processes. Each round compares its two runs; the overhead
is the median over rounds. Halfway the servers are restarted in the opposite order, so
that each setting gets the first index slot and start place for half of the rounds.

Beside it, ``QueryLog.count_search`` is timed in process (steadier than throughput on
a shared machine) and set against the counting-off server's CPU time per request. At
the end the counts the counting server wrote are checked against the searches it
answered, and the other server's against none. The issue's target: search throughput
with analytics on within 3% of off.

Run ``python -m bench.analytics_overhead --help``; ``--quick`` checks the script in
about a minute.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
import timeit
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import load, queries
from bench.auth_report import TARGET_OVERHEAD, _verdict
from bench.catalog import products, write_direct
from bench.common import console, machine, now_iso, scrub_environment, table, write_result
from bench.raw import copy_slots
from bench.server import Server, fresh_dir, make_key
from searchgate.config import Settings
from searchgate.runtime import build_services
from searchgate.search.querylog import QueryLog

MODES = ("on", "off")
RUN_COLUMNS = ["round", "analytics", "started", "req/s", "p50 ms", "p99 ms", "errors"]
RUN_COLUMNS += ["CPU ms/req", "other CPU s"]
FULL: dict[str, Any] = {"records": 100_000, "duration": 3.0, "rounds": 8, "sample": 1000}
# Searches one flush writes: about 5 s (the flush interval) of one server's searches.
FLUSH_BATCH = 2500
QUICK: dict[str, Any] = {"records": 5000, "duration": 1.0, "rounds": 2, "sample": 200}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Search throughput with search analytics counted vs not counted, two "
        "servers in the same run; prints tables and writes JSON to bench/results/."
    )
    p.add_argument("--queries", type=Path, help="a TSV query mix to replay (default: the demo mix)")
    p.add_argument("--records", type=int, help="catalog size (default 100,000)")
    p.add_argument("--duration", type=float, help="seconds per measured run (default 3)")
    p.add_argument("--rounds", type=int, help="rounds, each measuring both servers (default 8)")
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
    if args.rounds < 2 or args.rounds % 2 or args.duration <= 0 or args.connections < 1:
        p.error("--rounds must be even and at least 2, --connections at least 1")
    return args


def start(data_dir: Path, mode: str) -> Server:
    enabled = "true" if mode == "on" else "false"
    server = Server(data_dir, workers=1, settings={"SEARCHGATE_ANALYTICS_ENABLED": enabled})
    return server.start()


def build_workload(
    servers: dict[str, Server], key: str, mix: list[queries.Query], args: argparse.Namespace
) -> tuple[load.Workload, int]:
    """Search bodies with two refinements a shopper could have clicked, each checked on
    both servers (they must answer alike); also how many searches each server answered
    meanwhile."""
    drawn = queries.sample(mix, args.sample, args.seed)
    rng = random.Random(args.seed)
    auth = {"Authorization": f"Bearer {key}"}
    clients = {
        m: httpx.Client(base_url=s.base_url, headers=auth, timeout=60) for m, s in servers.items()
    }
    sent = 0
    try:
        navs: dict[str, list[dict[str, Any]]] = {}
        for q in dict.fromkeys(drawn):
            shown = []
            for client in clients.values():
                r = client.post("/api/v1/search", json={"query": q, "pageSize": 0})
                r.raise_for_status()
                shown.append(r.json()["availableNavigation"])
            sent += 1
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
            sent += 1
            if len(totals) != 1:
                raise RuntimeError(f"the servers disagree on {raw!r}: {totals}")
    finally:
        for client in clients.values():
            client.close()
    workload = load.Workload("search", [orjson.dumps(b).decode() for b in bodies], "/api/v1/search")
    return workload, sent


def _median_us(fn: Callable[[], object], n: int) -> float:
    return statistics.median(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6


def in_process_costs(data_dir: Path, words: list[str]) -> dict[str, float]:
    """``count_search`` as the search service calls it once per search, timed in this
    process: counting on (a query of the mix; and with three rules that fired, one of
    which redirected), and off (SAYT's popular queries only); and the background
    flush of FLUSH_BATCH such searches, in CPU time per search, on and off."""
    services = build_services(Settings(data_dir=data_dir), migrate=False)
    try:
        on, off = QueryLog(services.db), QueryLog(services.db, analytics=False)
        n = 20_000
        it = iter(range(1 << 62))

        def plain(log: QueryLog) -> Callable[[], None]:
            def one() -> None:
                q = words[next(it) % len(words)]
                log.count_search("Production", "default", q, None, 12)

            return one

        def with_rules() -> None:
            q = words[next(it) % len(words)]
            rules = ("TV boost", "Summer sale", "TV redirect")
            on.count_search("Production", "default", q, None, 0, rules, "TV redirect")

        costs = {
            "on_us": round(_median_us(plain(on), n), 2),
            "on_with_rules_us": round(_median_us(with_rules, n), 2),
            "off_us": round(_median_us(plain(off), n), 2),
        }
        for name, analytics in (("flush_on_us", True), ("flush_off_us", False)):
            log = QueryLog(services.db, analytics=analytics)
            spent = []
            for _ in range(5):
                for i in range(FLUSH_BATCH):
                    log.count_search("Production", "default", words[i % len(words)], None, i % 5)
                t0 = time.thread_time()
                log.flush()
                spent.append(time.thread_time() - t0)
            costs[name] = round(statistics.median(spent) / FLUSH_BATCH * 1e6, 2)
        return costs
    finally:
        services.db.dispose()


def counted_searches(data_dir: Path) -> int:
    """What the servers wrote to the analytics tables (each flushes when it stops)."""
    services = build_services(Settings(data_dir=data_dir), migrate=False)
    try:
        return services.analytics.report(7).searches
    finally:
        services.db.dispose()


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in MODES:
        rs = [r for r in runs if r["mode"] == mode]
        out[mode] = {
            "runs": len(rs),
            "requests_per_s": statistics.median(r["requests_per_s"] for r in rs),
            "p50_ms": statistics.median(r["p50_ms"] for r in rs),
            "p99_ms": statistics.median(r["p99_ms"] for r in rs),
            "cpu_ms_per_request": statistics.median(r["cpu_ms_per_request"] for r in rs),
            "errors": sum(r["errors"] for r in rs),
        }
    by_round = {(r["round"], r["mode"]): r for r in runs}
    rounds = sorted({r["round"] for r in runs})
    # Each round's two runs compared: drift between rounds does not enter.
    ratios = [
        by_round[(n, "on")]["requests_per_s"] / by_round[(n, "off")]["requests_per_s"]
        for n in rounds
    ]
    cpu = [
        by_round[(n, "on")]["cpu_ms_per_request"] / by_round[(n, "off")]["cpu_ms_per_request"] - 1
        for n in rounds
    ]
    ratio = statistics.median(ratios)
    out["overhead"] = {
        "ratio_paired_median": ratio,
        "ratio_paired": ratios,
        "throughput_paired_median": 1 - ratio,
        "throughput_paired": [1 - r for r in ratios],
        "cpu_per_request_paired_median": statistics.median(cpu),
        "p50_ms_added": out["on"]["p50_ms"] - out["off"]["p50_ms"],
    }
    return out


def _measurer(
    servers: dict[str, Server],
    workload: load.Workload,
    key_file: Path,
    root: Path,
    args: argparse.Namespace,
) -> Callable[[str, float], load.LoadResult]:
    def measure(mode: str, seconds: float) -> load.LoadResult:
        server = servers[mode]
        return load.run(
            workload,
            server.base_url,
            key_file,
            args.connections,
            seconds,
            server.pids(),
            root,
            args.client,
        )

    return measure


def run(
    args: argparse.Namespace, mix: list[queries.Query], root: Path, results: dict[str, Any]
) -> None:
    """Fills ``results`` as it goes: what was measured before a failure is kept."""
    data_dir = fresh_dir(root, "data")
    console.print(f"catalog: {args.records:,} products, written in-process ...")
    results["catalog"] = asdict(write_direct(data_dir, products(args.records), 10_000))
    key, key_file = make_key(data_dir)
    copy_slots(data_dir / "index", 2)
    workload: load.Workload | None = None
    # Searches the counting server answered outside the measured runs.
    unmeasured = 0
    for half, start_order in enumerate((MODES, MODES[::-1])):
        rounds = range(half * args.rounds // 2, (half + 1) * args.rounds // 2)
        servers: dict[str, Server] = {}
        try:
            for mode in start_order:
                console.print(f"starting the server with analytics {mode} ...")
                servers[mode] = start(data_dir, mode)
            if workload is None:
                workload, sent = build_workload(servers, key, mix, args)
                unmeasured += sent
                results["workload"] = {
                    "searches": len(workload.lines),
                    "distinct": len(set(workload.lines)),
                }

            measure = _measurer(servers, workload, key_file, root, args)
            for mode in MODES:
                console.print(f"warming up the server with analytics {mode} ...")
                warm = measure(mode, max(args.duration / 2, 1.0))
                if mode == "on":
                    unmeasured += warm.requests + args.connections
            for n in rounds:
                console.print(f"round {n + 1}/{args.rounds} ...")
                order = MODES if n % 2 == 0 else MODES[::-1]
                for mode in order:
                    r = measure(mode, args.duration)
                    if mode == "on":
                        # wrk stops counting with requests still in flight.
                        unmeasured += args.connections
                    cpu = r.cpu.get("server_cpu_s", 0.0)
                    results["runs"].append(
                        {"round": n, "mode": mode}
                        | {"started": "first" if mode == start_order[0] else "second"}
                        | asdict(r)
                        | {"cpu_ms_per_request": round(1000 * cpu / max(r.requests, 1), 3)}
                    )
        finally:
            for server in servers.values():
                server.stop()
    measured = sum(r["requests"] for r in results["runs"] if r["mode"] == "on")
    counted = counted_searches(data_dir)
    results["counting_check"] = {
        "counted": counted,
        "measured_on_requests": measured,
        "unmeasured_on_requests_at_most": unmeasured,
        # The counting server counted every search it answered, the other none.
        "ok": measured <= counted <= measured + unmeasured,
    }
    results["in_process"] = in_process_costs(data_dir, queries.sample(mix, args.sample, args.seed))


def show(results: dict[str, Any]) -> None:
    console.print(
        table(
            "Runs (in the order measured)",
            RUN_COLUMNS,
            [
                (
                    r["round"] + 1,
                    r["mode"],
                    r["started"],
                    r["requests_per_s"],
                    r["p50_ms"],
                    r["p99_ms"],
                    r["errors"],
                    r["cpu_ms_per_request"],
                    r["cpu"].get("other_cpu_s"),
                )
                for r in results["runs"]
            ],
        )
    )
    s = results.get("summary")
    if not s:
        return
    fields = ("runs", "requests_per_s", "p50_ms", "p99_ms", "cpu_ms_per_request")
    console.print(
        table(
            "Medians",
            ["analytics", "runs", "req/s", "p50 ms", "p99 ms", "CPU ms/req"],
            [(m, *(s[m][k] for k in fields)) for m in MODES],
        )
    )
    o = s["overhead"]
    verdict = _verdict(o["throughput_paired_median"], o["throughput_paired"])
    c = results["in_process"]
    check = results["counting_check"]
    rows = [
        ("throughput on / off, median of rounds", f"{o['ratio_paired_median']:.3f}"),
        ("overhead, median of rounds", f"{o['throughput_paired_median']:+.1%} ({verdict})"),
        ("per round", ", ".join(f"{x:+.0%}" for x in o["throughput_paired"])),
        ("CPU per request", f"{o['cpu_per_request_paired_median']:+.1%}"),
        ("added median latency", f"{o['p50_ms_added']:+.2f} ms"),
        (
            "in process: count_search",
            f"on {c['on_us']:.2f} us, with 3 rules {c['on_with_rules_us']:.2f} us, off "
            f"{c['off_us']:.2f} us; on - off = {c['share']:.2%} of the off server's CPU "
            "per request",
        ),
        (
            "in process: flush",
            f"on {c['flush_on_us']:.2f} us, off {c['flush_off_us']:.2f} us of CPU per search "
            f"({FLUSH_BATCH:,} searches a flush); on - off = {c['flush_share']:.2%} of the off "
            "server's CPU per request",
        ),
        (
            "searches counted",
            f"{check['counted']:,} (measured on the counting server: "
            f"{check['measured_on_requests']:,}, plus at most "
            f"{check['unmeasured_on_requests_at_most']:,} unmeasured: "
            f"{'yes' if check['ok'] else 'NO'})",
        ),
    ]
    console.print(
        table(
            f"Search analytics overhead, on vs off (target <= {TARGET_OVERHEAD:.0%})",
            ["measure", "value"],
            rows,
        )
    )
    console.print(
        "A negative overhead means the counting server happened to be faster. Other CPU s: "
        "CPU time other processes of the machine used during the run (noise)."
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scrub_environment()
    mix = queries.mix_or_exit(args.queries, args.seed)
    if args.client == "wrk" and not load.have_wrk():
        console.print("error: wrk is not installed (apt-get install wrk)", style="red")
        return 2
    if args.client == "auto" and not load.have_wrk():
        console.print("wrk not found: using Python load processes, which share the cores")
    root = Path(tempfile.mkdtemp(prefix="searchgate-analyticsbench-", dir=args.data_root))
    results: dict[str, Any] = {
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
    status = 0
    try:
        run(args, mix, root, results)
        results["summary"] = summarise(results["runs"])
        costs = results["in_process"]
        off_cpu = results["summary"]["off"]["cpu_ms_per_request"]
        costs["share"] = (costs["on_us"] - costs["off_us"]) / 1000 / off_cpu
        costs["flush_share"] = (costs["flush_on_us"] - costs["flush_off_us"]) / 1000 / off_cpu
        if not results["counting_check"]["ok"]:
            status = 1
    except Exception as exc:
        results["error"] = f"{type(exc).__name__}: {exc}"
        console.print(f"error: {results['error']}", style="red", markup=False)
        status = 1
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    show(results)
    path = write_result("analytics", results, args.out)
    console.print(f"results: {path}" + (f"; data kept in {root}" if args.keep else ""))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
