"""HTTP load: wrk replaying pre-built requests (preferred: a C client that leaves the
cores to the server), or Python processes with httpx keep-alive when wrk is missing."""

from __future__ import annotations

import multiprocessing as mp
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.common import CpuWatch, Latency

LUA = Path(__file__).resolve().parent / "wrk_replay.lua"


@dataclass
class LoadResult:
    client: str
    connections: int
    requests: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    cpu: dict[str, float] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Workload:
    """Pre-built requests: JSON bodies POSTed to ``path``, or GET paths (``path`` None)."""

    name: str
    lines: list[str]
    path: str | None = None

    def write(self, directory: Path) -> Path:
        target = directory / f"{self.name}.requests"
        target.write_text("\n".join(self.lines) + "\n")
        return target


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run(
    workload: Workload,
    base_url: str,
    key_file: Path,
    connections: int,
    seconds: float,
    server_pids: list[int],
    work_dir: Path,
    client: str = "auto",
) -> LoadResult:
    use_wrk = client == "wrk" or (client == "auto" and have_wrk())
    watch = CpuWatch(server_pids)
    if use_wrk:
        result = _wrk(workload, base_url, key_file, connections, seconds, work_dir)
    else:
        result = _python(workload, base_url, key_file, connections, seconds)
    result.cpu = watch.stop()
    if result.requests == 0:
        raise RuntimeError(f"no {workload.name} request completed in {seconds:.0f} s")
    return result


def _wrk(
    workload: Workload,
    base_url: str,
    key_file: Path,
    connections: int,
    seconds: float,
    work_dir: Path,
) -> LoadResult:
    requests_file = workload.write(work_dir)
    method = "GET" if workload.path is None else "POST"
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(round(seconds), 1)}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        base_url,
        "--",
        str(requests_file),
        method,
        workload.path or "",
        str(key_file),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    data: dict[str, Any] = orjson.loads(line.split(" ", 1)[1])
    lat = data["latency_us"]
    secs = data["duration_us"] / 1e6
    return LoadResult(
        client="wrk (1 thread)",
        connections=connections,
        requests=data["requests"],
        seconds=round(secs, 2),
        requests_per_s=round(data["requests"] / secs, 1),
        p50_ms=lat["p50"] / 1000,
        p90_ms=lat["p90"] / 1000,
        p99_ms=lat["p99"] / 1000,
        max_ms=lat["max"] / 1000,
        errors=sum(data["errors"].values()),
    )


def _python_worker(
    lines: list[str],
    path: str | None,
    base_url: str,
    key: str,
    offset: int,
    start: Any,
    seconds: float,
    out: Any,
) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    if path is not None:
        headers["Content-Type"] = "application/json"
    latencies: list[float] = []
    errors = 0
    with httpx.Client(base_url=base_url, headers=headers, timeout=10.0) as client:
        # Connect (and warm the connection), then start with the other processes.
        client.get("/healthz")
        start.wait()
        end = time.monotonic() + seconds
        i = offset
        while time.monotonic() < end:
            line = lines[i % len(lines)]
            i += 1
            t0 = time.perf_counter()
            try:
                r = client.get(line) if path is None else client.post(path, content=line)
                if r.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - t0)
    out.put((latencies, errors))


def _python(
    workload: Workload, base_url: str, key_file: Path, connections: int, seconds: float
) -> LoadResult:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    key = key_file.read_text().strip()
    start = ctx.Barrier(connections + 1)
    procs = [
        ctx.Process(
            target=_python_worker,
            args=(
                workload.lines,
                workload.path,
                base_url,
                key,
                n * 7919,
                start,
                seconds,
                queue,
            ),
        )
        for n in range(connections)
    ]
    for p in procs:
        p.start()
    start.wait(timeout=300)
    latencies: list[float] = []
    errors = 0
    for _ in procs:
        got, errs = queue.get(timeout=seconds + 120)
        latencies.extend(got)
        errors += errs
    for p in procs:
        p.join()
    lat = Latency.of_seconds(latencies)
    return LoadResult(
        client=f"python httpx ({connections} processes)",
        connections=connections,
        requests=lat.count,
        seconds=round(seconds, 2),
        requests_per_s=round(lat.count / seconds, 1),
        p50_ms=lat.p50_ms,
        p90_ms=lat.p90_ms,
        p99_ms=lat.p99_ms,
        max_ms=lat.max_ms,
        errors=errors,
        note="the Python client shares the cores with the server",
    )
