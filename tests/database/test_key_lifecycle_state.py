"""The client key lifecycle as a state machine over the real KeyService and database.

Hypothesis runs random sequences of create, new primary, make primary, disable,
enable, roll, time passing, delete and use against a model of what each key should
be, and after every step checks the invariants the issue promises: a deleted key never
authenticates again, a disabled key only after it is enabled, an expired key never,
a key never exceeds its creation scopes, exactly one primary key while any key lives,
and an audit chain that verifies.

Each example runs on a fresh database copied from one migrated template (migrating
takes about a second; copying a few milliseconds), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.engine import make_url

from searchgate.config import Settings
from searchgate.errors import Conflict, InvalidInput, NotFound
from searchgate.keys.info import KeyInfo
from searchgate.keys.scopes import ALL_SCOPES, Scope
from searchgate.keys.service import KeyInUse, KeyService
from searchgate.runtime import Services, build_services
from searchgate_client.keyformat import generate_key
from tests.conftest import ManualClock
from tests.keyhelp import SYSTEM

SCOPES = sorted(Scope, key=lambda s: s.value)
PEPPER = "lifecycle-pepper"
QUIET = timedelta(minutes=15)  # Settings().key_delete_quiet_minutes

MACHINE_SETTINGS = settings(
    max_examples=30,
    stateful_step_count=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

_copies = itertools.count()


def admits(info: KeyInfo | None, scope: Scope, now: datetime) -> bool:
    """The checks api/auth.py makes of a client key, in its order: known, not deleted,
    not disabled, not expired, holding the scope."""
    if info is None or info.deleted or info.disabled:
        return False
    if info.restrictions.expired(now):
        return False
    return scope in info.scopes


@dataclass
class Expected:
    id: str
    name: str
    secret: str = field(repr=False)  # kept out of failure reports
    scopes: frozenset[Scope]
    disabled: bool = False
    deleted: bool = False
    expires_at: datetime | None = None
    last_used: datetime | None = None
    retiring: bool = False

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def state(self, now: datetime) -> str:
        if self.deleted:
            return "deleted"
        if self.disabled:
            return "disabled"
        return "expired" if self.expired(now) else "active"

    def admits(self, scope: Scope, now: datetime) -> bool:
        return self.state(now) == "active" and scope in self.scopes


class Backend:
    """Fresh databases, all copies of one migrated template."""

    def __init__(self, template_url: str, data_template: Path, workdir: Path) -> None:
        self.template_url = template_url
        self.data_template = data_template
        self.workdir = workdir

    def fresh(self) -> tuple[Settings, Callable[[], None]]:
        n = next(_copies)
        data_dir = self.workdir / f"example-{n}"
        # The secrets (pepper file, audit key) come with the copy.
        shutil.copytree(self.data_template, data_dir)
        url = make_url(self.template_url)
        if url.get_backend_name() == "sqlite":
            assert url.database is not None
            db_file = data_dir / "copy.db"
            shutil.copyfile(url.database, db_file)
            copy_url = f"sqlite:///{db_file}"

            def drop() -> None:
                shutil.rmtree(data_dir, ignore_errors=True)

        else:
            name = f"{url.database}_c{n}"
            with self._admin() as conn:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{url.database}"')
            copy_url = url.set(database=name).render_as_string(hide_password=False)

            def drop() -> None:
                with self._admin() as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                shutil.rmtree(data_dir, ignore_errors=True)

        return Settings(data_dir=data_dir, database_url=copy_url, key_pepper=PEPPER), drop

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        url = make_url(self.template_url)
        return psycopg.connect(
            host=url.host, port=url.port, user=url.username, dbname="postgres", autocommit=True
        )


class KeyLifecycle(RuleBasedStateMachine):
    backend: Backend  # set by the test before the run

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        cfg, self._drop = self.backend.fresh()
        self.services: Services = build_services(cfg, migrate=False, clock=self.clock)
        self.keys: KeyService = self.services.keys
        # No cache: every verify reads the database, so the model is exact. The cache
        # has its own tests below.
        self.keys.cache_seconds = 0
        self.expected: dict[str, Expected] = {}
        self.primary: str | None = None
        self.names = itertools.count()

    def teardown(self) -> None:
        self.services.db.dispose()
        self._drop()

    # --- helpers -------------------------------------------------------------------

    def live(self) -> list[Expected]:
        return [k for k in self.expected.values() if not k.deleted]

    def gone(self) -> list[Expected]:
        return [k for k in self.expected.values() if k.deleted]

    def added(self, created_id: str, name: str, secret: str, scopes: frozenset[Scope]) -> None:
        assert created_id not in self.expected
        self.expected[created_id] = Expected(created_id, name, secret, scopes)

    def record_use(self, k: Expected) -> None:
        """What the usage flusher writes after a request: it makes the delete quiet
        period bite."""
        now = self.clock()
        with self.services.db.write() as s:
            self.keys.record_use(s, k.id, now, "203.0.113.9", "state-machine")
        k.last_used = now

    def becomes_primary(self, key_id: str) -> None:
        if self.primary is not None and self.primary != key_id:
            self.expected[self.primary].retiring = True
        self.primary = key_id
        self.expected[key_id].retiring = False

    # --- rules ---------------------------------------------------------------------

    @initialize(scopes=st.frozensets(st.sampled_from(SCOPES), min_size=1))
    def first_key(self, scopes: frozenset[Scope]) -> None:
        # Without a key, half the rules have nothing to act on; deleting every key
        # later still reaches the state without any.
        self.create(scopes, primary=False)

    @rule(
        scopes=st.frozensets(st.sampled_from(SCOPES), min_size=1),
        primary=st.booleans(),
    )
    def create(self, scopes: frozenset[Scope], primary: bool) -> None:
        name = f"key {next(self.names)}"
        before = self.primary
        created = self.keys.create(SYSTEM, name, scopes, primary=primary)
        assert created.info.scopes == scopes and created.info.name == name
        self.added(created.info.id, name, created.secret, scopes)
        if primary or before is None:
            assert created.info.primary
            assert (created.replaced.id if created.replaced else None) == before
            self.becomes_primary(created.info.id)
        else:
            assert not created.info.primary and created.replaced is None

    @rule()
    def new_primary(self) -> None:
        old = self.primary
        if old is None:
            with pytest.raises(NotFound):
                self.keys.new_primary(SYSTEM)
            return
        created = self.keys.new_primary(SYSTEM)
        assert created.replaced is not None and created.replaced.id == old
        # A copy of the primary's rights, never more.
        assert created.info.scopes == self.expected[old].scopes
        assert created.info.restrictions.expires_at is None
        self.added(created.info.id, created.info.name, created.secret, created.info.scopes)
        self.becomes_primary(created.info.id)

    @precondition(lambda self: bool(self.live()))
    @rule(data=st.data())
    def make_primary(self, data: st.DataObject) -> None:
        k = data.draw(st.sampled_from(self.live()), label="key")
        info = self.keys.make_primary(SYSTEM, k.id)
        assert info.primary
        self.becomes_primary(k.id)

    @precondition(lambda self: bool(self.live()))
    @rule(data=st.data(), by_name=st.booleans())
    def disable(self, data: st.DataObject, by_name: bool) -> None:
        k = data.draw(st.sampled_from(self.live()), label="key")
        info = self.keys.disable(SYSTEM, k.name if by_name else k.id, reason="state machine")
        assert info.disabled
        k.disabled = True

    @precondition(lambda self: bool(self.live()))
    @rule(data=st.data())
    def enable(self, data: st.DataObject) -> None:
        k = data.draw(st.sampled_from(self.live()), label="key")
        info = self.keys.enable(SYSTEM, k.id)
        assert not info.disabled
        k.disabled = False

    @precondition(lambda self: bool(self.live()))
    @rule(data=st.data(), seconds=st.integers(0, 2 * 3600))
    def roll(self, data: st.DataObject, seconds: int) -> None:
        k = data.draw(st.sampled_from(self.live()), label="key")
        was_primary = self.primary == k.id
        created = self.keys.roll(SYSTEM, k.id, timedelta(seconds=seconds))
        at = self.clock() + timedelta(seconds=seconds)
        # Rolling only ever brings the old key's end nearer.
        k.expires_at = at if k.expires_at is None else min(k.expires_at, at)
        k.retiring = True
        assert created.replaced is not None and created.replaced.id == k.id
        assert created.info.scopes == k.scopes
        assert created.info.restrictions.expires_at is None
        self.added(created.info.id, created.info.name, created.secret, created.info.scopes)
        assert created.info.primary == was_primary
        if was_primary:
            self.becomes_primary(created.info.id)

    # Steps under the 15 min delete quiet period as well as over it.
    @rule(minutes=st.integers(0, 40))
    def advance(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)

    @precondition(lambda self: bool(self.live()))
    @rule(
        data=st.data(),
        the_primary=st.booleans(),
        just_used=st.booleans(),
        force=st.booleans(),
    )
    def delete(self, data: st.DataObject, the_primary: bool, just_used: bool, force: bool) -> None:
        # The primary and recently used keys are the interesting targets (the service
        # refuses them); a uniform pick would rarely reach them.
        if the_primary and self.primary is not None:
            k = self.expected[self.primary]
        else:
            k = data.draw(st.sampled_from(self.live()), label="key")
        if just_used:
            self.record_use(k)
        now = self.clock()
        # A wrong confirmation is refused first, whatever else holds (and changes nothing:
        # the invariants run after this step too).
        with pytest.raises(InvalidInput) as wrong:
            self.keys.delete(SYSTEM, k.id, k.name + " typo", force=True)
        assert wrong.value.field == "confirmName"
        in_use = k.last_used is not None and k.last_used >= now - QUIET
        others = [o for o in self.live() if o.id != k.id]
        if in_use and not force:
            with pytest.raises(KeyInUse):
                self.keys.delete(SYSTEM, k.id, k.name)
            return
        if self.primary == k.id and others:
            with pytest.raises(Conflict) as refused:
                self.keys.delete(SYSTEM, k.id, k.name, force=force)
            assert not isinstance(refused.value, KeyInUse)
            return
        tombstone = self.keys.delete(SYSTEM, k.id, k.name, force=force)
        assert tombstone.deleted and not tombstone.primary
        k.deleted = True
        if self.primary == k.id:
            self.primary = None

    @precondition(lambda self: 0 < len(self.live()) <= 2)
    @rule()
    def delete_every_key(self) -> None:
        """Reaches the state without any key: the primary goes last, as it must."""
        assert self.primary is not None
        for k in sorted(self.live(), key=lambda e: e.id == self.primary):
            self.keys.delete(SYSTEM, k.id, k.name, force=True)
            k.deleted = True
        self.primary = None

    @precondition(lambda self: bool(self.gone()))
    @rule(
        data=st.data(),
        op=st.sampled_from(["enable", "disable", "roll", "make_primary", "delete", "update"]),
    )
    def touch_deleted(self, data: st.DataObject, op: str) -> None:
        """A tombstone is final: nothing brings a deleted key back or changes it."""
        k = data.draw(st.sampled_from(self.gone()), label="deleted key")
        calls: dict[str, Callable[[], object]] = {
            "enable": lambda: self.keys.enable(SYSTEM, k.id),
            "disable": lambda: self.keys.disable(SYSTEM, k.id),
            "roll": lambda: self.keys.roll(SYSTEM, k.id, timedelta(hours=1)),
            "make_primary": lambda: self.keys.make_primary(SYSTEM, k.id),
            "delete": lambda: self.keys.delete(SYSTEM, k.name, k.name, force=True),
            "update": lambda: self.keys.update(SYSTEM, k.id, name=f"revived {k.id}"),
        }
        with pytest.raises(NotFound):
            calls[op]()

    @precondition(lambda self: bool(self.expected))
    @rule(data=st.data(), own_scope=st.booleans())
    def use(self, data: st.DataObject, own_scope: bool) -> None:
        """A request with the key (deleted ones too), as api/auth.py checks it."""
        # Creation order, never id order: ids are random, and a replayed example must
        # draw the same key.
        k = data.draw(st.sampled_from(list(self.expected.values())), label="key")
        choices = sorted(k.scopes) if own_scope else SCOPES
        scope = data.draw(st.sampled_from(choices), label="scope")
        now = self.clock()
        info = self.keys.verify(k.secret)
        assert info is not None and info.id == k.id
        assert admits(info, scope, now) == k.admits(scope, now)
        if admits(info, scope, now):
            self.record_use(k)

    # --- invariants ----------------------------------------------------------------

    @invariant()
    def every_key_authenticates_exactly_as_modelled(self) -> None:
        now = self.clock()
        for k in self.expected.values():
            info = self.keys.verify(k.secret)
            assert info is not None and info.id == k.id
            # A key never gains a scope after creation.
            assert info.scopes == k.scopes
            assert info.state(now) == k.state(now), k
            for scope in SCOPES:
                assert admits(info, scope, now) == k.admits(scope, now), (k, scope)
            if k.deleted or k.disabled or k.expired(now):
                assert not any(admits(info, scope, now) for scope in SCOPES)
            for scope in ALL_SCOPES - k.scopes:
                assert not admits(info, scope, now)

    @invariant()
    def an_unknown_key_never_authenticates(self) -> None:
        assert self.keys.verify(generate_key()) is None

    @invariant()
    def exactly_one_primary_while_any_key_lives(self) -> None:
        listed = self.keys.list()
        assert sorted(i.id for i in listed) == sorted(k.id for k in self.live())
        primaries = [i.id for i in listed if i.primary]
        if listed:
            assert primaries == [self.primary]
        else:
            assert primaries == [] and self.primary is None
        current = self.keys.primary()
        assert (current.id if current else None) == self.primary
        for i in listed:
            assert (i.retiring_since is not None) == self.expected[i.id].retiring, i
        tombstones = {i.id for i in self.keys.list(include_deleted=True)} - {i.id for i in listed}
        assert tombstones == {k.id for k in self.gone()}

    @invariant()
    def the_audit_chain_verifies(self) -> None:
        report = self.services.audit.verify()
        assert report.ok, report.problems


@pytest.fixture
def backend(database_url: str, tmp_path: Path) -> Iterator[Backend]:
    """The conftest database (SQLite or PostgreSQL), migrated once as the template."""
    data_template = tmp_path / "template-data"
    template = build_services(
        Settings(data_dir=data_template, database_url=database_url, key_pepper=PEPPER)
    )
    # PostgreSQL copies a template only while nobody is connected to it.
    template.db.dispose()
    workdir = Path(tempfile.mkdtemp(prefix="sg-lifecycle-", dir=tmp_path))
    yield Backend(database_url, data_template, workdir)


def test_key_lifecycle_keeps_its_invariants(backend: Backend) -> None:
    KeyLifecycle.backend = backend
    run_state_machine_as_test(KeyLifecycle, settings=MACHINE_SETTINGS)


# --- the verification cache -------------------------------------------------------


def test_cached_verdicts_end_within_cache_seconds_of_a_delete_elsewhere(
    backend: Backend,
) -> None:
    """Another process's delete reaches this one within ``cache_seconds``: the cache
    may answer with the old verdict until then, never after."""
    cfg, drop = backend.fresh()
    here = build_services(cfg, migrate=False)
    there = build_services(cfg, migrate=False)
    try:
        cache = 0.4
        here.keys.cache_seconds = cache
        created = here.keys.create(SYSTEM, "cached", frozenset({Scope.SEARCH}))
        token_kid = created.info.public_key_id
        assert token_kid is not None
        first = here.keys.verify(created.secret)
        assert first is not None and not first.deleted
        assert here.keys.by_public_key_id(token_kid) is not None
        there.keys.delete(SYSTEM, "cached", "cached", force=True)
        deleted_at = time.monotonic()
        last_live = {"verify": deleted_at, "kid": deleted_at}
        while time.monotonic() - deleted_at < cache * 3:
            # Taken before the lookups: a live answer means the cache entry was still
            # valid at some moment after this one.
            asked = time.monotonic()
            info = here.keys.verify(created.secret)
            parent = here.keys.by_public_key_id(token_kid)
            assert info is not None and parent is not None
            if not info.deleted:
                last_live["verify"] = asked
            if not parent.deleted:
                last_live["kid"] = asked
        # Both lookups learned of the deletion, and not later than the cache allows.
        assert here.keys.verify(created.secret).deleted  # type: ignore[union-attr]
        for what, at in last_live.items():
            assert at - deleted_at <= cache, (what, at - deleted_at)
    finally:
        here.db.dispose()
        there.db.dispose()
        drop()


def test_a_change_in_this_process_is_seen_at_once_despite_the_cache(backend: Backend) -> None:
    cfg, drop = backend.fresh()
    svc = build_services(cfg, migrate=False)
    try:
        svc.keys.cache_seconds = 3600.0
        created = svc.keys.create(SYSTEM, "local", frozenset({Scope.SEARCH}))
        assert not svc.keys.verify(created.secret).disabled  # type: ignore[union-attr]
        svc.keys.disable(SYSTEM, "local")
        assert svc.keys.verify(created.secret).disabled  # type: ignore[union-attr]
        svc.keys.enable(SYSTEM, "local")
        assert not svc.keys.verify(created.secret).disabled  # type: ignore[union-attr]
        svc.keys.delete(SYSTEM, "local", "local", force=True)
        assert svc.keys.verify(created.secret).deleted  # type: ignore[union-attr]
    finally:
        svc.db.dispose()
        drop()
