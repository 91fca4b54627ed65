"""``searchgate keys ...`` driven through typer's CliRunner on a temporary data directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from searchgate.cli.main import app
from searchgate.config import Settings
from searchgate.keys.format import generate_key
from searchgate.runtime import build_services

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Every command must honour --data-dir, whatever the environment says.
    monkeypatch.delenv("SEARCHGATE_DATABASE_URL", raising=False)
    monkeypatch.setenv("SEARCHGATE_DATA_DIR", str(tmp_path / "elsewhere"))
    return tmp_path / "data"


def keys(data_dir: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["keys", *args, "--data-dir", str(data_dir)], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def create(data_dir: Path, name: str) -> dict[str, str]:
    code, out, err = keys(data_dir, "create", "--name", name, "--json")
    assert code == 0, err
    created: dict[str, str] = json.loads(out)
    return created


def test_create_prints_the_key_once_and_only_the_key_on_stdout(data_dir: Path) -> None:
    code, out, err = keys(data_dir, "create", "--name", "storefront")
    assert code == 0, err
    secret = out.strip()
    assert out == secret + "\n"  # `KEY=$(searchgate keys create ...)` gets just the key
    assert "shown this once" in err and "storefront" in err
    services = build_services(Settings(data_dir=data_dir))
    info = services.keys.verify(secret)
    assert info is not None and info.name == "storefront" and info.usable
    assert (data_dir / "searchgate.db").is_file()
    assert not (data_dir.parent / "elsewhere").exists()  # --data-dir wins over the env


def test_create_json_carries_the_key_and_its_metadata(data_dir: Path) -> None:
    created = create(data_dir, "ci")
    assert set(created) == {"id", "name", "prefix", "scopes", "createdAt", "state", "key"}
    assert created["key"].startswith(created["prefix"]) and created["state"] == "active"
    assert created["createdAt"].endswith("+00:00")
    assert created["scopes"] == sorted(
        ["search", "sayt", "records:write", "collections:write", "collections:delete"]
    )
    code, out, _ = keys(data_dir, "create", "--name", "sayt", "--scope", "sayt", "--json")
    assert code == 0 and json.loads(out)["scopes"] == ["sayt"]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--name", "x", "--scope", "admin"], "scope"),
        (["--name", "   "], "name"),
        (["--name", "n" * 129], "name"),
        (["--name", "key_0123456789abcdef"], "name"),
    ],
)
def test_create_refuses_bad_input_with_exit_2(data_dir: Path, args: list[str], field: str) -> None:
    code, out, _ = keys(data_dir, "create", *args, "--json")
    assert code == 2
    assert json.loads(out)["error"]["field"] == field


def test_names_are_unique_even_after_deletion(data_dir: Path) -> None:
    create(data_dir, "dup")
    code, out, _ = keys(data_dir, "create", "--name", "dup", "--json")
    assert code == 2 and json.loads(out)["error"]["code"] == "conflict"
    assert keys(data_dir, "delete", "dup", "--yes")[0] == 0
    code, _, err = keys(data_dir, "create", "--name", "dup")
    assert code == 2 and "deleted" in err


def test_list_never_prints_a_secret(data_dir: Path) -> None:
    a, b = create(data_dir, "alpha"), create(data_dir, "beta")
    code, out, _ = keys(data_dir, "list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [k["name"] for k in listed] == ["alpha", "beta"]
    assert all("key" not in k for k in listed)
    assert listed[0]["id"] == a["id"] and listed[0]["prefix"] == a["key"][:12]
    code, table, err = keys(data_dir, "list")
    assert code == 0 and "alpha" in table and b["id"] in table
    for secret in (a["key"], b["key"]):
        for text in (out, table, err):
            assert secret not in text and secret[12:20] not in text


def test_delete_by_id_or_name_asks_first_unless_yes(data_dir: Path) -> None:
    a, b = create(data_dir, "alpha"), create(data_dir, "beta")
    code, out, err = keys(data_dir, "delete", "alpha", stdin="n\n")
    assert code == 1 and "Delete key 'alpha'" in err and "not deleted" in err
    code, out, err = keys(data_dir, "delete", "alpha", "--json", stdin="y\n")
    assert code == 0 and "Delete key 'alpha'" in err  # the prompt goes to stderr
    # CliRunner echoes the typed answer on stdout (a terminal echoes it itself).
    assert json.loads(out[out.index("{") :])["state"] == "deleted"
    code, out, _ = keys(data_dir, "delete", b["id"], "--yes", "--json")
    assert code == 0 and json.loads(out)["name"] == "beta"
    services = build_services(Settings(data_dir=data_dir))
    for secret in (a["key"], b["key"]):
        info = services.keys.verify(secret)
        assert info is not None and info.deleted
    assert json.loads(keys(data_dir, "list", "--json")[1]) == []
    listed = json.loads(keys(data_dir, "list", "--all", "--json")[1])
    assert {k["state"] for k in listed} == {"deleted"}


def test_deleting_an_unknown_key_exits_1(data_dir: Path) -> None:
    code, out, _ = keys(data_dir, "delete", "nobody", "--yes", "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "not_found"
    code, _, err = keys(data_dir, "delete", "nobody", "--yes")
    assert code == 1 and "nobody" in err


def test_check_exit_codes(data_dir: Path) -> None:
    secret = create(data_dir, "checked")["key"]
    result = runner.invoke(app, ["keys", "check", secret])
    assert result.exit_code == 0 and "checksum matches" in result.stderr
    tampered = secret[:-1] + ("x" if secret[-1] != "x" else "y")
    result = runner.invoke(app, ["keys", "check", tampered, "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "valid": False,
        "reason": "checksum does not match (mistyped or not a Searchgate key)",
        "id": None,
    }
    assert runner.invoke(app, ["keys", "check", "hello"]).exit_code == 1
    # From stdin, so that the key stays out of shell history and the process list.
    assert runner.invoke(app, ["keys", "check", "-"], input=secret + "\n").exit_code == 0
    # --known: also an active key of this deployment.
    assert keys(data_dir, "check", secret, "--known")[0] == 0
    code, out, _ = keys(data_dir, "check", generate_key(), "--known", "--json")
    assert code == 1 and "not a key of this deployment" in json.loads(out)["reason"]
    assert keys(data_dir, "delete", "checked", "--yes")[0] == 0
    code, out, _ = keys(data_dir, "check", secret, "--known", "--json")
    assert code == 1 and "deleted" in json.loads(out)["reason"]


@pytest.mark.parametrize(
    "command",
    [[], ["keys"], ["keys", "create"], ["keys", "list"], ["keys", "delete"], ["keys", "check"]],
)
def test_every_keys_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.stdout and "--help" in result.stdout
