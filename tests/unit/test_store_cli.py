"""``searchgate store ...`` on a real file store, and the demo key kept in one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from searchgate.cli.main import _demo_key, app, demo_store_path
from searchgate.config import Settings
from searchgate.keys.format import generate_key
from searchgate.runtime import Services
from searchgate.secretstores import open_store
from tests.keyhelp import SYSTEM

runner = CliRunner()


def store(path: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(
        app, ["store", args[0], "--store", "file", "--path", str(path), *args[1:]], input=stdin
    )
    return result.exit_code, result.stdout, result.stderr


def test_write_reads_stdin_and_read_prints_only_the_key(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    assert store(path, "read")[0] == 1  # nothing stored yet: "no", not an error
    first, second = generate_key(), generate_key()
    assert store(path, "write", stdin=first + "\n")[0] == 0
    code, out, _ = store(path, "read")
    assert code == 0 and out == first + "\n"
    assert store(path, "write", stdin=second + "\n")[0] == 0
    code, out, _ = store(path, "version", "--json")
    assert code == 0 and json.loads(out)["version"] == "2"
    assert first not in out and second not in out
    assert store(path, "read")[1] == second + "\n"
    assert path.stat().st_mode & 0o777 == 0o600


def test_write_with_a_stale_expected_version_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    first = generate_key()
    store(path, "write", stdin=first)
    store(path, "write", stdin=generate_key())
    code, _, err = store(path, "write", "--expected-version", "1", stdin=generate_key())
    assert code == 2
    assert first not in err
    assert open_store("file", str(path)).read().version == "2"


def test_render_writes_a_private_config_file_and_follows_the_store(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    template = tmp_path / "upload.yaml.j2"
    template.write_text("collection: shop\nclientKey: {{ client_key }}\n")
    out = tmp_path / "conf" / "upload.yaml"
    first, second = generate_key(), generate_key()
    store(path, "write", stdin=first)
    code, _, err = store(path, "render", "--template", str(template), "--out", str(out))
    assert code == 0, err
    assert out.read_text() == f"collection: shop\nclientKey: {first}\n"
    assert out.stat().st_mode & 0o777 == 0o600
    store(path, "write", stdin=second)
    store(path, "render", "--template", str(template), "--out", str(out))
    assert second in out.read_text() and first not in out.read_text()


def test_render_refuses_a_template_with_an_unknown_variable(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    store(path, "write", stdin=generate_key())
    template = tmp_path / "t.j2"
    template.write_text("{{ clientkey }}")
    out = tmp_path / "out"
    code, _, _ = store(path, "render", "--template", str(template), "--out", str(out))
    assert code == 2 and not out.exists()


def test_the_demo_key_lives_in_the_file_store_and_is_replaced_when_deleted(
    services: Services, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    _demo_key(services, settings)
    secrets_store = open_store("file", str(demo_store_path(settings)))
    first = secrets_store.read()
    info = services.keys.verify(first.value)
    assert info is not None and info.primary
    _demo_key(services, settings)
    assert secrets_store.read().version == first.version  # kept, not re-issued
    services.keys.delete(SYSTEM, info.id, info.name, force=True)
    _demo_key(services, settings)
    second = secrets_store.read()
    assert second.value != first.value and int(second.version) > int(first.version)
    replacement = services.keys.verify(second.value)
    assert replacement is not None and replacement.name == "demo-2"
    # The previous version stays readable, so a mistake is one restore away.
    assert secrets_store.read_version(first.version).value == first.value
