"""Upload throughput on PostgreSQL against SQLite, in the same run.

One ``searchgate serve`` process on SQLite (its data directory's own file) and one on a
private PostgreSQL 15 server (tests/pg.py: on this machine's memory file system, with
``fsync`` and ``synchronous_commit`` off, as in the tests), each with default settings
and a fresh data directory. The same demo records (``searchgate.demo.generate``, the
demo collection's settings) are uploaded to each through the records API, one request
of ``--batch`` records at a time (JSON arrays, serialized before the clock starts), each
answered before the next is sent. Both servers run side by side and take the records in
``--rounds`` alternating shares, so that other load on the machine hits both alike.
Records per second are the records over the time spent uploading to that server; the
ratio is PostgreSQL's over SQLite's (goal: at least 0.8). Each collection must hold
every record at the end.

    .venv/bin/python -m bench.upload_backends [--records 100000] [--batch 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from tests import pg

from bench.common import console, machine, scrub_environment, table, write_result
from searchgate.demo import demo_settings, generate

COLLECTION = "products"


def _env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCHGATE_")}
    env["SEARCHGATE_DATA_DIR"] = str(data_dir)
    env["SEARCHGATE_LOG_LEVEL"] = "warning"
    if database_url:
        env["SEARCHGATE_DATABASE_URL"] = database_url
    return env


def _cli(data_dir: Path, database_url: str | None, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "searchgate.cli.main", *args],
        env=_env(data_dir, database_url),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"searchgate {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("searchgate serve exited early")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError("searchgate serve was not ready in time")


def bodies(records: int, batch: int) -> tuple[list[bytes], int]:
    """The request bodies, and how many distinct records they hold."""
    rows = list(generate(records))
    distinct = len({row["id"] for row in rows})
    return [orjson.dumps(rows[i : i + batch]) for i in range(0, len(rows), batch)], distinct


class Target:
    """``searchgate serve`` on ``database_url`` (None: SQLite in its data directory)."""

    def __init__(self, base: Path, name: str, database_url: str | None) -> None:
        self.name = name
        data_dir = base / name / "data"
        data_dir.mkdir(parents=True)
        key = json.loads(
            _cli(
                data_dir,
                database_url,
                "keys",
                "create",
                "--name",
                "bench",
                "--all-scopes",
                "--json",
            )
        )["secret"]
        port = pg.free_port()
        with (base / name / "server.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "searchgate.cli.main", "serve", "--port", str(port)],
                env=_env(data_dir, database_url),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, self.proc)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.http = httpx.Client(base_url=url, headers=headers, timeout=600)
        self.http.put(f"/api/v1/collections/{COLLECTION}", json=demo_settings()).raise_for_status()
        self.sent = 0
        self.seconds = 0.0

    def upload(self, payloads: list[bytes]) -> None:
        started = time.perf_counter()
        for body in payloads:
            r = self.http.post(f"/api/v1/collections/{COLLECTION}/records", content=body)
            r.raise_for_status()
            self.sent += int(r.json()["upserted"])
        self.seconds += time.perf_counter() - started

    def check(self, distinct: int) -> None:
        got = self.http.get(f"/api/v1/collections/{COLLECTION}").raise_for_status().json()
        if got["recordCount"] != distinct:
            raise RuntimeError(f"{self.name}: {distinct} records sent, {got['recordCount']} stored")

    @property
    def per_s(self) -> float:
        return self.sent / self.seconds

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    scrub_environment()
    payloads, distinct = bodies(args.records, args.batch)
    server = pg.PostgresServer()
    server.start()
    targets: list[Target] = []
    try:
        with tempfile.TemporaryDirectory(prefix="sg-upload-backends-") as tmp:
            base = Path(tmp)
            targets.append(Target(base, "SQLite", None))
            targets.append(Target(base, "PostgreSQL", server.create_database("searchgate")))
            share = -(-len(payloads) // args.rounds)
            for n in range(args.rounds):
                for target in targets if n % 2 == 0 else reversed(targets):
                    target.upload(payloads[n * share : (n + 1) * share])
            for target in targets:
                target.check(distinct)
            sqlite, postgres = targets
            ratio = postgres.per_s / sqlite.per_s
            result: dict[str, Any] = {
                "records": args.records,
                "batch": args.batch,
                "rounds": args.rounds,
                "sqlite_per_s": sqlite.per_s,
                "postgresql_per_s": postgres.per_s,
                "ratio": ratio,
                "machine": machine(),
            }
    finally:
        for target in targets:
            target.stop()
        server.stop()
    console.print(
        table(
            f"Upload throughput, {args.records:,} demo records, {args.batch:,} per request",
            ["database", "records/s"],
            [[t.name, t.per_s] for t in targets],
        )
    )
    console.print(f"PostgreSQL / SQLite: {ratio:.2f} (goal >= 0.80)")
    console.print(f"written to {write_result('upload_backends', result)}")


if __name__ == "__main__":
    main()
