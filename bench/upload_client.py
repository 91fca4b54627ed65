"""The uploader (``searchgate-upload``) against the records API posting the same batches.

Generates an NDJSON catalog file (1,000,000 records by default), then, each on a fresh
server with an empty data directory so that neither run inherits the other's tables:

- **direct**: this process reads the file, cuts it into the same batches as the
  uploader (``--batch-records`` lines) and posts each one to
  ``POST /api/v1/collections/bench/records`` as NDJSON, one after another over one
  connection: the records API's own throughput, with nothing in between;
- **uploader**: ``searchgate-upload FILE --collection bench`` as its own process, with
  its checkpoint, retries and progress; its peak resident memory (``VmHWM`` of
  ``/proc/PID/status``, sampled every 50 ms until it exits: the kernel's ``ru_maxrss``
  would count the benchmark's own pages, shared with the child between fork and exec)
  is what the uploader needs for the file.

    .venv/bin/python -m bench.upload_client [--records 1000000] [--batch-records 5000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.common import (
    console,
    machine,
    memory_kb,
    now_iso,
    scrub_environment,
    table,
    write_result,
)
from bench.server import Server, fresh_dir, make_key

COLLECTION = "bench"
BRANDS = ["Lumo", "Acme", "Nordic", "Shadey", "Brightly", "Oakline", "Volt"]
WORDS = ["desk", "lamp", "chair", "table", "shelf", "oak", "steel", "linen", "lounge", "mini"]


def generate(path: Path, records: int) -> int:
    """A catalog of ``records`` products (about 250 bytes each), written in blocks."""
    with path.open("wb") as fh:
        block: list[bytes] = []
        for i in range(records):
            words = " ".join(WORDS[(i * k) % len(WORDS)] for k in (1, 3, 7))
            block.append(
                orjson.dumps(
                    {
                        "id": f"sku-{i:07d}",
                        "title": f"{words.title()} {i}",
                        "brand": BRANDS[i % len(BRANDS)],
                        "price": round(5 + (i * 37 % 2000) / 10, 2),
                        "inStock": i % 5 != 0,
                        "description": f"A {words} for every room, model {i % 997}.",
                    }
                )
            )
            if len(block) == 10_000:
                fh.write(b"\n".join(block) + b"\n")
                block = []
        if block:
            fh.write(b"\n".join(block) + b"\n")
    return path.stat().st_size


def direct(url: str, key: str, path: Path, batch: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}
    sent = 0
    requests = 0
    with httpx.Client(base_url=url, headers=headers, timeout=600) as http, path.open("rb") as fh:
        started = time.perf_counter()
        while True:
            lines = [line for _, line in zip(range(batch), fh, strict=False)]
            if not lines:
                break
            r = http.post(f"/api/v1/collections/{COLLECTION}/records", content=b"".join(lines))
            r.raise_for_status()
            sent += r.json()["upserted"]
            requests += 1
        seconds = time.perf_counter() - started
    return {"records": sent, "requests": requests, "seconds": seconds, "per_s": sent / seconds}


def uploader(url: str, key_file: Path, path: Path, batch: int, state: Path) -> dict[str, Any]:
    script = Path(sys.executable).parent / "searchgate-upload"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "searchgate_client.upload"]
    cmd += [
        str(path),
        "--collection",
        COLLECTION,
        "--server",
        url,
        "--store",
        "file",
        "--path",
        str(key_file),
        "--batch-records",
        str(batch),
        "--state",
        str(state),
        "--json",
        "--quiet",
    ]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    peak_seen = 0
    assert proc.stdout is not None
    # The report comes at the end: read it while sampling, then collect the exit status
    # with the process's own resource usage.
    out = b""
    os.set_blocking(proc.stdout.fileno(), False)
    while True:
        chunk = proc.stdout.read()
        if chunk:
            out += chunk
        peak_seen = max(peak_seen, memory_kb(proc.pid).get("peak_kb", 0))
        pid, status = os.waitpid(proc.pid, os.WNOHANG)
        if pid != 0:
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    rest = proc.stdout.read()
    out += rest or b""
    code = os.waitstatus_to_exitcode(status)
    report = orjson.loads(out)
    return {
        "records": report["upserted"],
        "batches": report["batches"],
        "exit_code": code,
        "seconds": seconds,
        "per_s": report["upserted"] / seconds,
        "peak_rss_mib": peak_seen / 1024,
        "retries": report["retries"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--batch-records", type=int, default=5000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/searchgate-bench-upload"))
    args = ap.parse_args()
    scrub_environment()
    work = fresh_dir(args.workdir, "run")
    catalog = work / "catalog.ndjson"
    info: dict[str, Any] = {"machine": machine(), "started": now_iso(), "records": args.records}
    t0 = time.perf_counter()
    info["file_bytes"] = generate(catalog, args.records)
    info["generate_seconds"] = time.perf_counter() - t0

    data = fresh_dir(work, "direct")
    key, _ = make_key(data)
    with Server(data).start() as srv:
        info["direct"] = direct(srv.base_url, key, catalog, args.batch_records)
        info["direct"]["server_peak_rss_mib"] = srv.memory()[str(srv.pids()[0])]["peak_kb"] / 1024
    console.print(f"direct: {info['direct']}")

    data = fresh_dir(work, "uploader")
    _, key_file = make_key(data)
    with Server(data).start() as srv:
        info["uploader"] = uploader(
            srv.base_url, key_file, catalog, args.batch_records, fresh_dir(work, "state")
        )
        info["uploader"]["server_peak_rss_mib"] = srv.memory()[str(srv.pids()[0])]["peak_kb"] / 1024
    console.print(f"uploader: {info['uploader']}")

    info["ratio"] = info["uploader"]["per_s"] / info["direct"]["per_s"]
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path = write_result("upload-client", info)
    console.print(
        table(
            f"Uploading {args.records:,} NDJSON records ({info['file_bytes'] / 2**20:,.0f} MiB), "
            f"batches of {args.batch_records:,}",
            ["run", "records/s", "seconds", "peak RSS of the client (MiB)"],
            [
                [
                    "records API, posted directly",
                    info["direct"]["per_s"],
                    info["direct"]["seconds"],
                    None,
                ],
                [
                    "searchgate-upload",
                    info["uploader"]["per_s"],
                    info["uploader"]["seconds"],
                    info["uploader"]["peak_rss_mib"],
                ],
            ],
        )
    )
    console.print(
        f"ratio {info['ratio']:.3f}; load {info['machine']['loadavg_at_start']} -> "
        f"{info['loadavg_at_end']}; {path}"
    )


if __name__ == "__main__":
    main()
