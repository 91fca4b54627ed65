"""Shared pieces of the benchmark scripts: paths, statistics, CPU and memory readings,
result files and tables."""

from __future__ import annotations

import math
import os
import platform
import resource
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
console = Console(width=shutil.get_terminal_size((150, 40)).columns)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def scrub_environment() -> None:
    """The benchmarks run on fresh data directories: a SEARCHGATE_* variable of the
    shell (a database URL, a pepper) must not leak into them or into the servers."""
    for name in [n for n in os.environ if n.startswith("SEARCHGATE_")]:
        del os.environ[name]


# --- statistics --------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when there are none)."""
    if not sorted_values:
        return 0.0
    rank = max(math.ceil(p / 100 * len(sorted_values)), 1)
    return float(sorted_values[rank - 1])


@dataclass
class Latency:
    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of_seconds(cls, values: Iterable[float]) -> Latency:
        ordered = sorted(values)
        return cls(
            count=len(ordered),
            p50_ms=percentile(ordered, 50) * 1000,
            p90_ms=percentile(ordered, 90) * 1000,
            p99_ms=percentile(ordered, 99) * 1000,
            max_ms=(ordered[-1] * 1000) if ordered else 0.0,
        )


# --- CPU and memory ----------------------------------------------------------------


def _machine_ticks() -> tuple[int, int]:
    with open("/proc/stat") as fh:
        parts = [int(x) for x in fh.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return sum(parts) - idle, sum(parts)


def process_cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime and stime are fields 14 and 15 of the line; 12 and 13 after the name.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _own_and_children_cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


class CpuWatch:
    """Where the machine's CPU time went during one run: the server, the load generator
    (waited-for child processes of this script), this script, and everything else
    (other work on a shared machine)."""

    def __init__(self, server_pids: Sequence[int]) -> None:
        self.pids = list(server_pids)
        self.busy0, self.total0 = _machine_ticks()
        self.server0 = sum(process_cpu_seconds(p) for p in self.pids)
        self.own0, self.kids0 = _own_and_children_cpu()
        self.wall0 = time.monotonic()

    def stop(self) -> dict[str, float]:
        busy1, total1 = _machine_ticks()
        server = sum(process_cpu_seconds(p) for p in self.pids) - self.server0
        own1, kids1 = _own_and_children_cpu()
        wall = time.monotonic() - self.wall0
        cores = os.cpu_count() or 1
        busy = (busy1 - self.busy0) / CLOCK_TICKS
        client = kids1 - self.kids0
        own = own1 - self.own0
        return {
            "wall_s": round(wall, 3),
            "machine_busy_pct": round(100 * (busy1 - self.busy0) / max(total1 - self.total0, 1), 1),
            "server_cpu_s": round(server, 3),
            "client_cpu_s": round(client, 3),
            "bench_cpu_s": round(own, 3),
            "other_cpu_s": round(max(busy - server - client - own, 0.0), 3),
            "cores": cores,
        }


def memory_kb(pid: int) -> dict[str, int]:
    """Peak (VmHWM) and current (VmRSS) resident memory of one process, in KiB."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    name, value = line.split(":", 1)
                    out[name] = int(value.split()[0])
    except OSError:
        return {}
    return {"peak_kb": out.get("VmHWM", 0), "rss_kb": out.get("VmRSS", 0)}


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if "model name" in ln), "")
    except OSError:
        pass
    load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_at_start": [round(x, 2) for x in load],
    }


# --- output --------------------------------------------------------------------------


def write_result(kind: str, data: dict[str, Any], path: Path | None = None) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    target = path or RESULTS / f"{kind}-{stamp}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    return target


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 else "right")
    for row in rows:
        t.add_row(*(fmt(v) for v in row))
    return t


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
