"""``searchgate rotate`` as its own process against a real ``searchgate serve``, with the
key in a file store: what a cron job sees (exit codes, messages) and what the change
log and the usage data keep of a whole rotation."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from searchgate.config import Settings
from searchgate.keys.scopes import ALL_SCOPES
from searchgate.permissions import Actor, Permission
from searchgate.runtime import build_services
from searchgate.secretstores import open_store
from tests.e2e.server import ServerProcess, cli_env

pytestmark = pytest.mark.e2e

SERVER_ENV = {
    "SEARCHGATE_KEY_USAGE_FLUSH_SECONDS": "0.2",
    "SEARCHGATE_KEY_CACHE_SECONDS": "0.2",
}
FAST = ["--probation", "1s", "--move-timeout", "30s", "--lease", "2s", "--poll", "0.2s"]


class TunedServer(ServerProcess):
    def start(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "searchgate.cli.main", "serve", "--port", str(self.port)],
                env={**cli_env(self.data_dir, None), **SERVER_ENV},
                stdout=log,
                stderr=subprocess.STDOUT,
            )


@dataclass
class Setup:
    server: TunedServer
    store_path: Path
    token: str
    read_only_token: str

    def rotate(self, *extra: str, token: str | None = None) -> tuple[int, str, str]:
        env = {**cli_env(self.server.data_dir, None), "SEARCHGATE_ADMIN_TOKEN": token or self.token}
        cmd = [sys.executable, "-m", "searchgate.cli.main", "rotate", "--server", self.server.url]
        cmd += ["--store", "file", "--path", str(self.store_path), *extra]
        done = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        return done.returncode, done.stdout, done.stderr

    def admin(self, path: str, **params: str) -> Any:
        r = httpx.get(
            f"{self.server.url}/api/v1/admin{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    data_dir = tmp_path / "data"
    services = build_services(Settings(data_dir=data_dir))
    system = Actor.system("e2e")
    created = services.keys.create(system, "storefront key", ALL_SCOPES, primary=True)
    admin = services.users.create(
        system, "ops@example.com", "correct horse battery staple", "admin"
    )
    token = services.tokens.create(system, "rotation", user_id=admin.id).secret
    read_only = services.tokens.create(
        system,
        "read only",
        [Permission.KEYS_READ.value, Permission.AUDIT_READ.value],
        user_id=admin.id,
    ).secret
    services.db.dispose()
    store_path = tmp_path / "client-key.json"
    open_store("file", str(store_path)).write(created.secret, expected_version=None)
    server = TunedServer(data_dir)
    server.start()
    try:
        server.wait_ready()
        yield Setup(server, store_path, token, read_only)
    finally:
        server.stop()


def test_a_token_without_key_management_is_a_precondition_not_a_retry(setup: Setup) -> None:
    code, out, err = setup.rotate("--quiet", "0s", *FAST, "--json", token=setup.read_only_token)
    assert code == 3, err[-2000:]
    body = json.loads(out)
    assert body["exitCode"] == 3
    message = body["error"]["message"]
    assert "admin:keys:manage" in message and "re-run" not in message.lower()
    assert setup.read_only_token not in out + err

    code, _out, err = setup.rotate("--quiet", "0s", *FAST, token="sgp_" + "x" * 40)
    assert code == 3, err[-2000:]
    assert "token" in err and "server error" not in err
    assert setup.admin("/rotations/current")["rotation"] is None


def test_a_finished_rotation_is_not_started_again_by_a_rerun(setup: Setup) -> None:
    code, out, err = setup.rotate("--quiet", "0s", *FAST, "--json")
    assert code == 0, err[-2000:]
    first = json.loads(out)
    assert first["outcome"] == "finished"
    # The quiet period is shorter than the server's deletion check: said, and recorded.
    assert "shorter than the server's deletion check (15m)" in err
    [deleted] = setup.admin("/audit", action="admin:keys:delete", target=first["oldKeyId"])[
        "events"
    ]
    details = deleted["details"]
    assert details["rotation"] == first["rotationId"] and details["forced"] is False
    assert details["quietShorterThanDeletionCheck"] is True
    # The runner's own checks with the new key are no system of it.
    assert setup.admin(f"/keys/{first['newKeyId']}/usage")["systems"] == []

    code, out, err = setup.rotate("--quiet", "0s", *FAST, "--json")
    assert code == 0, err[-2000:]
    again = json.loads(out)
    assert again["outcome"] == "already-finished"
    assert again["rotationId"] == first["rotationId"]
    assert f"rotation {first['rotationId']} finished at" in again["message"]
    assert setup.admin("/rotations/current")["rotation"] is None

    code, out, err = setup.rotate("--quiet", "0s", *FAST, "--json", "--new")
    assert code == 0, err[-2000:]
    second = json.loads(out)
    assert second["outcome"] == "finished" and second["rotationId"] != first["rotationId"]
