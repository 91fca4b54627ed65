"""The rotation state machine, driven in-process: the runner with the local backend (the
real services of a real app, on SQLite and PostgreSQL) and a real file store.

Systems are simulated by real data-plane requests (with ``X-Searchgate-System``) made
from the runner's progress callback, at the moment a real system would act: when the
runner waits for it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from searchgate.audit import AuditFilter
from searchgate.config import Settings
from searchgate.demo import demo_settings, generate
from searchgate.keys.scopes import ALL_SCOPES
from searchgate.keys.usage import UsageQueries
from searchgate.rotation.common import ROTATION_SYSTEM, Timing
from searchgate.rotation.events import (
    AbortRefused,
    PreconditionFailed,
    RotationEvent,
    StoreFailed,
    SystemsOnOldKey,
)
from searchgate.rotation.local_backend import LocalBackend
from searchgate.rotation.runner import RotationRunner, RunOptions
from searchgate.runtime import Runtime
from searchgate.secretstores.file import FileStore
from tests.conftest import ManualClock, load
from tests.keyhelp import SYSTEM

TIMING = Timing(
    quiet=timedelta(seconds=0.4),
    probation=timedelta(seconds=0.4),
    move_timeout=timedelta(seconds=3),
)
OPTIONS = RunOptions(timing=TIMING, lease_seconds=2, poll_seconds=0.05)

# The app runs on real time (the runs wait out their quiet and probation periods), which
# a test moves forward past a crashed run's lease instead of waiting for it to lapse.
pytestmark = pytest.mark.manual_clock(ticking=True)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Usage reaches the database within 0.1 s, revocations within 0.1 s: short waits.
    return settings.model_copy(update={"key_usage_flush_seconds": 0.1, "key_cache_seconds": 0.1})


class Stop(Exception):
    """Stands for a crash: raised from the progress callback, nothing records it."""


@dataclass
class Env:
    client: TestClient
    rt: Runtime
    store: FileStore
    old_key: str
    old_id: str
    clock: ManualClock
    events: list[RotationEvent] = field(default_factory=list)

    def use(self, system: str, secret: str) -> int:
        """One data-plane request by ``system`` with ``secret``, counted at once."""
        r = self.client.get(
            "/api/v1/keys/self",
            headers={"Authorization": f"Bearer {secret}", "X-Searchgate-System": system},
        )
        self.rt.usage.flush()
        return r.status_code

    def works(self, secret: str) -> bool:
        """A check like the runner's own (named like it), not a system that must move."""
        r = self.client.get(
            "/api/v1/keys/self",
            headers={"Authorization": f"Bearer {secret}", "X-Searchgate-System": ROTATION_SYSTEM},
        )
        return r.status_code == 200

    def runner(
        self,
        on_event: Callable[[RotationEvent], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **options: object,
    ) -> RotationRunner:
        def record(event: RotationEvent) -> None:
            self.events.append(event)
            if on_event is not None:
                on_event(event)

        opts = RunOptions(**{**OPTIONS.__dict__, **options})  # type: ignore[arg-type]
        backend = LocalBackend(self.rt.services, self.rt.search, SYSTEM)
        return RotationRunner(backend, self.store, opts, record, sleep=sleep, clock=self.clock)

    def outlast_lease(self) -> None:
        """A run that crashed (or an abort that was refused) holds its lease until the
        lease lapses: the next run would wait for that. Moves the app's clock past it."""
        self.clock.advance(seconds=OPTIONS.lease_seconds)

    def step_events(self, rotation_id: str) -> list[str]:
        page = self.rt.services.audit.query(
            SYSTEM, AuditFilter(action="admin:rotation:*", target=rotation_id), limit=500
        )
        return [
            e.action.rsplit(":", 1)[1]
            + (f":{e.details['step']}" if "step" in e.details else "")
            + ("" if e.outcome == "success" else f"({e.outcome})")
            for e in reversed(page.events)
        ]


@pytest.fixture
def env(client: TestClient, rt: Runtime, tmp_path: Path, app_clock: ManualClock) -> Env:
    created = rt.services.keys.create(SYSTEM, "shop key", ALL_SCOPES, primary=True)
    # The catalog is loaded with a key of its own: the primary's only user is the shop.
    loader = rt.services.keys.create(SYSTEM, "loader", ALL_SCOPES).secret
    auth = {"Authorization": f"Bearer {loader}"}
    load(client, auth, "default", list(generate(5)), demo_settings())
    store = FileStore(tmp_path / "secrets" / "client-key.json")
    store.write(created.secret, expected_version=None)
    e = Env(client, rt, store, created.secret, created.info.id, app_clock)
    # A storefront used the key shortly before the rotation: it has to move.
    assert e.use("shop", created.secret) == 200
    return e


def shop_follows_store(env: Env) -> Callable[[RotationEvent], None]:
    """A storefront in use all along: a request with the key it holds at every event of
    the run; when the runner waits for systems to move, it re-reads the store (as the
    SDK does on its refresh) and goes on with what it finds."""
    held = [env.old_key]

    def on_event(event: RotationEvent) -> None:
        if event.kind == "waiting" and event.step == 4:
            held[0] = env.store.read().value
        if event.kind in ("step", "waiting"):
            env.use("shop", held[0])

    return on_event


FULL_LOG = [
    "start",
    "step:preconditions",
    "step:create-key",
    "step:store-write",
    "step:verify",
    "step:drain",
    "step:confirm",
    "finish",
]


def test_a_full_rotation_replaces_the_key_in_the_store_and_deletes_the_old_one(env: Env) -> None:
    result = env.runner(shop_follows_store(env)).run()

    assert result.outcome == "finished", result
    new_secret = env.store.read().value
    assert new_secret != env.old_key
    assert env.works(new_secret)
    assert not env.works(env.old_key)
    keys = env.rt.services.keys
    assert keys.get(env.old_id, include_deleted=True).deleted
    assert keys.primary() is not None and keys.primary().id == result.new_key_id  # type: ignore[union-attr]
    # The old version stays in the store's history (a rollback is one step).
    assert env.store.read_version("1").value == env.old_key
    assert env.step_events(result.rotation_id or "") == FULL_LOG
    rot = env.rt.services.audit.query(
        SYSTEM, AuditFilter(action="admin:rotation:step", target=result.rotation_id), limit=10
    )
    verify = next(e for e in rot.events if e.details["step"] == "verify")
    assert verify.details["moved"] == ["shop"] and verify.details["notMoved"] == []
    assert verify.details["collections"] == ["default"]
    store_write = next(e for e in rot.events if e.details["step"] == "store-write")
    assert store_write.details["storeVersionBefore"] == "1"
    assert store_write.details["storeVersionAfter"] == "2"
    # No secret anywhere in what the runner reported.
    assert all(new_secret not in str(e.to_dict()) for e in env.events)
    assert all(env.old_key not in str(e.to_dict()) for e in env.events)


@pytest.mark.parametrize("step", [1, 2, 3, 4, 5, 6])
def test_a_run_stopped_right_after_any_step_resumes_to_the_end(env: Env, step: int) -> None:
    follow = shop_follows_store(env)

    def crash_after(event: RotationEvent) -> None:
        follow(event)
        if event.kind == "step-done" and event.step == step:
            raise Stop

    with pytest.raises(Stop):
        env.runner(crash_after).run()
    env.outlast_lease()
    # Between the crash and the re-run the store holds a key that works.
    assert env.works(env.store.read().value)

    result = env.runner(follow).run()

    assert result.outcome == "finished"
    assert env.works(env.store.read().value) and not env.works(env.old_key)
    log = env.step_events(result.rotation_id or "")
    if step == 2:
        # The new key's secret died with the run before it reached the store: that key
        # was taken back (deleted) and replaced, which the log shows as a second step 2.
        assert log == [*FULL_LOG[:3], "step:create-key", *FULL_LOG[3:]]
        rotation = env.rt.services.audit.query(
            SYSTEM, AuditFilter(action="admin:keys:delete"), limit=10
        ).events
        replaced = [e.target for e in rotation if "lost" in str(e.details.get("reason"))]
        assert len(replaced) == 1
        assert env.rt.services.keys.get(replaced[0], include_deleted=True).deleted
    else:
        assert log == FULL_LOG
    # Exactly one key left, the primary, in the store.
    live = [k for k in env.rt.services.keys.list() if k.name != "loader"]
    assert [k.id for k in live] == [result.new_key_id]


def test_a_store_that_fails_the_write_leaves_the_old_key_in_place_and_a_rerun_finishes(
    env: Env,
) -> None:
    env.store.lock_timeout = 0.2
    held: list[int] = []

    def lock_store_after_step_2(event: RotationEvent) -> None:
        if event.kind == "step-done" and event.step == 2:
            fd = os.open(env.store.lock_path, os.O_RDWR)
            fcntl.flock(fd, fcntl.LOCK_EX)
            held.append(fd)

    slept: list[float] = []
    # The retry back-off, recorded instead of waited out.
    runner = env.runner(lock_store_after_step_2, slept.append, store_attempts=2)
    with pytest.raises(StoreFailed) as exc:
        runner.run()
    assert exc.value.exit_code == 5
    assert "2 attempts" in exc.value.message and "still holds the old key" in exc.value.message
    assert slept == [2.0]  # one back-off between the two attempts, then it gave up
    assert env.store.read().value == env.old_key and env.works(env.old_key)
    current = LocalBackend(env.rt.services, env.rt.search, SYSTEM).current().rotation
    assert current is not None and current.status == "failed" and current.step == 2
    assert current.last_error and "attempts" in current.last_error

    os.close(held.pop())
    result = env.runner(shop_follows_store(env)).run()
    assert result.outcome == "finished"
    assert "step:store-write(failure)" in env.step_events(result.rotation_id or "")


def test_abort_after_the_store_write_puts_the_old_key_back_everywhere(env: Env) -> None:
    def crash_after_3(event: RotationEvent) -> None:
        if event.kind == "step-done" and event.step == 3:
            raise Stop

    with pytest.raises(Stop):
        env.runner(crash_after_3).run()
    env.outlast_lease()
    new_secret = env.store.read().value
    assert new_secret != env.old_key and env.works(new_secret)

    result = env.runner().abort("test")

    assert result.outcome == "aborted"
    assert env.store.read().value == env.old_key
    assert env.store.read().version == "3"  # restored as a new version; history kept
    assert env.works(env.old_key) and not env.works(new_secret)
    keys = env.rt.services.keys
    assert keys.primary() is not None and keys.primary().id == env.old_id  # type: ignore[union-attr]
    assert keys.get(result.new_key_id or "", include_deleted=True).deleted
    assert env.step_events(result.rotation_id or "")[-1] == "abort"
    # The lock is free again: a new rotation can start.
    backend = LocalBackend(env.rt.services, env.rt.search, SYSTEM)
    again, _lease = backend.start("file", env.store.location, TIMING, None, 2)
    assert again.id != result.rotation_id and again.old_key_id == env.old_id


def test_abort_during_probation_enables_the_old_key_before_the_store_gets_it_back(
    env: Env,
) -> None:
    follow = shop_follows_store(env)

    def crash_in_probation(event: RotationEvent) -> None:
        follow(event)
        if event.kind == "waiting" and event.message.startswith("probation"):
            raise Stop

    with pytest.raises(Stop):
        env.runner(crash_in_probation).run()
    env.outlast_lease()
    assert env.rt.services.keys.get(env.old_id).disabled

    env.runner().abort()

    assert env.store.read().value == env.old_key and env.works(env.old_key)
    assert not env.rt.services.keys.get(env.old_id).disabled


def test_abort_is_refused_once_the_old_key_is_deleted(env: Env) -> None:
    follow = shop_follows_store(env)

    def crash_after_5(event: RotationEvent) -> None:
        follow(event)
        if event.kind == "step-done" and event.step == 5:
            raise Stop

    with pytest.raises(Stop):
        env.runner(crash_after_5).run()
    env.outlast_lease()
    with pytest.raises(AbortRefused) as exc:
        env.runner().abort()
    assert exc.value.exit_code == 8 and "re-run without --abort" in exc.value.message
    env.outlast_lease()
    assert env.runner().run().outcome == "finished"


def test_a_system_refused_during_probation_gets_the_old_key_back_and_stops_the_run(
    env: Env,
) -> None:
    follow = shop_follows_store(env)

    def legacy_still_on_old_key(event: RotationEvent) -> None:
        follow(event)
        if event.kind == "waiting" and event.message.startswith("probation"):
            env.use("legacy-batch", env.old_key)

    with pytest.raises(SystemsOnOldKey) as exc:
        env.runner(legacy_still_on_old_key).run()
    assert exc.value.exit_code == 4 and exc.value.details["systems"] == ["legacy-batch"]
    # Systems that read the store (the SDK) were refused because their cached copy
    # outlived the quiet period: the message names the setting, not "point them at it".
    assert "max_age_seconds" in exc.value.message and "--quiet" in exc.value.message
    assert "Point them at the store" not in exc.value.message
    assert env.works(env.old_key)  # enabled again at once
    assert env.store.read().value != env.old_key  # the store keeps the new key

    # The legacy system is fixed: it reads the store now. A re-run drains again.
    result = env.runner().run()
    assert result.outcome == "finished" and not env.works(env.old_key)


def test_a_system_that_never_moves_stops_the_run_unless_forced(env: Env) -> None:
    impatient = Timing(quiet=TIMING.quiet, probation=TIMING.probation, move_timeout=timedelta(0))
    with pytest.raises(SystemsOnOldKey) as exc:
        env.runner(timing=impatient).run()
    # "shop" used the old key before the start and never used the new one.
    assert exc.value.details["systems"] == ["shop"]
    assert "shop" in exc.value.message

    result = env.runner(force=True).run()
    assert result.outcome == "finished"
    verify = env.rt.services.audit.query(
        SYSTEM, AuditFilter(action="admin:rotation:step", target=result.rotation_id), limit=10
    ).events
    data = next(e.details for e in verify if e.details.get("step") == "verify")
    assert data["notMoved"] == ["shop"] and data["forced"] is True


def test_a_store_holding_another_key_is_refused_before_anything_changes(env: Env) -> None:
    other = env.rt.services.keys.create(SYSTEM, "other", ALL_SCOPES).secret
    env.store.write(other, expected_version="1")

    with pytest.raises(PreconditionFailed) as exc:
        env.runner().run()

    assert exc.value.exit_code == 3 and "not the primary key" in exc.value.message
    assert LocalBackend(env.rt.services, env.rt.search, SYSTEM).current().rotation is None


def test_an_empty_store_is_refused(env: Env, tmp_path: Path) -> None:
    env.store = FileStore(tmp_path / "elsewhere.json")
    with pytest.raises(PreconditionFailed, match="holds no key yet"):
        env.runner().run()


def test_if_older_than_does_nothing_for_a_young_key_and_dry_run_changes_nothing(
    env: Env,
) -> None:
    young = env.runner(if_older_than=timedelta(days=90)).run()
    assert young.outcome == "nothing-to-do" and "younger than 90d" in young.message

    dry = env.runner(dry_run=True).run()
    assert dry.outcome == "dry-run"
    steps = ["preconditions", "create-key", "store-write", "verify", "drain", "confirm"]
    assert [line.split(":")[0] for line in dry.plan] == [
        f"step {n}/6 {name}" for n, name in enumerate(steps, start=1)
    ]
    assert "checks pass now" in dry.plan[0]
    assert env.store.read().version == "1"
    assert [k.name for k in env.rt.services.keys.list()] == ["shop key", "loader"]
    assert LocalBackend(env.rt.services, env.rt.search, SYSTEM).current().rotation is None

    due = env.runner(shop_follows_store(env), if_older_than=timedelta(seconds=0)).run()
    assert due.outcome == "finished"


def key_events(env: Env, action: str, key_id: str) -> list[dict[str, object]]:
    page = env.rt.services.audit.query(SYSTEM, AuditFilter(action=action, target=key_id), limit=50)
    return [e.details for e in page.events]


def test_the_old_keys_deletion_is_recorded_as_the_rotations_own(env: Env) -> None:
    events: list[RotationEvent] = []
    follow = shop_follows_store(env)
    result = env.runner(lambda e: (follow(e), events.append(e))).run()
    assert result.outcome == "finished"
    [deleted] = key_events(env, "admin:keys:delete", env.old_id)
    # The shop used the old key minutes ago, as every system of a rotated key did: the
    # rotation's drain (quiet period, probation) is the check, not a forced deletion.
    assert deleted["rotation"] == result.rotation_id
    assert deleted["forced"] is False and deleted["refused"] == []
    # --quiet (0.4 s) is shorter than the server's own deletion check (15 min): the run
    # said so before it began, and the deletion records it.
    assert deleted["quietSeconds"] == 0.4 and deleted["deletionCheckSeconds"] == 900
    warnings = [e.message for e in events if e.kind == "warning"]
    assert any("shorter than the server's deletion check (15m)" in w for w in warnings)


def test_the_runners_own_checks_are_not_a_use_of_the_key(env: Env) -> None:
    spare = env.rt.services.keys.create(SYSTEM, "spare", ALL_SCOPES)
    assert env.works(spare.secret)
    env.rt.usage.flush()
    info = env.rt.services.keys.get(spare.info.id)
    assert info.last_used_at is None and env.rt.services.keys.in_use(info) == []
    assert UsageQueries(env.rt.services.db).systems(spare.info.id) == []
    env.rt.services.keys.delete(SYSTEM, spare.info.id, "spare")  # not blocked, not forced
    [deleted] = key_events(env, "admin:keys:delete", spare.info.id)
    assert deleted["forced"] is False and deleted["recentSystems"] == []


def test_a_rerun_after_a_finished_rotation_does_nothing_unless_asked(env: Env) -> None:
    first = env.runner(shop_follows_store(env)).run()
    assert first.outcome == "finished"
    key = env.store.read()

    again = env.runner().run()
    assert again.outcome == "already-finished"
    assert again.rotation_id == first.rotation_id
    assert f"rotation {first.rotation_id} finished at " in again.message
    assert "--new" in again.message
    assert env.store.read() == key

    young = env.runner(if_older_than=timedelta(days=90)).run()
    assert young.outcome == "nothing-to-do"
    env.old_key = key.value  # what the shop holds now
    second = env.runner(shop_follows_store(env), new=True).run()
    assert second.outcome == "finished" and second.rotation_id != first.rotation_id
    assert env.store.read().value != key.value
