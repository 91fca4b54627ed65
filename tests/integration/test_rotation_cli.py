"""``searchgate rotate``'s handling of its options and of an unreachable server, and the
duration syntax it shares with the runner. (Whole rotations through the command run in
tests/e2e/test_rotation_resume.py.)"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from searchgate.cli.main import app
from searchgate.durations import format_duration, parse_duration
from searchgate.errors import InvalidInput
from searchgate.rotation.common import Timing
from tests.stores import closed_url

TOKEN = "sgp_" + "T" * 40


def rotate(tmp_path: Path, *args: str, token: str | None = TOKEN) -> tuple[int, str, str]:
    env = {"SEARCHGATE_ADMIN_TOKEN": token} if token else {"SEARCHGATE_ADMIN_TOKEN": ""}
    result = CliRunner().invoke(
        app,
        ["rotate", "--store", "file", "--path", str(tmp_path / "key.json"), *args],
        env=env,
    )
    return result.exit_code, result.stdout, result.stderr


def test_the_admin_token_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    code, _out, err = rotate(tmp_path, "--server", closed_url(), token=None)
    assert code == 2 and "SEARCHGATE_ADMIN_TOKEN" in err and "--token-file" in err

    missing = tmp_path / "nope"
    code, _out, err = rotate(tmp_path, "--server", closed_url(), "--token-file", str(missing))
    assert code == 2 and "cannot read --token-file" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--quiet", "15x"], "not a duration"),
        (["--probation", "8d"], "between 0 and 7 days"),
        (["--lease", "1s"], "--lease is 2s to 1h"),
        (["--if-older-than", "soon"], "not a duration"),
    ],
)
def test_bad_options_exit_2_with_a_message(tmp_path: Path, args: list[str], message: str) -> None:
    code, _out, err = rotate(tmp_path, "--server", "http://127.0.0.1:1", *args)
    assert code == 2, err
    assert message in " ".join(err.split())


def test_a_server_that_does_not_answer_stops_the_run_with_exit_1(tmp_path: Path) -> None:
    code, out, err = rotate(tmp_path, "--server", closed_url(), "--json")

    assert code == 1
    body = json.loads(out)
    assert body["exitCode"] == 1 and body["error"]["code"] == "server_unreachable"
    assert "re-run" in body["error"]["message"].lower()
    assert TOKEN not in out and TOKEN not in err


def test_durations() -> None:
    assert parse_duration("90d") == timedelta(days=90)
    assert parse_duration(" 15m ") == timedelta(minutes=15)
    assert parse_duration("1.5s") == timedelta(seconds=1.5)
    assert parse_duration("500ms") == timedelta(milliseconds=500)
    assert parse_duration("2w") == parse_duration("14d") == timedelta(days=14)
    assert parse_duration("15", bare_seconds=True) == timedelta(seconds=15)
    for bad in ("", "15", "m", "-1s", "1h30m", "²s", "1.5.5s", "9" * 13 + "s", "3700d"):
        with pytest.raises(InvalidInput):
            parse_duration(bad)
    assert [format_duration(timedelta(seconds=s)) for s in (0.4, 5, 90, 3600, 7200 + 60)] == [
        "0.4s",
        "5s",
        "1m30s",
        "1h",
        "2h01m",
    ]
    assert format_duration(timedelta(days=90)) == "90d"
    with pytest.raises(InvalidInput) as exc:
        Timing(quiet=timedelta(seconds=-1))
    assert exc.value.field == "quietSeconds"
    assert Timing.from_dict(Timing().to_dict()) == Timing()
