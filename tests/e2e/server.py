"""A real ``searchgate serve`` process on a free port, for end-to-end tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.pg import free_port

# Small index writers: the test machine runs several suites side by side.
BASE_ENV = {
    "SEARCHGATE_INDEX_WRITER_HEAP_BYTES": "50000000",
    "SEARCHGATE_INDEX_WRITER_THREADS": "1",
    "SEARCHGATE_LOG_LEVEL": "warning",
}


def cli_env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCHGATE_")}
    env.update(BASE_ENV)
    env["SEARCHGATE_DATA_DIR"] = str(data_dir)
    if database_url:
        env["SEARCHGATE_DATABASE_URL"] = database_url
    return env


def run_cli(
    data_dir: Path,
    database_url: str | None,
    *args: str,
    stdin: str | None = None,
    timeout: float = 60,
) -> str:
    """Runs ``searchgate ARGS`` as its own process and returns its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "searchgate.cli.main", *args],
        env=cli_env(data_dir, database_url),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"searchgate {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def create_key(data_dir: Path, database_url: str | None, name: str = "e2e") -> str:
    out = run_cli(
        data_dir, database_url, "keys", "create", "--name", name, "--all-scopes", "--json"
    )
    key: str = json.loads(out)["secret"]
    return key


class ServerProcess:
    def __init__(
        self, data_dir: Path, database_url: str | None = None, env: dict[str, str] | None = None
    ) -> None:
        """``env``: settings of this server beside the base ones (SEARCHGATE_...)."""
        self.data_dir = data_dir
        self.database_url = database_url
        self.env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the server is not started"
        return self.proc.pid

    def start(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "searchgate.cli.main",
                    "serve",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                ],
                env={**cli_env(self.data_dir, self.database_url), **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"searchgate serve exited with {self.proc.returncode}:\n{self.log_tail()}"
            )

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=5, **kwargs)

    def wait_for(self, path: str, status: int = 200, timeout: float = 45) -> httpx.Response:
        deadline = time.monotonic() + timeout
        last: str = "no answer"
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                r = self.get(path)
                if r.status_code == status:
                    return r
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.TransportError as exc:
                last = type(exc).__name__
            time.sleep(0.1)
        raise TimeoutError(f"{path} did not answer {status} within {timeout} s ({last})")

    def wait_ready(self, timeout: float = 45) -> None:
        self.wait_for("/readyz", 200, timeout)

    def children(self) -> list[int]:
        """Processes whose parent is the server (none when uvicorn runs in-process)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                # The command name may hold spaces; the parent pid follows its ')'.
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid == self.pid:
                    found.append(int(entry.name))
        return found

    def kill(self) -> int:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        return self.proc.wait(timeout=30)

    def stop(self) -> None:
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL if the process has not ended within 20 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
