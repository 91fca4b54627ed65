"""Fixtures: real SQLite and PostgreSQL databases, the app in-process, client keys."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from searchgate.api.app import create_app
from searchgate.config import Settings
from searchgate.runtime import Runtime, Services, build_runtime, build_services
from tests import pg

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg.PostgresServer]:
    if not pg.available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL 15 is not installed; scripts/system-deps installs it")
        pytest.skip("PostgreSQL 15 is not installed (scripts/system-deps installs it)")
    with pg.running() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every storage test runs on both databases."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'searchgate.db'}"
    server: pg.PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database(f"sg_test_{os.getpid()}_{next(_db_counter)}")


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        key_pepper="test-pepper",
        index_writer_heap_bytes=50_000_000,
        index_writer_threads=1,
        indexer_poll_seconds=0.02,
    )


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    svc = build_services(settings)
    yield svc
    svc.db.dispose()


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = build_runtime(settings)
    rt.start()
    yield rt
    rt.stop()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def rt(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


@pytest.fixture
def key(rt: Runtime) -> str:
    return rt.services.keys.create("test-all").secret


@pytest.fixture
def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def load(
    client: TestClient,
    auth: dict[str, str],
    collection: str,
    records: list[dict[str, Any]],
    settings: dict[str, Any] | None = None,
) -> None:
    """Creates a collection (optionally with settings) and waits until it is searchable."""
    if settings is not None:
        r = client.put(f"/api/v1/collections/{collection}", json=settings, headers=auth)
        assert r.status_code in (200, 201), r.text
    r = client.post(
        f"/api/v1/collections/{collection}/records?wait=true", json=records, headers=auth
    )
    assert r.status_code == 200, r.text
    assert r.json()["invalidRecordCount"] == 0, r.text
