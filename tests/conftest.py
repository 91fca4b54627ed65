"""Fixtures: real SQLite and PostgreSQL databases, the app in-process, client keys."""

from __future__ import annotations

import itertools
import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from starlette.testclient import TestClient

from searchgate.config import Settings
from searchgate.keys.scopes import ALL_SCOPES
from searchgate.migrations import upgrade
from searchgate.permissions import Actor
from searchgate.runtime import Runtime, Services, build_runtime, build_services
from searchgate.webapp import create_app
from tests import pg
from tests.keyhelp import SYSTEM
from tests.stores import bao_server, moto_server  # noqa: F401  (session fixtures: real stores)

_db_counter = itertools.count()

# The tier of each folder (docs/testing.md): what its tests touch.
TIERS = {
    "unit": "unit",
    "database": "database",
    "functional": "database",
    "integration": "integration",
    "e2e": "e2e",
    "browser": "browser",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(tests_dir):
            tier = TIERS.get(item.path.relative_to(tests_dir).parts[0])
            if tier is not None:
                item.add_marker(tier)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With pytest-xdist (``-n N``): each test is a unit of work for any worker, except
    that the end-to-end tests run one after another on one worker (two multi-process
    servers side by side on a small machine would miss their time bounds) and a browser
    module's tests stay with the server the module starts. The largest unit (the
    end-to-end tests) is handed out first."""
    if config.getvalue("dist") not in ("load", "loadgroup"):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class TierScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith("tests/e2e/"):
                return "tests/e2e"
            if nodeid.startswith("tests/browser/"):
                return nodeid.split("::", 1)[0]
            return nodeid

    return TierScheduling(config, log)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg.PostgresServer]:
    if not pg.available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL 15 is not installed; scripts/system-deps installs it")
        pytest.skip("PostgreSQL 15 is not installed (scripts/system-deps installs it)")
    with pg.running() as server:
        yield server


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per test process: each test gets a copy, which takes
    milliseconds where running every migration takes a tenth of a second or more."""
    path = tmp_path_factory.mktemp("template") / "searchgate.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template(pg_server: pg.PostgresServer) -> str:
    """A PostgreSQL database migrated once per test process, copied with
    ``CREATE DATABASE ... TEMPLATE`` for each test."""
    name = f"sg_template_{os.getpid()}"
    upgrade(pg_server.create_database(name))
    return name


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every storage test runs on both databases, each a fresh copy of a migrated
    template (the code under test still runs ``upgrade``, which finds nothing to do).
    A PostgreSQL copy is dropped after its test: the server keeps its data in memory."""
    if request.param == "sqlite":
        path = tmp_path / "searchgate.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    server: pg.PostgresServer = request.getfixturevalue("pg_server")
    template: str = request.getfixturevalue("pg_template")
    name = f"sg_test_{os.getpid()}_{next(_db_counter)}"
    yield server.create_database(name, template)
    server.drop_database(name)


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
def app_clock(request: pytest.FixtureRequest) -> ManualClock:
    """The in-process app's time in a test marked ``manual_clock``: it stands still
    until the test moves it. It starts at the present, so TOTP codes the test makes
    from the real time are accepted. ``manual_clock(ticking=True)``: real time that the
    test moves forward, for an app whose own runs need time to pass (a rotation's quiet
    and probation periods) while the test skips a long wait (a lapsing lease)."""
    marker = request.node.get_closest_marker("manual_clock")
    if marker is not None and marker.kwargs.get("ticking"):
        return TickingClock()
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def client(
    settings: Settings, app_clock: ManualClock, request: pytest.FixtureRequest
) -> Iterator[TestClient]:
    if request.node.get_closest_marker("manual_clock") is None:
        with TestClient(create_app(settings), raise_server_exceptions=False) as c:
            yield c
        return
    app = create_app(settings, clock=app_clock, monotonic=app_clock.monotonic)
    with TestClient(app, raise_server_exceptions=False) as c:
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
        self._start = self.now

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        """Seconds the clock has been moved: the in-process caches' time."""
        return (self.now - self._start).total_seconds()

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class TickingClock(ManualClock):
    """Real time, plus however far the test has moved it."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset.total_seconds()

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


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
