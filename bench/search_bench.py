"""The data-plane benchmark: uploads, search and SAYT through HTTP against real
``searchgate serve`` processes (1 and 2 workers), the same searches in-process (pure
tantivy, the engine, the search service), and the server's peak memory.

Run ``python -m bench.search_bench --help``; ``--quick`` checks that it all works in
under a minute. Results are printed as tables and written to bench/results/.
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import load, queries, report
from bench.catalog import (
    UploadResult,
    client_for,
    products,
    put_settings,
    upload_csv,
    upload_json,
    write_direct,
    write_raw_engine,
)
from bench.common import RESULTS, console, machine, now_iso, scrub_environment, write_result
from bench.raw import RawJob, RawPool
from bench.server import Server, fresh_dir, granian_command, make_key

SAYT_PRODUCTS = 4
FULL: dict[str, Any] = {
    "records": 100_000,
    "duration": 5.0,
    "sample": 1000,
    "sayt_sample": 400,
    "tail_seconds": 20.0,
}
QUICK: dict[str, Any] = {
    "records": 5000,
    "duration": 1.0,
    "sample": 200,
    "sayt_sample": 40,
    "tail_seconds": 2.0,
}
# Rounds of the server comparison: each server measured this often, in turns.
SERVER_ROUNDS = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark uploads, search and SAYT over HTTP against the in-process "
        "engine on a generated catalog and a query mix (the demo mix, or a real one with "
        "--queries); prints tables and writes JSON to bench/results/.",
    )
    p.add_argument("--queries", type=Path, help="a TSV query mix to replay (default: the demo mix)")
    p.add_argument("--records", type=int, help="catalog size (default 100,000)")
    p.add_argument("--duration", type=float, help="seconds per measured run (default 5)")
    p.add_argument("--sample", type=int, help="search queries drawn (default 1,000)")
    p.add_argument("--sayt-sample", type=int, help="queries typed for SAYT (default 400)")
    p.add_argument("--batch-sizes", default="5000,10000", help="JSON upload batch sizes")
    p.add_argument("--seed", type=int, default=queries.SEED)
    p.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    p.add_argument(
        "--skip-uploads",
        action="store_true",
        help="only the 10,000-batch upload and pure tantivy building the same documents",
    )
    p.add_argument("--tail-seconds", type=float, help="seconds of each tail run (default 20)")
    p.add_argument(
        "--servers",
        default="uvicorn,granian",
        help="HTTP servers compared in the same run on the settled catalog (uvicorn, granian)",
    )
    p.add_argument("--profile", action="store_true", help="py-spy profiles of extra runs")
    p.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy", help="py-spy path")
    p.add_argument("--data-root", type=Path, help="where data directories go (default: tmp)")
    p.add_argument("--keep", action="store_true", help="keep the data directories")
    p.add_argument("--out", type=Path, help="JSON result path (default bench/results/)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="5,000 records, 1 s runs, small samples: checks the scripts in under a minute",
    )
    args = p.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


class Bench:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args = args
        self.root = root
        self.results: dict[str, Any] = {
            "at": now_iso(),
            "machine": machine(),
            "config": {
                k: str(v) if isinstance(v, Path) else v
                for k, v in vars(args).items()
                if k not in ("data_root", "out", "py_spy")
            },
            "client": "wrk" if args.client != "python" and load.have_wrk() else "python",
            "mix": queries.describe(args.queries, args.seed),
            "uploads": [],
            "search": [],
            "sayt": [],
            "servers": [],
            "tail": [],
            "memory": [],
            "checks": {},
        }
        self.key_file = root / "unset"
        self.http_totals: list[int] = []
        self.search_load = load.Workload("search", [])
        self.search_noac_load = load.Workload("search-noac", [])
        self.sayt_load = load.Workload("sayt", [])
        self.sayt_products_load = load.Workload("sayt-products", [])

    # --- uploads -----------------------------------------------------------------------

    def uploads(self, records: list[dict[str, Any]]) -> tuple[Path, Server]:
        """Each upload into a fresh data directory; the last (10,000 per request) stays
        up as the search server."""
        add = self.results["uploads"].append
        # The upload ratio's reference (pure tantivy building the documents) always runs.
        for build in (True,) if self.args.skip_uploads else (False, True):
            console.print(
                "upload: pure tantivy, documents built "
                + ("inside the clock ..." if build else "before the clock ...")
            )
            raw_dir = fresh_dir(self.root, "raw")
            add(asdict(write_raw_engine(raw_dir, records, 10_000, build)))
            shutil.rmtree(raw_dir, ignore_errors=True)
        if not self.args.skip_uploads:
            console.print("upload: in-process services ...")
            add(asdict(write_direct(fresh_dir(self.root, "direct"), records, 10_000)))
            console.print("upload: CSV through /data/v1/upload/stream ...")
            add(asdict(self._server_upload("csv", records, 0)))
        sizes = [int(s) for s in self.args.batch_sizes.split(",") if s.strip()]
        if self.args.skip_uploads:
            sizes = [10_000]
        for size in sizes[:-1]:
            console.print(f"upload: JSON in batches of {size} ...")
            add(asdict(self._server_upload(f"json-{size}", records, size)))
        size = sizes[-1]
        console.print(f"upload: JSON in batches of {size} (kept for the searches) ...")
        data_dir = fresh_dir(self.root, "main")
        key, self.key_file = make_key(data_dir)
        server = Server(data_dir, workers=1).start()
        try:
            with client_for(server, key) as client:
                put_settings(client)
                result = upload_json(client, records, size)
        except BaseException:
            server.stop()
            raise
        add(asdict(result))
        self._memory(server, "1 worker, after upload")
        return data_dir, server

    def _server_upload(self, name: str, records: list[dict[str, Any]], size: int) -> UploadResult:
        data_dir = fresh_dir(self.root, name)
        key, _ = make_key(data_dir)
        with Server(data_dir, workers=1).start() as server, client_for(server, key) as client:
            put_settings(client)
            result = (
                upload_csv(client, records) if size == 0 else upload_json(client, records, size)
            )
        if not self.args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
        return result

    # --- the workload ------------------------------------------------------------------

    def workload(self, server: Server, mix: list[queries.Query]) -> RawJob:
        """Search bodies with two refinements a shopper could have clicked (taken from
        the server's own navigations for each query), checked once through HTTP."""
        drawn = queries.sample(mix, self.args.sample, self.args.seed)
        key = self.key_file.read_text().strip()
        navs: dict[str, list[dict[str, Any]]] = {}
        http_totals: dict[bytes, int] = {}
        rng = random.Random(self.args.seed)
        with httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as client:
            for q in dict.fromkeys(drawn):
                r = client.post("/api/v1/search", json={"query": q, "pageSize": 0})
                r.raise_for_status()
                navs[q] = r.json()["availableNavigation"]
            bodies = [
                queries.search_body(q, queries.choose_refinements(navs[q], rng)) for q in drawn
            ]
            for body in bodies:
                raw = orjson.dumps(body)
                if raw not in http_totals:
                    r = client.post("/api/v1/search", content=raw)
                    if r.status_code != 200:
                        raise RuntimeError(f"search {raw!r} failed: {r.status_code} {r.text}")
                    http_totals[raw] = int(r.json()["totalRecordCount"])
            prefixes = queries.sayt_sequence(mix, self.args.sayt_sample, self.args.seed)
            for prefix in list(dict.fromkeys(prefixes))[:300]:
                r = client.get(queries.sayt_path(prefix, SAYT_PRODUCTS))
                if r.status_code != 200:
                    raise RuntimeError(f"SAYT {prefix!r} failed: {r.status_code} {r.text}")
        self.http_totals = [http_totals[orjson.dumps(b)] for b in bodies]
        self.results["checks"]["workload"] = {
            "searches": len(bodies),
            "distinct_bodies": len(http_totals),
            "distinct_queries": len(navs),
            "zero_result_share": round(
                sum(1 for t in self.http_totals if t == 0) / max(len(bodies), 1), 3
            ),
            "sayt_keystrokes": len(prefixes),
        }
        self.search_load = load.Workload(
            "search", [orjson.dumps(b).decode() for b in bodies], "/api/v1/search"
        )
        self.search_noac_load = load.Workload(
            "search-noac",
            [orjson.dumps(b | {"disableAutocorrection": True}).decode() for b in bodies],
            "/api/v1/search",
        )
        self.sayt_load = load.Workload("sayt", [queries.sayt_path(p) for p in prefixes])
        self.sayt_products_load = load.Workload(
            "sayt-products", [queries.sayt_path(p, SAYT_PRODUCTS) for p in prefixes]
        )
        return RawJob(server.data_dir, queries.COLLECTION, bodies, prefixes)

    # --- HTTP ----------------------------------------------------------------------------

    def http(self, server: Server, runs: list[tuple[str, load.Workload, int]]) -> None:
        for kind, workload, connections in runs:
            label = f"HTTP {server.workers} worker{'s' if server.workers > 1 else ''}"
            console.print(f"{label}: {workload.name}, {connections} connection(s) ...")
            if not self.args.quick:
                self._load(workload, server, connections, 1.0)
            result = self._load(workload, server, connections, self.args.duration)
            self.results[kind].append(
                {"path": label, "workload": workload.name, "workers": server.workers}
                | asdict(result)
            )

    def _load(
        self, workload: load.Workload, server: Server, connections: int, seconds: float
    ) -> load.LoadResult:
        return load.run(
            workload,
            server.base_url,
            self.key_file,
            connections,
            seconds,
            server.pids(),
            self.root,
            self.args.client,
        )

    def _memory(self, server: Server, phase: str) -> None:
        for pid, mem in server.memory().items():
            self.results["memory"].append({"phase": phase, "pid": int(pid), **mem})

    # --- servers and tail latency on the settled catalog ------------------------------------

    def servers(self, data_dir: Path) -> None:
        """The same workloads on one worker of each server, in turns (A B B A ...), then
        one connection replaying the searches for ``--tail-seconds`` on each: the
        unloaded tail, where a periodic stall shows as p99 and max."""
        names = [n.strip() for n in self.args.servers.split(",") if n.strip()]
        if "granian" in names and granian_command() is None:
            console.print("granian is not installed (pip install granian): not compared")
            names.remove("granian")
        for name in names:
            console.print(f"{name}, 1 worker: starting ...")
        running = {name: Server(data_dir, workers=1, server=name).start() for name in names}
        try:
            for server in running.values():
                for workload in (self.search_load, self.sayt_load):
                    self._load(workload, server, 2, 1.0)
            for turn in range(SERVER_ROUNDS):
                order = list(running.items())
                for name, server in order if turn % 2 == 0 else order[::-1]:
                    for workload in (self.search_load, self.sayt_load):
                        console.print(f"{name}: {workload.name}, 2 connections ...")
                        r = self._load(workload, server, 2, self.args.duration)
                        self.results["servers"].append(
                            {"path": f"HTTP 1 worker, {name}", "workload": workload.name}
                            | {"workers": 1, "server": name, "round": turn}
                            | asdict(r)
                        )
            for name, server in running.items():
                console.print(f"{name}: tail, search at 1 connection ...")
                r = self._load(self.search_load, server, 1, self.args.tail_seconds)
                self.results["tail"].append(
                    {"path": f"HTTP 1 worker, {name}", "workload": "search", "workers": 1}
                    | {"server": name}
                    | asdict(r)
                )
        finally:
            for server in running.values():
                server.stop()

    # --- in-process ------------------------------------------------------------------------

    def raw(self, job: RawJob) -> None:
        console.print("in-process: starting 2 worker processes ...")
        pool = RawPool(job, procs=2)
        try:
            mismatches = [
                sum(1 for a, b in zip(info["totals"], self.http_totals, strict=True) if a != b)
                for info in pool.info.values()
            ]
            self.results["checks"]["raw_vs_http_total_mismatches"] = mismatches
            self.results["checks"]["engine_calls_per_search"] = pool.info[0][
                "engine_calls_per_search"
            ]
            for level in ("tantivy", "engine", "service", "service-noac", "sayt"):
                for procs in (1, 2):
                    console.print(f"in-process: {level}, {procs} process(es) ...")
                    r = pool.run(level, procs, self.args.duration)
                    kind = "sayt" if level == "sayt" else "search"
                    self.results[kind].append(
                        {"path": f"in-process {level}", "workload": level, "workers": procs}
                        | asdict(r)
                        | {"connections": procs, "errors": 0}
                    )
        finally:
            pool.close()

    # --- profiles ----------------------------------------------------------------------------

    def _spy(self, pid: int, name: str) -> tuple[subprocess.Popen[bytes], Path]:
        target = self.root / f"profile-{name}.txt"
        cmd = [self.args.py_spy, "record", "--pid", str(pid), "--rate", "250"]
        cmd += ["--format", "raw", "--nonblocking", "--output", str(target)]
        spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        return spy, target

    def _collect(self, spy: subprocess.Popen[bytes], target: Path, name: str) -> None:
        # py-spy writes its samples when interrupted, as after Ctrl-C.
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=120)
        if target.exists():
            self.results.setdefault("profiles", {})[name] = report.profile_summary(
                target.read_text()
            )
            RESULTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(target, RESULTS / target.name)

    def profile(self, server: Server, records: list[dict[str, Any]]) -> None:
        """Extra runs under py-spy (not measured): search and SAYT load on the one-worker
        server, and an upload into a fresh data directory."""
        for workload in (self.search_load, self.sayt_load):
            console.print(f"profiling the server under {workload.name} load ...")
            spy, target = self._spy(server.pids()[0], workload.name)
            self._load(workload, server, 2, self.args.duration)
            self._collect(spy, target, workload.name)
        console.print("profiling the server during a JSON upload ...")
        data_dir = fresh_dir(self.root, "profile-upload")
        key, _ = make_key(data_dir)
        with Server(data_dir, workers=1).start() as up, client_for(up, key) as client:
            put_settings(client)
            spy, target = self._spy(up.pids()[0], "upload")
            upload_json(client, records, 10_000)
            self._collect(spy, target, "upload")

    # --- the whole run --------------------------------------------------------------------------

    def phase(self, name: str, started: float) -> float:
        now = time.monotonic()
        self.results.setdefault("phase_seconds", {})[name] = round(now - started, 1)
        return now

    def run(self, mix: list[queries.Query]) -> None:
        t0 = t = time.monotonic()
        records = products(self.args.records)
        data_dir, server = self.uploads(records)
        t = self.phase("uploads", t)
        try:
            job = self.workload(server, mix)
            t = self.phase("workload", t)
            self.http(
                server,
                [
                    ("search", self.search_load, 1),
                    ("search", self.search_load, 2),
                    ("sayt", self.sayt_load, 1),
                    ("sayt", self.sayt_load, 2),
                    ("sayt", self.sayt_products_load, 2),
                ],
            )
            self._memory(server, "1 worker, after upload, search and SAYT")
            t = self.phase("http_1_worker", t)
        finally:
            server.stop()
        self.raw(job)
        t = self.phase("in_process", t)
        console.print("HTTP 2 workers: starting ...")
        with Server(data_dir, workers=2).start() as server2:
            t = self.phase("start_2_workers", t)
            self.http(
                server2,
                [
                    ("search", self.search_load, 4),
                    ("search", self.search_noac_load, 4),
                    ("sayt", self.sayt_load, 4),
                    ("sayt", self.sayt_products_load, 4),
                ],
            )
            self._memory(server2, "2 workers (each), after search and SAYT")
        t = self.phase("http_2_workers", t)
        # Nothing has written to the catalog since its upload: no merge or searcher reload
        # runs while these servers are measured (a settled catalog).
        self.servers(data_dir)
        t = self.phase("servers_and_tail", t)
        if self.args.profile:
            with Server(data_dir, workers=1).start() as server1:
                self.profile(server1, records)
            t = self.phase("profiles", t)
        self.results["total_seconds"] = round(time.monotonic() - t0, 1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scrub_environment()
    mix = queries.mix_or_exit(args.queries, args.seed)
    if args.client == "wrk" and not load.have_wrk():
        console.print("error: wrk is not installed (apt-get install wrk)", style="red")
        return 2
    if args.profile and shutil.which(args.py_spy) is None:
        console.print(f"error: --profile needs py-spy ({args.py_spy} not found)", style="red")
        return 2
    if args.client == "auto" and not load.have_wrk():
        console.print("wrk not found: using Python load processes, which share the cores")
    root = Path(tempfile.mkdtemp(prefix="searchgate-bench-", dir=args.data_root))
    bench = Bench(args, root)
    status = 0
    try:
        bench.run(mix)
    except Exception as exc:
        # What was measured before the failure is still printed and written.
        bench.results["error"] = f"{type(exc).__name__}: {exc}"
        console.print(f"error: {bench.results['error']}", style="red", markup=False)
        status = 1
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    report.show(bench.results)
    path = write_result("search", bench.results, args.out)
    console.print(f"results: {path}" + (f"; data kept in {root}" if args.keep else ""))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
