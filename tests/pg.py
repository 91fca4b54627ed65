"""A private PostgreSQL 15 server for the test session, on 127.0.0.1.

Debian's ``initdb`` refuses to run as root, so as root the server runs as the
``postgres`` user that the package creates.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

BIN = Path(os.environ.get("SEARCHGATE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_pg_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _memory_dir() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


class PostgresServer:
    def __init__(self) -> None:
        # In memory where the system has it: a test server writes a database of about
        # 10 MiB for every test, and deleting a few gigabytes of them from a disk at
        # the end took longer than a minute.
        self.dir = Path(tempfile.mkdtemp(prefix="searchgate-pg-", dir=_memory_dir()))
        self.port = free_port()
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            _as_pg_user(
                [
                    str(BIN / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )
        self.resume()

    def resume(self) -> None:
        """Starts the server (again, after ``pause``) on the same port and data."""
        subprocess.run(
            _as_pg_user(
                [
                    str(BIN / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-w",
                    "-o",
                    f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def pause(self) -> None:
        """Stops the server at once, as a crash would, keeping its data for ``resume``:
        every client connection is cut and new ones are refused."""
        subprocess.run(
            _as_pg_user([str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
            check=True,
            capture_output=True,
            timeout=30,
        )

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            subprocess.run(
                _as_pg_user([str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
                check=False,
                capture_output=True,
                timeout=30,
            )
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """An empty database, or a copy of ``template`` made by the server (much faster
        than running the migrations again). Nobody may be connected to ``template``."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            copy = f' TEMPLATE "{template}"' if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drops ``name``, cutting off whoever is still connected."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def running() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def available() -> bool:
    return (BIN / "initdb").exists()


def wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")
