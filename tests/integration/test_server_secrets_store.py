"""Server secrets in the secret store: `searchgate secrets push` puts a running node's
there once (never printing them), and a node with an empty data directory reads them
at start-up and serves the first node's keys. Against a real OpenBao, moto's Secrets
Manager and the file store."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from searchgate.audit.models import AuditEventRow
from searchgate.config import Settings
from searchgate.keys.scopes import ALL_SCOPES
from searchgate.runtime import build_services
from searchgate.secretstores import FieldStore, StoreConflict, StoreNotFound, open_store
from searchgate.server_secrets import ServerSecretsError
from tests.keyhelp import SYSTEM
from tests.stores import BaoServer, MotoServer, unique_path

EXIT_CONFIG = 78


@pytest.fixture(params=["vault", "aws", "file"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(kind, path, environment for the store's credentials), set in this process too."""
    env: dict[str, str] = {}
    if request.param == "vault":
        bao: BaoServer = request.getfixturevalue("bao_server")
        env = bao.env
        path = "secret/" + unique_path()
    elif request.param == "aws":
        moto: MotoServer = request.getfixturevalue("moto_server")
        env = moto.env
        path = unique_path()
    else:
        path = str(tmp_path / "shared" / "server-secrets.json")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield request.param, path, env


def node(tmp_path: Path, name: str, database_url: str, **extra: object) -> Settings:
    return Settings(
        data_dir=tmp_path / name,
        database_url=database_url,
        index_writer_heap_bytes=50_000_000,
        index_writer_threads=1,
        **extra,  # type: ignore[arg-type]
    )


def push(
    tmp_path: Path, name: str, database_url: str, kind: str, path: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SEARCHGATE_")}
    environ.update(env)
    environ["SEARCHGATE_DATA_DIR"] = str(tmp_path / name)
    environ["SEARCHGATE_DATABASE_URL"] = database_url
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "searchgate.cli.main",
            "secrets",
            "push",
            "--store",
            kind,
            "--path",
            path,
        ],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_node_reads_the_secrets_pushed_by_the_first_one(
    tmp_path: Path, store: tuple[str, str, dict[str, str]]
) -> None:
    kind, path, env = store
    database_url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = build_services(node(tmp_path, "a", database_url))
    secret = first.keys.create(SYSTEM, "storefront", ALL_SCOPES).secret
    first.db.dispose()
    files = {f.name: f.read_text().strip() for f in (tmp_path / "a" / "secrets").iterdir()}

    done = push(tmp_path, "a", database_url, kind, path, env)
    assert done.returncode == 0, done.stderr
    for value in files.values():
        assert value not in done.stdout + done.stderr
    assert "stored this node's server secrets" in done.stderr

    fields_store = open_store(kind, path)
    assert isinstance(fields_store, FieldStore)
    held = fields_store.read_fields()
    assert dict(held.values) == {
        "key_pepper": files["key-pepper"],
        "audit_key": files["audit-key"],
    }
    assert files["key-pepper"] not in repr(held)

    # Once only: a second push finds them there and changes nothing.
    again = push(tmp_path, "a", database_url, kind, path, env)
    assert again.returncode == 0, again.stderr
    assert "already" in again.stderr
    assert fields_store.read_fields().version == held.version
    with pytest.raises(StoreConflict):
        fields_store.create_fields({"key_pepper": "x" * 32, "audit_key": "y" * 32})

    second = build_services(
        node(
            tmp_path,
            "b",
            database_url,
            server_secrets_store_kind=kind,
            server_secrets_store_path=path,
        )
    )
    try:
        assert second.keys.verify(secret) is not None
        assert second.audit.verify().ok
        with second.db.read() as s:
            actions = list(s.scalars(select(AuditEventRow.action)))
        assert actions.count("server:secrets:push") == 1
    finally:
        second.db.dispose()
    assert list((tmp_path / "b" / "secrets").glob("*")) == []


def test_an_empty_store_is_refused_with_how_to_fill_it(
    tmp_path: Path, store: tuple[str, str, dict[str, str]]
) -> None:
    kind, path, _env = store
    database_url = f"sqlite:///{tmp_path / 'shared.db'}"
    settings = node(
        tmp_path,
        "b",
        database_url,
        server_secrets_store_kind=kind,
        server_secrets_store_path=path,
    )
    with pytest.raises(ServerSecretsError, match="holds nothing yet") as caught:
        build_services(settings)
    assert "searchgate secrets push" in caught.value.message
    assert list((tmp_path / "b" / "secrets").glob("*")) == []
    with pytest.raises(StoreNotFound):
        fields_store = open_store(kind, path)
        assert isinstance(fields_store, FieldStore)
        fields_store.read_fields()


def test_a_push_from_a_node_with_other_secrets_is_refused(
    tmp_path: Path, store: tuple[str, str, dict[str, str]]
) -> None:
    kind, path, env = store
    first_db = f"sqlite:///{tmp_path / 'first.db'}"
    build_services(node(tmp_path, "a", first_db)).db.dispose()
    assert push(tmp_path, "a", first_db, kind, path, env).returncode == 0
    # Another deployment's node, pointed at the same path by mistake.
    other_db = f"sqlite:///{tmp_path / 'other.db'}"
    build_services(node(tmp_path, "z", other_db)).db.dispose()
    done = push(tmp_path, "z", other_db, kind, path, env)
    assert done.returncode == 1, done.stderr
    assert "holds other server secrets" in done.stderr and "nothing written" in done.stderr


def test_a_pepper_rotation_through_the_store(
    tmp_path: Path, store: tuple[str, str, dict[str, str]]
) -> None:
    kind, path, _env = store
    database_url = f"sqlite:///{tmp_path / 'shared.db'}"
    old, new, audit = "old-pepper-" + "o" * 24, "new-pepper-" + "n" * 24, "audit-" + "a" * 30
    first = build_services(node(tmp_path, "a", database_url, key_pepper=old, audit_key=audit))
    secret = first.keys.create(SYSTEM, "storefront", ALL_SCOPES).secret
    first.db.dispose()
    fields_store = open_store(kind, path)
    assert isinstance(fields_store, FieldStore)
    fields_store.create_fields({"key_pepper": new, "key_pepper_previous": old, "audit_key": audit})
    rotated = build_services(
        node(
            tmp_path,
            "b",
            database_url,
            server_secrets_store_kind=kind,
            server_secrets_store_path=path,
        )
    )
    try:
        assert rotated.keys.verify(secret) is not None  # and moved to the new pepper
        assert rotated.audit.verify().ok
    finally:
        rotated.db.dispose()
    with pytest.raises(ServerSecretsError, match="key pepper"):
        build_services(node(tmp_path, "c", database_url, key_pepper=old, audit_key=audit))
