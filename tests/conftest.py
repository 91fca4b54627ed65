"""Fixtures: real SQLite and PostgreSQL databases, the app in-process, client keys."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from starlette.testclient import TestClient

from searchgate.config import Settings
from searchgate.keys.scopes import ALL_SCOPES
from searchgate.permissions import Actor
from searchgate.runtime import Runtime, Services, build_runtime, build_services
from searchgate.webapp import create_app
from tests import pg
from tests.keyhelp import SYSTEM
from tests.stores import bao_server, moto_server  # noqa: F401  (session fixtures: real stores)

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
    return rt.services.keys.create(SYSTEM, "test-all", ALL_SCOPES).secret


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


# --- Command Center accounts ---------------------------------------------------------

PASSWORD = "correct horse battery staple"


class ManualClock:
    """A clock the test moves: lifetimes are tested without sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def accounts(settings: Settings, clock: ManualClock) -> Iterator[Services]:
    """Services on a fresh database whose time is ``clock``."""
    svc = build_services(settings, clock=clock)
    yield svc
    svc.db.dispose()


def make_user(
    services: Services, email: str, role: str = "viewer", password: str = PASSWORD
) -> str:
    """Creates a user as the CLI operator would; returns the user id."""
    return services.users.create(Actor.system(), email, password, role).id


def enrol(services: Services, secret: str) -> tuple[str, str]:
    """Enrols the signed-in user behind ``secret`` in TOTP. Returns the session's new
    cookie value (enrolment changes privileges, so the id changes) and the TOTP seed.
    The code used is spent: move the clock 30 s before using TOTP again."""
    actor = services.sessions.authenticate(secret).actor
    enrolment = services.mfa.begin_enrolment(actor)
    code = pyotp.TOTP(enrolment.secret).at(services.audit.clock())
    services.mfa.confirm_enrolment(actor, code)
    rotated = services.sessions.authenticate(secret).new_secret
    assert rotated is not None
    return rotated, enrolment.secret


def sign_in(services: Services, email: str, password: str = PASSWORD) -> str:
    """A full session for ``email`` (TOTP too when enrolled); returns the cookie value."""
    result = services.auth.sign_in(email, password, ip="198.51.100.7", user_agent="pytest")
    assert not result.mfa_required, "use sign_in_mfa for enrolled users"
    return result.secret


@pytest.fixture
def admin_token(rt: Runtime) -> str:
    """A personal API token (every permission a token may carry) of an admin."""
    services = rt.services
    user_id = make_user(services, "root@example.com", "admin")
    return services.tokens.create(Actor.system(), "tests", user_id=user_id).secret
