"""Rotating the server pepper: keys stored under the old one keep working and move."""

from __future__ import annotations

from pathlib import Path

import pytest

from searchgate.config import Settings
from searchgate.keys.scopes import ALL_SCOPES
from searchgate.runtime import build_services
from searchgate.server_secrets import ServerSecretsError
from tests.keyhelp import SYSTEM


def test_a_new_pepper_with_the_old_one_retiring_keeps_keys_and_rehashes_on_use(
    tmp_path: Path,
) -> None:
    old = build_services(Settings(data_dir=tmp_path, key_pepper="old-pepper-" + "x" * 20))
    used = old.keys.create(SYSTEM, "used", ALL_SCOPES).secret
    idle = old.keys.create(SYSTEM, "idle", ALL_SCOPES).secret
    old_id = old.keys.pepper.id
    old.db.dispose()

    # Without the old pepper listed every key would be unknown (the digest changed):
    # the node refuses to start instead, naming the pepper.
    with pytest.raises(ServerSecretsError, match="key pepper"):
        build_services(Settings(data_dir=tmp_path, key_pepper="new-pepper-" + "y" * 20))

    new = build_services(
        Settings(
            data_dir=tmp_path,
            key_pepper="new-pepper-" + "y" * 20,
            key_pepper_previous=["old-pepper-" + "x" * 20],
        )
    )
    info = new.keys.verify(used)
    assert info is not None and info.name == "used"
    counts = new.keys.pepper_counts()
    assert counts == {new.keys.pepper.id: 1, old_id: 1}  # "idle" still waits for a use
    new.db.dispose()

    # Once moved, a key no longer needs the old pepper.
    after = build_services(Settings(data_dir=tmp_path, key_pepper="new-pepper-" + "y" * 20))
    assert after.keys.verify(used) is not None
    assert after.keys.verify(idle) is None
    after.db.dispose()


def test_a_leak_report_finds_a_key_stored_under_a_retiring_pepper(tmp_path: Path) -> None:
    old = build_services(Settings(data_dir=tmp_path, key_pepper="old-pepper-" + "x" * 20))
    secret = old.keys.create(SYSTEM, "leaked", ALL_SCOPES).secret
    old.db.dispose()
    new = build_services(
        Settings(
            data_dir=tmp_path,
            key_pepper="new-pepper-" + "y" * 20,
            key_pepper_previous=["old-pepper-" + "x" * 20],
        )
    )
    info = new.keys.report_leak(secret)
    assert info is not None and info.disabled


def test_the_cli_counts_keys_per_pepper(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from searchgate.cli.main import app

    services = build_services(Settings(data_dir=tmp_path, key_pepper="p" * 32))
    services.keys.create(SYSTEM, "one", ALL_SCOPES)
    services.db.dispose()
    result = CliRunner().invoke(
        app,
        ["keys", "peppers", "--json", "--data-dir", str(tmp_path)],
        env={"SEARCHGATE_KEY_PEPPER": "p" * 32},
    )
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["peppers"]
    assert rows == [{"pepperId": services.keys.pepper.id, "keys": 1, "role": "current"}]
