"""``searchgate store ...`` on a real file store, and the demo key kept in one."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from searchgate.cli.main import _demo_key, app, demo_store_path
from searchgate.cli.render import ERROR_BACKOFF_CAP_SECONDS, watch_store
from searchgate.cli.store import _command, _watch_interval
from searchgate.config import Settings
from searchgate.runtime import Services
from searchgate.secretstores import open_store
from searchgate_client.browser_tokens import derive_keypair, verify_browser_token
from searchgate_client.keyformat import check_key_format, generate_key
from tests.keyhelp import SYSTEM
from tests.stores import FaultyServer

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


def test_write_refuses_what_is_not_a_key_and_stores_nothing(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    key = generate_key()
    # A mistyped key: one character of the random part changed, checksum kept.
    typo = key[:4] + ("B" if key[4] != "B" else "C") + key[5:]
    for value in ("not-a-key", "sgk_" + "A" * 38, key[:-1] + "!", key + "x", typo):
        code, out, err = store(path, "write", stdin=value + "\n")
        assert code == 2, err
        assert "not a Searchgate client key" in err
        assert value not in out and value not in err
        assert not path.exists()


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


# --- render --watch: the interval's floor, and backoff while the store fails -----------


class VirtualTime:
    """Stands in for time.sleep: records each wait and ends the loop after ``budget``
    seconds of (virtual) waiting."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.now = 0.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.waits.append(seconds)
        self.now += seconds
        if self.now >= self.budget:
            raise StopWatching


class StopWatching(Exception):
    pass


def test_watch_backs_off_while_the_store_fails(tmp_path: Path) -> None:
    # A real Vault API that refuses every read (403 is final: no retries inside the
    # adapter), so every read of the watch loop is one request counted by the server.
    with FaultyServer([403] * 10_000) as vault:
        failing = open_store(
            "vault",
            "secret/searchgate/client-key",
            env={"VAULT_ADDR": vault.url, "VAULT_TOKEN": "t"},
        )
        clock = VirtualTime(budget=3600.0)
        with pytest.raises(StopWatching):
            watch_store(failing, lambda _v, _ver: None, 0.0, sleep=clock.sleep, rand=lambda: 0.5)
        # An hour of failures: doublings up to the cap, then one read per capped wait;
        # without a floor and backoff it was hundreds of reads a second.
        assert vault.requests == len(clock.waits)
        assert vault.requests <= 3600 / (ERROR_BACKOFF_CAP_SECONDS / 2) + 20
        assert max(clock.waits) <= ERROR_BACKOFF_CAP_SECONDS
        assert clock.waits == sorted(clock.waits)  # it only grows while failures go on


def test_watch_jitters_its_retries_and_resets_after_a_good_read(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    path.write_text("not json")
    failing = open_store("file", str(path))
    draws = iter([0.0, 1.0] * 50)
    clock = VirtualTime(budget=60.0)
    with pytest.raises(StopWatching):
        watch_store(
            failing, lambda _v, _ver: None, 5.0, sleep=clock.sleep, rand=lambda: next(draws)
        )
    # Half, then all of the doubled wait: runs that fail together do not retry together.
    assert clock.waits[:2] == [5.0, 20.0]

    path.unlink()
    key = generate_key()
    store(path, "write", stdin=key)
    seen: list[str] = []
    clock = VirtualTime(budget=20.0)
    with pytest.raises(StopWatching):
        watch_store(
            open_store("file", str(path)),
            lambda value, _ver: seen.append(value),
            5.0,
            sleep=clock.sleep,
            rand=lambda: 0.5,
        )
    assert seen == [key] and clock.waits == [5.0] * 4  # rendered once, read every 5 s


@pytest.mark.parametrize("watch", ["0", "-1", "0.1", "nan"])
def test_render_refuses_a_watch_interval_below_the_floor(tmp_path: Path, watch: str) -> None:
    path = tmp_path / "key.json"
    store(path, "write", stdin=generate_key())
    template = tmp_path / "t.j2"
    template.write_text("{{ client_key }}")
    out = tmp_path / "out"
    code, _, err = store(
        path, "render", "--template", str(template), "--out", str(out), "--watch", watch
    )
    assert code == 2 and "--watch" in err and "Traceback" not in err
    assert not out.exists()


# --- render --exec, and browser tokens in templates ------------------------------------

COUNT_RUNS = (
    "import pathlib, sys; p = pathlib.Path(sys.argv[1]); "
    "p.write_text(p.read_text() + 'x' if p.exists() else 'x'); sys.exit(int(sys.argv[2]))"
)


def exec_command(marker: Path, exit_code: int = 0) -> str:
    return shlex.join([sys.executable, "-c", COUNT_RUNS, str(marker), str(exit_code)])


def test_exec_runs_after_each_change_of_the_rendered_file(tmp_path: Path) -> None:
    path, template, out, marker = (tmp_path / n for n in ("key.json", "t.j2", "out", "runs"))
    template.write_text("clientKey: {{ client_key }}\n")
    store(path, "write", stdin=generate_key())
    args = ("render", "--template", str(template), "--out", str(out), "--exec")
    assert store(path, *args, exec_command(marker))[0] == 0
    assert marker.read_text() == "x"
    assert store(path, *args, exec_command(marker))[0] == 0  # same content: not run
    assert marker.read_text() == "x"
    store(path, "write", stdin=generate_key())
    assert store(path, *args, exec_command(marker))[0] == 0
    assert marker.read_text() == "xx"

    store(path, "write", stdin=generate_key())
    code, _, err = store(path, *args, exec_command(marker, 7))
    assert code == 3 and "exited with 7" in err
    assert marker.read_text() == "xxx"


def test_exec_failures_do_not_stop_a_watch(tmp_path: Path) -> None:
    path, template, out, marker = (tmp_path / n for n in ("key.json", "t.j2", "out", "runs"))
    template.write_text("{{ client_key }}")
    first, second = generate_key(), generate_key()
    store(path, "write", stdin=first)
    log = tmp_path / "stderr"

    def reports() -> int:
        return log.read_text().count("exited with 1")

    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "searchgate.cli.main", "store", "render"),
                *("--store", "file", "--path", str(path)),
                *("--template", str(template), "--out", str(out)),
                *("--watch", "0.5", "--exec", exec_command(marker, 1)),
            ],
            stderr=stderr,
        )
    try:
        wait_until(lambda: reports() == 1)
        store(path, "write", stdin=second)
        wait_until(lambda: reports() == 2)
        # Still watching after two failed commands, each run once per change.
        assert proc.poll() is None
        assert out.read_text() == second and marker.read_text() == "xx"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert first not in log.read_text() and second not in log.read_text()


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_templates_derive_browser_tokens_from_the_key(tmp_path: Path) -> None:
    path, template, out = (tmp_path / n for n in ("key.json", "sayt.js.j2", "sayt.js"))
    key = generate_key()
    store(path, "write", stdin=key)
    template.write_text(
        'sayt.configure({token: "{{ browser_token(collection="shop", '
        'origin="https://shop.example", ttl="30m", scope="sayt") }}"});\n'
    )
    code, _, err = store(path, "render", "--template", str(template), "--out", str(out))
    assert code == 0, err
    text = out.read_text()
    assert key not in text
    token = text.split('"')[1]
    _private, public = derive_keypair(key)
    claims = verify_browser_token(token, lambda _kid: public)
    assert claims.scopes == {"sayt"} and claims.collections == {"shop"}
    assert claims.origins == {"https://shop.example"}
    assert claims.expires_at - claims.issued_at == timedelta(minutes=30)


def test_a_bad_browser_token_request_is_a_template_error(tmp_path: Path) -> None:
    path, template, out = (tmp_path / n for n in ("key.json", "t.j2", "out"))
    key = generate_key()
    store(path, "write", stdin=key)
    template.write_text('{{ browser_token(collection="shop", origin="shop.example") }}')
    code, _, err = store(path, "render", "--template", str(template), "--out", str(out))
    assert code == 2 and "origin" in err and key not in err and not out.exists()


def test_a_watch_renders_browser_tokens_again_before_they_expire(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    store(path, "write", stdin=generate_key())
    renders: list[float] = []
    clock = VirtualTime(budget=3600.0)

    def on_change(_value: str, _version: str) -> float | None:
        renders.append(clock.now)
        return 600.0  # what a template with a 20-minute token asks for

    with pytest.raises(StopWatching):
        watch_store(
            open_store("file", str(path)),
            on_change,
            60.0,
            sleep=clock.sleep,
            rand=lambda: 0.5,
            monotonic=lambda: clock.now,
        )
    assert renders == [0.0, 600.0, 1200.0, 1800.0, 2400.0, 3000.0]


# --- any input: a clear answer, never a traceback ----------------------------------------


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(line=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_write_answers_any_stdin_with_a_stored_key_or_exit_2(tmp_path: Path, line: str) -> None:
    path = tmp_path / f"{abs(hash(line))}.json"
    code, out, err = store(path, "write", stdin=line + "\n")
    value = line.split("\n")[0].strip()
    if check_key_format(value) is None:
        assert code == 0, err
    else:
        assert code == 2 and not path.exists()
    assert "Traceback" not in out + err


@settings(max_examples=300, deadline=None)
@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_any_watch_interval_is_taken_or_refused_as_bad_input(value: float) -> None:
    try:
        assert _watch_interval(value) == value and 0.5 <= value <= 86_400
    except typer.BadParameter as exc:
        assert "--watch" in str(exc)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60))
def test_any_exec_command_is_split_or_refused_as_bad_input(text: str) -> None:
    try:
        argv = _command(text)
        assert argv and all(isinstance(a, str) for a in argv)
    except typer.BadParameter as exc:
        assert "--exec" in str(exc)
