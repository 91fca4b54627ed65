"""The server side of a rotation: order of the steps, the lock, the lease, what the
server checks for itself, and what it records (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from searchgate.audit import AuditFilter
from searchgate.errors import Conflict, Forbidden, InvalidInput
from searchgate.keys.scopes import ALL_SCOPES
from searchgate.permissions import BUILTIN_ROLES, Actor, CredentialKind
from searchgate.rotation.common import Timing
from searchgate.rotation.models import RotationRow
from searchgate.rotation.service import (
    RotationBusy,
    RotationIrreversible,
    RotationService,
)
from searchgate.runtime import Services
from tests.conftest import ManualClock
from tests.keyhelp import SYSTEM

STORE = ("vault", "vault:secret/searchgate/client-key")
TIMING = Timing(quiet=timedelta(seconds=1), probation=timedelta(seconds=1))


@pytest.fixture
def svc(accounts: Services) -> RotationService:
    accounts.keys.create(SYSTEM, "prime", ALL_SCOPES, primary=True)
    return accounts.rotations


def events(svc: RotationService, rotation_id: str) -> list[tuple[str, str, str]]:
    page = svc.audit.query(SYSTEM, AuditFilter(target=rotation_id), limit=100)
    return [(e.action, str(e.details.get("step", "")), e.outcome) for e in reversed(page.events)]


def test_steps_follow_in_order_and_each_is_recorded_once(svc: RotationService) -> None:
    started = svc.start(SYSTEM, *STORE, TIMING)
    rid, lease, old_id = started.info.id, started.lease, started.info.old_key_id
    assert started.created and started.info.step == 0

    with pytest.raises(Conflict, match="follows step 2"):
        svc.complete_step(SYSTEM, rid, lease, "store-write", {"storeVersionAfter": "2"})
    with pytest.raises(InvalidInput, match="its own call"):
        svc.complete_step(SYSTEM, rid, lease, "create-key", {})
    with pytest.raises(Conflict, match="not the primary key"):
        svc.complete_step(
            SYSTEM, rid, lease, "1", {"storeVersionBefore": "4", "storeKeyId": "key_x"}
        )
    with pytest.raises(InvalidInput) as exc:
        svc.complete_step(
            SYSTEM, rid, lease, "1", {"storeVersionBefore": "4", "storeKeyId": old_id, "x": 1}
        )
    assert exc.value.field == "data.x"

    one = {"storeVersionBefore": "4", "storeKeyId": old_id}
    assert svc.complete_step(SYSTEM, rid, lease, "preconditions", one).step == 1
    # Sent again (the answer was lost): nothing changes, nothing more is recorded.
    assert svc.complete_step(SYSTEM, rid, lease, "preconditions", one).step == 1

    info, created = svc.create_key(SYSTEM, rid, lease)
    assert info.step == 2 and info.new_key_id == created.info.id
    assert created.secret.startswith("sgk_") and created.info.primary
    old = svc.keys.get(old_id)
    assert not old.primary and old.usable(svc.clock()) and old.retiring_since is not None
    assert created.secret not in str(info.to_dict(svc.clock()))
    with pytest.raises(Conflict, match="made at step 2"):
        svc.create_key(SYSTEM, rid, lease)

    with pytest.raises(InvalidInput, match="must differ"):
        svc.complete_step(SYSTEM, rid, lease, "store-write", {"storeVersionAfter": "4"})
    svc.complete_step(SYSTEM, rid, lease, "store-write", {"storeVersionAfter": "5"})
    svc.complete_step(
        SYSTEM, rid, lease, "verify", {"collections": [], "moved": [], "notMoved": []}
    )
    # The drain deletes the old key itself, and only after its probation (disabled).
    with pytest.raises(Conflict, match="disable it first"):
        svc.complete_step(SYSTEM, rid, lease, "drain", {"refused": []})
    assert not svc.keys.get(old_id).deleted
    with pytest.raises(Conflict, match="after step 6"):
        svc.finish(SYSTEM, rid, lease)

    assert events(svc, rid) == [
        ("admin:rotation:start", "", "success"),
        ("admin:rotation:step", "preconditions", "success"),
        ("admin:rotation:step", "create-key", "success"),
        ("admin:rotation:step", "store-write", "success"),
        ("admin:rotation:step", "verify", "success"),
    ]
    step3 = svc.audit.query(SYSTEM, AuditFilter(action="admin:rotation:step", target=rid)).events
    write = next(e for e in step3 if e.details["step"] == "store-write")
    assert write.details["storeVersionBefore"] == "4" and write.details["storeVersionAfter"] == "5"
    assert write.details["oldKeyId"] == old_id and write.details["newKeyId"] == info.new_key_id


def test_one_unfinished_rotation_at_a_time_driven_by_one_run(
    svc: RotationService, accounts: Services, clock: ManualClock
) -> None:
    first = svc.start(SYSTEM, *STORE, TIMING, lease_seconds=30)

    with pytest.raises(Conflict, match="abort it first"):
        svc.start(SYSTEM, "file", "file:/tmp/other.json", TIMING)
    with pytest.raises(RotationBusy) as busy:
        svc.start(SYSTEM, *STORE, TIMING)
    assert busy.value.details["retryAfter"] == 30
    same = svc.start(SYSTEM, *STORE, TIMING, lease=first.lease, lease_seconds=30)
    assert same.info.id == first.info.id and not same.created and same.lease == first.lease

    # The first run stopped answering: once its lease lapses, another run takes over,
    # and the first is shut out.
    clock.advance(seconds=31)
    second = svc.start(SYSTEM, *STORE, TIMING)
    assert second.info.id == first.info.id and second.lease != first.lease
    with pytest.raises(RotationBusy, match="took it over"):
        svc.complete_step(
            SYSTEM,
            first.info.id,
            first.lease,
            "1",
            {"storeVersionBefore": "1", "storeKeyId": first.info.old_key_id},
        )

    # The lock holds in the database itself, whatever the service does.
    with pytest.raises(IntegrityError), accounts.db.write() as s:
        row = s.get(RotationRow, first.info.id)
        assert row is not None
        s.add(
            RotationRow(
                **{
                    a.key: getattr(row, a.key)
                    for a in inspect(RotationRow).column_attrs
                    if a.key != "id"
                },
                id="rot_second",
            )
        )


def test_a_lost_new_key_is_replaced_only_by_naming_it(svc: RotationService) -> None:
    started = svc.start(SYSTEM, *STORE, TIMING)
    rid, lease = started.info.id, started.lease
    svc.complete_step(
        SYSTEM, rid, lease, "1", {"storeVersionBefore": "1", "storeKeyId": started.info.old_key_id}
    )
    first, _secret = svc.create_key(SYSTEM, rid, lease)
    assert first.new_key_id is not None

    with pytest.raises(Conflict, match="can be replaced"):
        svc.create_key(SYSTEM, rid, lease, replace_unused="key_0000000000000000")
    again, created = svc.create_key(SYSTEM, rid, lease, replace_unused=first.new_key_id)

    assert again.new_key_id == created.info.id != first.new_key_id
    assert again.replaced_key_ids == (first.new_key_id,)
    assert svc.keys.get(first.new_key_id, include_deleted=True).deleted
    assert svc.keys.primary() is not None and svc.keys.primary().id == created.info.id  # type: ignore[union-attr]
    # The replaced key cannot be replaced twice (two runs racing each lose one key).
    with pytest.raises(Conflict):
        svc.create_key(SYSTEM, rid, lease, replace_unused=first.new_key_id)


def test_abort_brings_the_old_key_back_and_frees_the_lock(svc: RotationService) -> None:
    started = svc.start(SYSTEM, *STORE, TIMING)
    rid, lease, old_id = started.info.id, started.lease, started.info.old_key_id
    svc.complete_step(SYSTEM, rid, lease, "1", {"storeVersionBefore": "1", "storeKeyId": old_id})
    info, _ = svc.create_key(SYSTEM, rid, lease)
    svc.keys.disable(SYSTEM, old_id, "probation")

    aborted = svc.abort(SYSTEM, rid, lease, "changed my mind", store_version_restored="3")

    assert aborted.status == "aborted" and aborted.finished_at is not None
    old = svc.keys.get(old_id)
    assert old.primary and not old.disabled and old.retiring_since is None
    assert svc.keys.get(info.new_key_id or "", include_deleted=True).deleted
    log = svc.audit.query(SYSTEM, AuditFilter(action="admin:rotation:abort")).events
    assert log[0].details["atStep"] == 2 and log[0].details["storeVersionRestored"] == "3"
    assert svc.overview(SYSTEM).rotation is None
    assert svc.start(SYSTEM, *STORE, TIMING).created


def test_abort_is_refused_once_the_old_key_is_gone(svc: RotationService) -> None:
    started = svc.start(SYSTEM, *STORE, TIMING)
    rid, lease, old_id = started.info.id, started.lease, started.info.old_key_id
    svc.complete_step(SYSTEM, rid, lease, "1", {"storeVersionBefore": "1", "storeKeyId": old_id})
    svc.create_key(SYSTEM, rid, lease)
    svc.complete_step(SYSTEM, rid, lease, "3", {"storeVersionAfter": "2"})
    svc.complete_step(SYSTEM, rid, lease, "4", {"collections": [], "moved": [], "notMoved": []})
    svc.keys.delete(SYSTEM, old_id, "prime", force=True)

    with pytest.raises(RotationIrreversible):
        svc.abort(SYSTEM, rid, lease)

    done = svc.complete_step(SYSTEM, rid, lease, "drain", {"refused": []})
    done = svc.complete_step(SYSTEM, rid, lease, "confirm", {"oldKeyRefusedWith": "x", "events": 5})
    finished = svc.finish(SYSTEM, rid, lease)
    assert done.step == 6 and finished.status == "finished"
    assert svc.finish(SYSTEM, rid, lease).status == "finished"  # idempotent
    assert [a for a, _, _ in events(svc, rid)][-1] == "admin:rotation:finish"


def test_failures_are_recorded_without_secrets(svc: RotationService) -> None:
    started = svc.start(SYSTEM, *STORE, TIMING)
    leaked = "sgk_" + "A" * 38
    failed = svc.fail_step(
        SYSTEM, started.info.id, started.lease, "store-write", f"vault said {leaked}\x00 no"
    )
    assert failed.status == "failed" and failed.last_error == "vault said [redacted]  no"
    log = svc.audit.query(SYSTEM, AuditFilter(outcome="failure")).events
    assert log[0].details["error"] == "vault said [redacted]  no"
    # The failed run's hold is released: a re-run takes over at once.
    assert failed.lease_expires_at is None
    resumed = svc.start(SYSTEM, *STORE, TIMING)
    assert resumed.info.id == started.info.id
    # The next completed step clears it.
    again = svc.complete_step(
        SYSTEM,
        started.info.id,
        resumed.lease,
        "1",
        {"storeVersionBefore": "1", "storeKeyId": started.info.old_key_id},
    )
    assert again.status == "running" and again.last_error is None


def test_bad_stores_and_people_without_the_permission_are_refused(svc: RotationService) -> None:
    with pytest.raises(InvalidInput) as env:
        svc.start(SYSTEM, "env", "env:SEARCHGATE_CLIENT_KEY", TIMING)
    assert env.value.field == "store.kind" and "read-only" in env.value.message
    with pytest.raises(InvalidInput, match="never the key"):
        svc.start(SYSTEM, "file", "file:/tmp/sgk_" + "B" * 38, TIMING)
    with pytest.raises(InvalidInput) as lease:
        svc.start(SYSTEM, *STORE, TIMING, lease_seconds=1)
    assert lease.value.field == "leaseSeconds"

    viewer = Actor(
        kind=CredentialKind.PERSONAL_TOKEN,
        name="vic@example.com",
        permissions=BUILTIN_ROLES["viewer"],
        user_id="usr_1",
        token_id="tok_1",
    )
    with pytest.raises(Forbidden):
        svc.start(viewer, *STORE, TIMING)
    with pytest.raises(Forbidden):
        svc.overview(viewer)
    denied = svc.audit.query(SYSTEM, AuditFilter(outcome="denied")).events
    assert [e.action for e in denied] == ["admin:rotation:start", "admin:rotation:start"]
    assert svc.overview(SYSTEM).rotation is None
