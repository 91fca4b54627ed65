"""Tables, targets and profile summaries of a benchmark result."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from bench.catalog import UPLOAD_COLUMNS
from bench.common import console, table

# The targets of the issue, on a 2-core machine.
SEARCH_P99_MS = 25.0
SEARCH_RATIO = 0.5
SAYT_P99_MS = 10.0
SAYT_RPS = 1500.0
UPLOAD_RPS = 15_000.0
# The hot path's targets: the HTTP layer's CPU per SAYT keystroke, the unloaded tail at
# one connection, the upload until searchable against pure tantivy building documents.
HTTP_LAYER_MS = 0.25
TAIL_P99_OVER_P50 = 3.0
TAIL_MAX_MS = 30.0
UPLOAD_RATIO = 0.75

RUN_COLUMNS = [
    "path",
    "workload",
    "procs",
    "conns",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "req/s",
    "errors",
    "CPU ms/req",
    "run CPU %",
    "other CPU %",
]


def _other_pct(cpu: dict[str, float]) -> float | None:
    wall, cores = cpu.get("wall_s"), cpu.get("cores")
    if not wall or not cores:
        return None
    return round(100 * cpu.get("other_cpu_s", 0.0) / (wall * cores), 1)


def _run_pct(cpu: dict[str, float]) -> float | None:
    """CPU of the measured processes (server or in-process workers), in % of one core."""
    wall = cpu.get("wall_s")
    if not wall:
        return None
    return round(100 * cpu.get("server_cpu_s", 0.0) / wall, 0)


def _cpu_per_request(r: dict[str, Any]) -> float | None:
    """CPU time of the measured processes per request: it moves much less than req/s
    when other work takes the cores away, so it compares runs on a busy machine."""
    cpu = float(r["cpu"].get("server_cpu_s") or 0.0)
    requests = int(r["requests"])
    if not cpu or not requests:
        return None
    return round(1000 * cpu / requests, 2)


def _rows(runs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            r["path"],
            r["workload"],
            r["workers"],
            r["connections"],
            r["p50_ms"],
            r["p90_ms"],
            r["p99_ms"],
            r["max_ms"],
            r["requests_per_s"],
            r["errors"],
            _cpu_per_request(r),
            _run_pct(r["cpu"]),
            _other_pct(r["cpu"]),
        )
        for r in runs
    ]


def find(runs: list[dict[str, Any]], path_prefix: str, workload: str, workers: int) -> Any:
    for r in runs:
        if (
            r["path"].startswith(path_prefix)
            and r["workload"] == workload
            and r["workers"] == workers
        ):
            return r
    return None


def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []

    def add(name: str, value: str, ok: bool | None) -> None:
        out.append((name, value, "n/a" if ok is None else "met" if ok else "MISSED"))

    search, sayt = results["search"], results["sayt"]
    http2 = find(search, "HTTP", "search", 2)
    svc2 = find(search, "in-process service", "service", 2)
    tan2 = find(search, "in-process tantivy", "tantivy", 2)
    if http2:
        add(
            f"search HTTP p99 <= {SEARCH_P99_MS:.0f} ms (2 workers, 4 conns)",
            f"{http2['p99_ms']:.1f} ms",
            http2["p99_ms"] <= SEARCH_P99_MS,
        )
    if http2 and svc2:
        ratio = http2["requests_per_s"] / max(svc2["requests_per_s"], 1e-9)
        add(
            f"search HTTP req/s >= {SEARCH_RATIO:.0%} of in-process engine+service (2 procs)",
            f"{ratio:.0%} ({http2['requests_per_s']:.0f} / {svc2['requests_per_s']:.0f})",
            ratio >= SEARCH_RATIO,
        )
    if http2 and tan2:
        ratio = http2["requests_per_s"] / max(tan2["requests_per_s"], 1e-9)
        add(
            f"search HTTP req/s >= {SEARCH_RATIO:.0%} of pure tantivy (2 workers / 2 procs)",
            f"{ratio:.0%} ({http2['requests_per_s']:.0f} / {tan2['requests_per_s']:.0f})",
            ratio >= SEARCH_RATIO,
        )
    noac2 = find(search, "HTTP", "search-noac", 2)
    noac_svc2 = find(search, "in-process service-noac", "service-noac", 2)
    if noac2 and noac_svc2:
        ratio = noac2["requests_per_s"] / max(noac_svc2["requests_per_s"], 1e-9)
        add(
            "  (for reference) without autocorrection: HTTP p99, HTTP / in-process (2 procs)",
            f"{noac2['p99_ms']:.1f} ms, {ratio:.0%} "
            f"({noac2['requests_per_s']:.0f} / {noac_svc2['requests_per_s']:.0f})",
            None,
        )
    sayt2 = find(sayt, "HTTP", "sayt", 2)
    in_sayt2 = find(sayt, "in-process sayt", "sayt", 2)
    layer = http_layer_ms(sayt2, in_sayt2) if sayt2 and in_sayt2 else None
    if layer is not None:
        add(
            f"HTTP layer CPU per SAYT request <= {HTTP_LAYER_MS} ms (HTTP minus in-process)",
            f"{layer:.2f} ms ({_cpu_per_request(sayt2)} - {_cpu_per_request(in_sayt2)})",
            layer <= HTTP_LAYER_MS,
        )
    for tail in results.get("tail", []):
        p50, p99, worst = tail["p50_ms"], tail["p99_ms"], tail["max_ms"]
        add(
            f"tail, 1 connection, search ({tail['server']}): p99 <= {TAIL_P99_OVER_P50:.0f}x "
            f"p50 and max <= {TAIL_MAX_MS:.0f} ms",
            f"p50 {p50:.2f}, p99 {p99:.2f} ({p99 / max(p50, 1e-9):.1f}x), max {worst:.1f} ms",
            p99 <= TAIL_P99_OVER_P50 * p50 and worst <= TAIL_MAX_MS,
        )
    for name, ratio_text in server_ratios(results.get("servers", [])):
        add(f"server comparison, {name} (median of rounds, 1 worker)", ratio_text, None)
    if sayt2:
        add(
            f"SAYT HTTP p99 <= {SAYT_P99_MS:.0f} ms (2 workers, 4 conns)",
            f"{sayt2['p99_ms']:.1f} ms",
            sayt2["p99_ms"] <= SAYT_P99_MS,
        )
        add(
            f"SAYT HTTP >= {SAYT_RPS:,.0f} req/s (2 workers)",
            f"{sayt2['requests_per_s']:,.0f} req/s",
            sayt2["requests_per_s"] >= SAYT_RPS,
        )
    http_uploads = [u for u in results["uploads"] if u["method"].startswith("HTTP records")]
    if http_uploads:
        best = max(http_uploads, key=lambda u: u["records_per_s"])
        add(
            f"upload until searchable >= {UPLOAD_RPS:,.0f} records/s (best batch size)",
            f"{best['records_per_s']:,.0f}/s (batches of {best['batch_size']:,})",
            best["records_per_s"] >= UPLOAD_RPS,
        )
        built = [
            u
            for u in results["uploads"]
            if u["method"] == "in-process pure tantivy (documents built)"
        ]
        if built:
            ratio = best["records_per_s"] / max(built[0]["records_per_s"], 1e-9)
            add(
                f"upload: best HTTP >= {UPLOAD_RATIO} of pure tantivy building the documents",
                f"{ratio:.2f} ({best['records_per_s']:,.0f} / "
                f"{built[0]['records_per_s']:,.0f} records/s)",
                ratio >= UPLOAD_RATIO,
            )
        raw = [u for u in results["uploads"] if u["method"] == "in-process pure tantivy"]
        if raw:
            add(
                "upload: best HTTP vs pure tantivy, same documents and commits (report)",
                f"{best['records_per_s'] / raw[0]['records_per_s']:.0%} of "
                f"{raw[0]['records_per_s']:,.0f}/s",
                None,
            )
    if results["memory"]:
        peak = max(m.get("peak_kb", 0) for m in results["memory"])
        add("server peak RSS (report)", f"{peak / 1024:,.0f} MiB", None)
    return out


def http_layer_ms(http: dict[str, Any], in_process: dict[str, Any]) -> float | None:
    """CPU per request of the HTTP server beyond the same work in-process."""
    a, b = _cpu_per_request(http), _cpu_per_request(in_process)
    return None if a is None or b is None else round(a - b, 3)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def server_ratios(runs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Per workload: each server's median req/s and CPU ms/req over its rounds."""
    out: list[tuple[str, str]] = []
    for workload in sorted({r["workload"] for r in runs}):
        parts = []
        for server in sorted({r["server"] for r in runs}):
            mine = [r for r in runs if r["workload"] == workload and r["server"] == server]
            rps = _median([r["requests_per_s"] for r in mine])
            cpu = _median([c for r in mine if (c := _cpu_per_request(r)) is not None])
            parts.append(f"{server} {rps:,.0f} req/s, {cpu:.3f} CPU ms/req")
        out.append((workload, "; ".join(parts)))
    return out


def show(results: dict[str, Any]) -> None:
    if "mix" in results:
        console.print(f"query mix: {results['mix']}")
    console.print(
        table(
            "Upload until searchable", UPLOAD_COLUMNS, [_upload_row(u) for u in results["uploads"]]
        )
    )
    console.print(
        table(
            "Search (2 refinements, navigation counts, top 10)",
            RUN_COLUMNS,
            _rows(results["search"]),
        )
    )
    console.print(table("SAYT (keystroke replay)", RUN_COLUMNS, _rows(results["sayt"])))
    if results.get("servers"):
        console.print(
            table(
                "Servers compared on the settled catalog (1 worker, 2 connections, in turns)",
                RUN_COLUMNS,
                _rows(results["servers"]),
            )
        )
    if results.get("tail"):
        console.print(
            table(
                "Tail latency on the settled catalog (search, 1 connection)",
                RUN_COLUMNS,
                _rows(results["tail"]),
            )
        )
    console.print(
        table(
            "Server memory",
            ["phase", "pid", "peak RSS MiB", "RSS MiB"],
            [
                (m["phase"], m["pid"], m.get("peak_kb", 0) / 1024, m.get("rss_kb", 0) / 1024)
                for m in results["memory"]
            ],
        )
    )
    checks = results.get("checks", {})
    if checks:
        console.print(table("Checks", ["", "value"], [(k, str(v)) for k, v in checks.items()]))
    console.print(table("Targets", ["target", "measured", "result"], targets(results)))
    for name, summary in results.get("profiles", {}).items():
        console.print(
            table(
                f"Server profile under {name} load (self time)",
                ["function", "%"],
                summary["self"][:12],
            )
        )
        console.print(
            table(
                f"Server profile under {name} load (inclusive, Searchgate code)",
                ["function", "%"],
                summary["inclusive"][:15],
            )
        )
    console.print(
        "CPU ms/req: CPU time of the server (or in-process workers) per request; "
        "run CPU %: their CPU in % of one core; "
        "other CPU %: CPU used by other processes on the machine during the run, "
        "in % of all cores (noise)."
    )


def _upload_row(u: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        u[k]
        for k in (
            "method",
            "batch_size",
            "records",
            "requests",
            "seconds",
            "records_per_s",
            "slowest_request_s",
            "searchable",
        )
    )


_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frame(frame: str) -> tuple[str, str]:
    """(display name, file) of one py-spy frame ``function (path/file.py:line)``."""
    m = _FRAME.match(frame.strip())
    if m is None:
        return frame.strip(), ""
    parts = m.group("file").split("/")
    return f"{m.group('fn')} ({'/'.join(parts[-2:])})", m.group("file")


def _ours(path: str) -> bool:
    return "searchgate/" in path and "searchgate/cli/" not in path


def profile_summary(collapsed: str) -> dict[str, list[tuple[str, float]]]:
    """Shares of all samples: where they were taken (self), and which Searchgate
    functions they were under (inclusive; entry points and frameworks left out)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        n = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += n
        own[frames[-1][0]] += n
        for name in {name for name, path in frames if _ours(path)}:
            inclusive[name] += n
    if not total:
        return {"self": [], "inclusive": []}
    return {
        "self": [(k, round(100 * v / total, 1)) for k, v in own.most_common(25)],
        "inclusive": [(k, round(100 * v / total, 1)) for k, v in inclusive.most_common(40)],
    }
