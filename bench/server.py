"""Starting and stopping a real ``searchgate serve`` process for the HTTP benchmarks."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.common import memory_kb
from searchgate.config import Settings
from searchgate.keys.scopes import ALL_SCOPES
from searchgate.permissions import Actor
from searchgate.runtime import build_services

STARTED = "Application startup complete"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_key(data_dir: Path) -> tuple[str, Path]:
    """Creates an all-scopes client key in a data directory (migrating it first) and
    keeps it in a 0600 file, which is how the load generator reads it."""
    services = build_services(Settings(data_dir=data_dir, database_url=None, key_pepper=None))
    try:
        secret = services.keys.create(Actor.system("bench"), "bench", ALL_SCOPES).secret
    finally:
        services.db.dispose()
    path = data_dir / "secrets" / "bench-client-key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret)
    return secret, path


def _command() -> list[str]:
    script = Path(sys.executable).parent / "searchgate"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "searchgate.cli.main"]


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        # multiprocessing's resource tracker is a child too, but serves nothing.
        if ppid == pid and b"resource_tracker" not in cmdline:
            out.append(int(entry.name))
    return sorted(out)


SERVERS = ("uvicorn", "granian")


def granian_command() -> str | None:
    """Granian's command beside this interpreter (the project's environment), else on
    the PATH; None when it is not installed."""
    beside = Path(sys.executable).parent / "granian"
    return str(beside) if beside.exists() else shutil.which("granian")


class Server:
    """``searchgate serve`` on a free port of 127.0.0.1, logging into a file.

    ``server="granian"`` serves the same application with Granian instead (a Rust HTTP
    server for ASGI applications), started the way its documentation says, so that the
    two can be compared in one run. ``settings``: ``SEARCHGATE_*`` variables the server
    gets (the shell's own are never passed on)."""

    def __init__(
        self,
        data_dir: Path,
        workers: int = 1,
        log_dir: Path | None = None,
        server: str = "uvicorn",
        settings: dict[str, str] | None = None,
    ) -> None:
        if server not in SERVERS:
            raise ValueError(f"server is one of {', '.join(SERVERS)}")
        self.data_dir = data_dir
        self.workers = workers
        self.server = server
        self.settings = dict(settings or {})
        self.port = free_port()
        self.log_path = (log_dir or data_dir) / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300.0) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCHGATE_")}
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.settings)
        cmd = [
            *_command(),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        if self.server == "granian":
            # Migrated by `searchgate serve` before; the workers read the environment.
            env["SEARCHGATE_DATA_DIR"] = str(self.data_dir.resolve())
            granian = granian_command()
            if granian is None:
                raise RuntimeError("granian is not installed (pip install granian)")
            cmd = [
                granian,
                "--interface",
                "asgi",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--no-ws",
                "--no-access-log",
                "searchgate.webapp:app_from_env",
            ]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self._wait_ready(timeout)
        return self

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def _wait_ready(self, timeout: float) -> None:
        """Every worker has finished its start-up (its index is caught up) and the
        server answers."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited early:\n{self._log_tail()}")
            started = self.log_path.read_text(errors="replace").count(STARTED)
            # Granian prints no such line: its workers answer once their lifespan ran.
            if started >= self.workers or self.server == "granian":
                try:
                    if httpx.get(self.base_url + "/healthz", timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not start in {timeout:.0f} s:\n{self._log_tail()}")

    def pids(self) -> list[int]:
        """The processes that serve requests (the workers, or the one process)."""
        if self.proc is None:
            return []
        if self.workers == 1 and self.server == "uvicorn":
            return [self.proc.pid]
        return _children(self.proc.pid)

    def memory(self) -> dict[str, dict[str, int]]:
        return {str(pid): memory_kb(pid) for pid in self.pids()}

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def fresh_dir(root: Path, name: str) -> Path:
    path = root / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path
