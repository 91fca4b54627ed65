"""``searchgate rotate`` as its own process against a real ``searchgate serve``, with the
key in a file store: what a cron job sees (exit codes, messages) and what the change
log and the usage data keep of a whole rotation."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from searchgate.permissions import Permission
from searchgate.secretstores import open_store
from tests.e2e.rotation_support import Operator, TunedServer, running, seed

pytestmark = pytest.mark.e2e

FAST = ["--probation", "1s", "--move-timeout", "30s", "--lease", "2s", "--poll", "0.2s"]


@dataclass
class Setup(Operator):
    store_path: Path
    read_only_token: str

    def rotate(self, *extra: str, token: str | None = None) -> tuple[int, str, str]:
        cmd, env = self.rotate_command("file", str(self.store_path), *extra, token=token)
        done = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        return done.returncode, done.stdout, done.stderr


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    store_path = tmp_path / "client-key.json"
    seeded = seed(
        tmp_path / "data",
        open_store("file", str(store_path)),
        read_only=[Permission.KEYS_READ, Permission.AUDIT_READ],
    )
    assert seeded.read_only_token is not None
    with running(TunedServer(tmp_path / "data"), timeout=45) as server:
        yield Setup(server, seeded.token, store_path, seeded.read_only_token)


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
