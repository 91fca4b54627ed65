"""What the end-to-end rotation tests share: a server whose waits are short, the data a
rotation starts from, and the operator's side (the admin API with a personal token, and
``searchgate rotate`` as its own process)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from searchgate.catalog.service import parse_settings
from searchgate.config import Settings
from searchgate.demo import demo_settings, generate
from searchgate.keys.scopes import ALL_SCOPES
from searchgate.permissions import Actor, Permission
from searchgate.rotation.common import ROTATION_SYSTEM
from searchgate.runtime import build_services
from searchgate.secretstores import SecretStore
from tests.e2e.server import ServerProcess, cli_env

# Usage reaches the database and revoked keys leave the key cache within 0.2 s, so that
# a rotation's waits see systems quickly.
SHORT_WAITS = {
    "SEARCHGATE_KEY_USAGE_FLUSH_SECONDS": "0.2",
    "SEARCHGATE_KEY_CACHE_SECONDS": "0.2",
}
ROTATE = [sys.executable, "-m", "searchgate.cli.main", "rotate"]


class TunedServer(ServerProcess):
    """``searchgate serve`` with ``env`` over the test environment and ``args`` added."""

    def __init__(
        self,
        data_dir: Path,
        database_url: str | None = None,
        env: Mapping[str, str] = SHORT_WAITS,
        args: Sequence[str] = (),
    ) -> None:
        super().__init__(data_dir, database_url)
        self.env = dict(env)
        self.args = list(args)

    def start(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "searchgate.cli.main", "serve", "--port", str(self.port)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*cmd, *self.args],
                env={**cli_env(self.data_dir, self.database_url), **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )


@contextlib.contextmanager
def running(server: ServerProcess, timeout: float = 90) -> Iterator[ServerProcess]:
    server.start()
    try:
        server.wait_ready(timeout=timeout)
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Seeded:
    key: str  # the primary client key's secret, also in the store
    key_id: str
    token: str  # the admin's personal API token, allowed to rotate
    read_only_token: str | None


def seed(
    data_dir: Path,
    store: SecretStore,
    database_url: str | None = None,
    records: int = 0,
    read_only: Sequence[Permission] = (),
) -> Seeded:
    """A primary client key (written to ``store``), an admin with a personal token, a
    demo catalog of ``records`` records (none: no catalog), and with ``read_only`` a
    second token of the admin holding only those permissions."""
    services = build_services(Settings(data_dir=data_dir, database_url=database_url))
    system = Actor.system("e2e")
    created = services.keys.create(system, "storefront key", ALL_SCOPES, primary=True)
    if records:
        services.catalog.put_settings("default", parse_settings(demo_settings()))
        services.catalog.write_records("default", list(generate(records)))
    admin = services.users.create(
        system, "ops@example.com", "correct horse battery staple", "admin"
    )
    token = services.tokens.create(system, "rotation", user_id=admin.id).secret
    read_only_token = None
    if read_only:
        read_only_token = services.tokens.create(
            system, "read only", [p.value for p in read_only], user_id=admin.id
        ).secret
    services.db.dispose()
    store.write(created.secret, expected_version=None)
    return Seeded(created.secret, created.info.id, token, read_only_token)


@dataclass
class Operator:
    """The operator's side of a running server: the admin API and ``searchgate rotate``."""

    server: ServerProcess
    token: str

    def admin(self, path: str, **params: str) -> Any:
        r = httpx.get(
            f"{self.server.url}/api/v1/admin{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return r.json()

    def self_check(self, secret: str) -> httpx.Response:
        return httpx.get(
            f"{self.server.url}/api/v1/keys/self",
            # Named like the runner's own checks: a check, not a system that has to move.
            headers={"Authorization": f"Bearer {secret}", "X-Searchgate-System": ROTATION_SYSTEM},
            timeout=30,
        )

    def key_status(self, secret: str) -> int:
        return self.self_check(secret).status_code

    def rotate_command(
        self,
        store: str,
        path: str,
        *args: str,
        env: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> tuple[list[str], dict[str, str]]:
        """``searchgate rotate`` for the key at ``path`` in ``store`` and its environment
        (``env`` added: the store's credentials), with the operator's token or ``token``."""
        environ = {**cli_env(self.server.data_dir, None), **(env or {})}
        environ["SEARCHGATE_ADMIN_TOKEN"] = token or self.token
        cmd = [*ROTATE, "--server", self.server.url, "--store", store, "--path", path, *args]
        return cmd, environ
