"""Several nodes on one PostgreSQL database, each with its own data directory, as real
processes: a node with other server secrets refuses to start with one line and
writes nothing; one with the secrets copied serves the first node's keys; CLI
commands obey the same rule."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from searchgate.audit.models import AuditEventRow
from searchgate.db import Database
from searchgate.server_secrets import ServerSecretRow
from tests import pg
from tests.e2e.server import ServerProcess, cli_env, create_key, run_cli

pytestmark = pytest.mark.e2e

EXIT_CONFIG = 78


@pytest.fixture
def database_url(pg_server: pg.PostgresServer) -> str:
    return pg_server.create_database(f"sg_hosts_{random.randrange(10**9)}")


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for srv in started:
        srv.stop()


def snapshot(database_url: str) -> tuple[int, dict[str, str]]:
    """The change log's length and the recorded fingerprints."""
    db = Database(database_url)
    try:
        with db.read() as s:
            events = int(s.scalar(select(func.count()).select_from(AuditEventRow)) or 0)
            record = {r.name: r.fingerprint for r in s.scalars(select(ServerSecretRow))}
        return events, record
    finally:
        db.dispose()


def cli(data_dir: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "searchgate.cli.main", *args],
        env=cli_env(data_dir, database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def the_line(output: str) -> str:
    """The refusal: one line, no traceback."""
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error: this node's server secrets are not the ones"), output
    return lines[0]


@pytest.mark.timeout(180)
def test_a_second_node_needs_the_first_node_s_secrets(
    tmp_path: Path, database_url: str, servers: list[ServerProcess]
) -> None:
    first = ServerProcess(tmp_path / "a" / "data", database_url)
    servers.append(first)
    first.start()
    first.wait_ready()
    key = create_key(first.data_dir, database_url)
    search = {"Authorization": f"Bearer {key}"}
    assert first.get("/api/v1/collections", headers=search).status_code == 200
    before = snapshot(database_url)
    secrets_a = first.data_dir / "secrets"

    # Its own data directory and nothing else: it must not make secrets of its own.
    stranger = ServerProcess(tmp_path / "b" / "data", database_url)
    servers.append(stranger)
    stranger.start()
    assert stranger.proc is not None
    assert stranger.proc.wait(timeout=60) == EXIT_CONFIG
    line = the_line(stranger.log_path.read_text())
    assert "key pepper: none on this node" in line and "audit key: none on this node" in line
    for fingerprint in before[1].values():
        assert fingerprint in line
    assert "SEARCHGATE_KEY_PEPPER" in line and "searchgate secrets push" in line
    assert list((stranger.data_dir / "secrets").glob("*")) == []
    assert snapshot(database_url) == before

    # Its own audit key (the pepper copied): named alone, with both fingerprints.
    other = tmp_path / "c" / "data"
    (other / "secrets").mkdir(parents=True)
    shutil.copy(secrets_a / "key-pepper", other / "secrets" / "key-pepper")
    (other / "secrets" / "audit-key").write_text("f" * 64)
    odd = ServerProcess(other, database_url)
    servers.append(odd)
    odd.start()
    assert odd.proc is not None
    assert odd.proc.wait(timeout=60) == EXIT_CONFIG
    line = the_line(odd.log_path.read_text())
    assert "audit key " in line and "key pepper" not in line.split(" nothing was written")[0]
    assert before[1]["audit_key"] in line
    assert "f" * 64 not in line
    assert snapshot(database_url) == before

    # A command on that host obeys the same rule: no user, no broken chain.
    done = cli(
        other,
        database_url,
        "users",
        "create",
        "--email",
        "c@example.com",
        "--role",
        "viewer",
        "--password-stdin",
    )
    assert done.returncode == EXIT_CONFIG, done.stderr
    the_line(done.stderr)
    assert snapshot(database_url) == before
    verified = cli(first.data_dir, database_url, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # The secrets folder copied: the second node serves the first node's keys.
    copied = tmp_path / "d" / "data"
    copied.mkdir(parents=True)
    shutil.copytree(secrets_a, copied / "secrets")
    second = ServerProcess(copied, database_url)
    servers.append(second)
    second.start()
    second.wait_ready()
    r = second.get("/api/v1/collections", headers=search)
    assert r.status_code == 200, r.text
    run_cli(
        copied,
        database_url,
        "users",
        "create",
        "--email",
        "d@example.com",
        "--role",
        "viewer",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    verified = cli(first.data_dir, database_url, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
