"""The server side of a key rotation: its persisted state, the one-at-a-time lock, the
lease of the run that drives it, and one change-log event per completed step, each in
the transaction of the change it describes.

The steps themselves run in a runner (``searchgate.rotation.runner``) that holds the
secret store's credentials; the server never sees the store. What the server can check
for itself, it does: the old key is still the primary at step 1, the new key exists
and is primary from step 2, the old key is really deleted before step 5 is recorded.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from searchgate.audit import Action, AuditLog
from searchgate.audit.tags import Outcome
from searchgate.authorizer import Authorizer
from searchgate.clock import Clock, aware, utc_now
from searchgate.db import Database
from searchgate.errors import Conflict, InvalidInput, NotFound
from searchgate.keys.info import CreatedKey, KeyState, info_of
from searchgate.keys.models import ClientKeyRow
from searchgate.keys.service import KeyService
from searchgate.keys.usage import UsageQueries
from searchgate.permissions import Actor, Permission
from searchgate.rotation.common import (
    ROTATION_SYSTEM,
    STEPS,
    UNFINISHED,
    RotationStatus,
    Timing,
    step_name,
    step_number,
)
from searchgate.rotation.models import RotationRow
from searchgate.rotation.state import (
    LEASE_MAX,
    LEASE_MIN,
    Overview,
    RotationBusy,
    RotationInfo,
    RotationIrreversible,
    Started,
    Traffic,
    active_row,
    check_fields,
    check_store,
    clean_text,
    close,
    evidence,
    find_row,
    ids,
    last_finished_row,
    lease_digest,
    primary_row,
    rotation_info,
    unfinished_row,
)

__all__ = [
    "Overview",
    "RotationBusy",
    "RotationInfo",
    "RotationIrreversible",
    "RotationService",
    "Started",
    "Traffic",
]


class RotationService:
    def __init__(
        self,
        db: Database,
        keys: KeyService,
        audit: AuditLog,
        authorizer: Authorizer,
        usage: UsageQueries,
        clock: Clock = utc_now,
        usage_flush_seconds: float = 2.0,
        key_cache_seconds: float = 1.0,
        max_key_age_days: int = 90,
    ) -> None:
        self.db = db
        self.keys = keys
        self.audit = audit
        self.authorizer = authorizer
        self.usage = usage
        self.clock = clock
        self.usage_flush_seconds = usage_flush_seconds
        self.key_cache_seconds = key_cache_seconds
        self.max_key_age_days = max_key_age_days

    # --- reading -------------------------------------------------------------------

    def authorize(self, actor: Actor, action: Action = Action.ROTATION_START) -> None:
        """Every rotation call needs admin:keys:manage. Reads are refused (and recorded)
        under ``admin:rotation:start``: reading the state is how a run starts or resumes."""
        self.authorizer.authorize(actor, Permission.KEYS_MANAGE, action, target="rotation")

    def overview(self, actor: Actor) -> Overview:
        self.authorize(actor)
        with self.db.read() as s:
            row = active_row(s)
            info = self._info(s, row) if row is not None else None
            primary = primary_row(s)
            last = last_finished_row(s)
            return Overview(
                info,
                info_of(primary) if primary is not None else None,
                self.max_key_age_days,
                last_finished=self._info(s, last) if last is not None else None,
                deletion_check_seconds=self.keys.delete_quiet.total_seconds(),
            )

    def get(self, actor: Actor, rotation_id: str) -> RotationInfo:
        self.authorize(actor)
        with self.db.read() as s:
            return self._info(s, find_row(s, rotation_id))

    def traffic(self, actor: Actor, rotation_id: str) -> Traffic:
        self.authorize(actor)
        with self.db.read() as s:
            row = find_row(s, rotation_id)
            started = aware(row.started_at)
            timing = Timing.from_dict(row.options)
            old_id, new_id = row.old_key_id, row.new_key_id
        since = started - timing.quiet
        old = [u for u in self.usage.systems(old_id, since) if u.system != ROTATION_SYSTEM]
        new = [u for u in self.usage.systems(new_id)] if new_id else []
        return Traffic(
            old=old,
            new=[u for u in new if u.system != ROTATION_SYSTEM],
            since=since,
            now=self.clock(),
        )

    # --- starting and resuming -----------------------------------------------------

    def start(
        self,
        actor: Actor,
        store_kind: str,
        store_location: str,
        timing: Timing,
        *,
        lease: str | None = None,
        lease_seconds: int = 60,
        holder: str | None = None,
    ) -> Started:
        """Starts a rotation, or hands the unfinished one to this run (when it names
        the same store and no other run holds a fresh lease on it)."""
        self.authorize(actor, Action.ROTATION_START)
        kind, location = check_store(store_kind, store_location)
        if not LEASE_MIN <= lease_seconds <= LEASE_MAX:
            raise InvalidInput(f"leaseSeconds is {LEASE_MIN} to {LEASE_MAX}", field="leaseSeconds")
        who = clean_text(holder or actor.label, 320) or actor.label
        try:
            with self.audit.transaction() as s:
                now = self.clock()
                row = active_row(s)
                if row is not None:
                    new_lease = self._resume(row, kind, location, lease, lease_seconds, who, now)
                    return Started(self._info(s, row), new_lease, created=False)
                primary = primary_row(s)
                if primary is None:
                    raise NotFound("there is no primary key to rotate; create a key first")
                state = info_of(primary).state(now)
                if state is not KeyState.ACTIVE:
                    raise Conflict(
                        f"the primary key {primary.name!r} is {state}: make a usable key "
                        "primary first (a rotation replaces a working key)"
                    )
                new_lease = secrets.token_urlsafe(24)
                row = RotationRow(
                    id="rot_" + secrets.token_hex(8),
                    status=RotationStatus.RUNNING,
                    step=0,
                    active=1,
                    store_kind=kind,
                    store_location=location,
                    old_key_id=primary.id,
                    replaced_key_ids=[],
                    options=timing.to_dict(),
                    steps={},
                    started_by=actor.label[:320],
                    started_at=now,
                    updated_at=now,
                    lease_digest=lease_digest(new_lease),
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                    lease_seconds=lease_seconds,
                    lease_holder=who,
                )
                s.add(row)
                s.flush()
                self.audit.record(
                    s,
                    actor,
                    Action.ROTATION_START,
                    target=row.id,
                    details={
                        "storeKind": kind,
                        "storeLocation": location,
                        "oldKeyId": primary.id,
                        "options": timing.to_dict(),
                    },
                )
                return Started(self._info(s, row), new_lease, created=True)
        except IntegrityError:
            # Two starts at once: the unique lock let one through.
            raise RotationBusy(
                "another rotation was started just now; re-run to resume it"
            ) from None

    def _resume(
        self,
        row: RotationRow,
        kind: str,
        location: str,
        lease: str | None,
        lease_seconds: int,
        holder: str,
        now: datetime,
    ) -> str:
        if (row.store_kind, row.store_location) != (kind, location):
            raise Conflict(
                f"rotation {row.id} of {row.store_location} is unfinished "
                f"(step {row.step}, {step_name(row.step)}); finish it with that store or "
                "abort it first",
                rotationId=row.id,
            )
        mine = lease is not None and row.lease_digest == lease_digest(lease)
        expires = aware(row.lease_expires_at) if row.lease_expires_at else None
        if not mine and expires is not None and expires > now:
            wait = max(1, int((expires - now).total_seconds() + 0.999))
            raise RotationBusy(
                f"rotation {row.id} is being driven by another run ({row.lease_holder}); "
                f"its hold lapses in {wait} s unless it goes on",
                rotationId=row.id,
                retryAfter=wait,
            )
        new_lease = lease if mine and lease is not None else secrets.token_urlsafe(24)
        row.lease_digest = lease_digest(new_lease)
        row.lease_seconds = lease_seconds
        row.lease_expires_at = now + timedelta(seconds=lease_seconds)
        row.lease_holder = holder
        return new_lease

    # --- the steps -----------------------------------------------------------------

    def create_key(
        self, actor: Actor, rotation_id: str, lease: str, replace_unused: str | None = None
    ) -> tuple[RotationInfo, CreatedKey]:
        """Step 2: the new primary key and its record in the rotation, in one commit.

        ``replace_unused``: the rotation's new key whose secret was lost before it
        reached the store (the run that got it stopped); it is taken back and another
        one made. Only the key the rotation holds at step 2 can be replaced, so two
        runs can never each replace the other's key."""
        self.authorize(actor, Action.ROTATION_STEP)
        with self.audit.transaction() as s:
            now = self.clock()
            row = unfinished_row(s, rotation_id)
            self._lease(row, lease, now)
            if replace_unused is None and row.step != 1:
                raise Conflict(
                    f"the new key is made at step 2, right after the preconditions; rotation "
                    f"{row.id} is at step {row.step} ({step_name(row.step)})"
                )
            # A copy: the column takes a new value, not one changed in place.
            replaced = list(row.replaced_key_ids)
            if replace_unused is not None:
                if row.step != 2 or row.new_key_id != replace_unused:
                    raise Conflict(
                        "only the new key of a rotation at step 2 (not yet in the store) can "
                        f"be replaced; rotation {row.id} is at step {row.step} with new key "
                        f"{row.new_key_id}",
                        field="replaceUnused",
                    )
                self.keys.restore_primary_in(s, actor, row.old_key_id)
                self.keys.retract_in(
                    s,
                    actor,
                    replace_unused,
                    f"rotation {row.id}: its secret was lost before it reached the store",
                )
                replaced.append(replace_unused)
            primary_key = primary_row(s)
            primary = primary_key.id if primary_key is not None else None
            if primary != row.old_key_id:
                raise Conflict(
                    f"the primary key changed since rotation {row.id} started (it is now "
                    f"{primary}); abort this rotation and start another"
                )
            created = self.keys.new_primary_in(s, actor, details={"rotation": row.id})
            row.new_key_id = created.info.id
            row.replaced_key_ids = replaced
            data: dict[str, Any] = {"newKeyId": created.info.id}
            if replace_unused is not None:
                data["replacesUnused"] = replace_unused
            self._advance(s, actor, row, 2, data, now)
            info = self._info(s, row)
        self.keys.forget_cache()
        return info, created

    def complete_step(
        self, actor: Actor, rotation_id: str, lease: str, step: str, data: Any
    ) -> RotationInfo:
        """Records that a step is done, with what it found. Recording a step that is
        already recorded changes nothing (a run that stopped before it heard the answer
        sends it again)."""
        n = step_number(step)
        if n == 2:
            raise InvalidInput(
                "step 2 is its own call: POST /api/v1/admin/rotations/{id}/create-key",
                field="step",
            )
        self.authorize(actor, Action.ROTATION_STEP)
        with self.audit.transaction() as s:
            now = self.clock()
            row = unfinished_row(s, rotation_id)
            self._lease(row, lease, now)
            if row.step >= n:
                return self._info(s, row)
            if row.step != n - 1:
                raise Conflict(
                    f"step {n} ({step_name(n)}) follows step {n - 1}; rotation {row.id} is at "
                    f"step {row.step} ({step_name(row.step)})",
                    field="step",
                )
            clean = check_fields(n, data)
            if n == 5:
                self._delete_old_key(s, actor, row, clean)
            evidence(s, row, n, clean, now)
            if n == 1:
                row.store_version_before = clean["storeVersionBefore"]
            if n == 3:
                row.store_version_after = clean["storeVersionAfter"]
            self._advance(s, actor, row, n, clean, now)
            info = self._info(s, row)
        if n == 5:
            self.keys.forget_cache()
        return info

    def _delete_old_key(
        self, s: Session, actor: Actor, row: RotationRow, data: dict[str, Any]
    ) -> None:
        """Step 5's deletion, in the transaction that records the step, logged as this
        rotation's: its drain (quiet period, then the probation with the key disabled)
        is the check, so it is no forced deletion unless the runner's --force
        overrode systems refused in the probation."""
        old = s.get(ClientKeyRow, row.old_key_id)
        if old is None or old.deleted_at is not None:
            return
        if old.disabled_at is None:
            raise Conflict(
                f"the old key {row.old_key_id} is deleted after its probation: disable it first"
            )
        timing = Timing.from_dict(row.options)
        check = self.keys.delete_quiet.total_seconds()
        details: dict[str, Any] = {
            "rotation": row.id,
            "refused": data["refused"],
            "forced": bool(data.get("forced")),
            "quietSeconds": timing.quiet.total_seconds(),
            "probationSeconds": timing.probation.total_seconds(),
            "deletionCheckSeconds": check,
        }
        if timing.quiet.total_seconds() < check:
            details["quietShorterThanDeletionCheck"] = True
        self.keys.delete_in(s, actor, row.old_key_id, details)

    def fail_step(
        self, actor: Actor, rotation_id: str, lease: str, step: str, message: str
    ) -> RotationInfo:
        """A run stopped at ``step`` with an error: recorded (outcome failure), and the
        rotation waits, still locked, for a re-run or an abort."""
        n = step_number(step)
        text = clean_text(message, 500)
        if not text:
            raise InvalidInput("error is a message saying what failed", field="error")
        self.authorize(actor, Action.ROTATION_STEP)
        with self.audit.transaction() as s:
            now = self.clock()
            row = unfinished_row(s, rotation_id)
            self._lease(row, lease, now)
            row.status = RotationStatus.FAILED
            row.last_error = text
            row.updated_at = now
            # The run that failed has stopped: a re-run or an abort need not wait for
            # its hold to lapse.
            row.lease_digest = None
            row.lease_expires_at = None
            self.audit.record(
                s,
                actor,
                Action.ROTATION_STEP,
                target=row.id,
                outcome=Outcome.FAILURE,
                details={"step": step_name(n), "number": n, "error": text, **ids(row)},
            )
            return self._info(s, row)

    def finish(self, actor: Actor, rotation_id: str, lease: str) -> RotationInfo:
        self.authorize(actor, Action.ROTATION_FINISH)
        with self.audit.transaction() as s:
            now = self.clock()
            row = find_row(s, rotation_id)
            if row.status == RotationStatus.FINISHED:
                return self._info(s, row)
            if row.status not in UNFINISHED:
                raise Conflict(f"rotation {row.id} is {row.status}")
            self._lease(row, lease, now)
            if row.step != len(STEPS):
                raise Conflict(
                    f"rotation {row.id} finishes after step 6 (confirm); it is at step "
                    f"{row.step} ({step_name(row.step)})"
                )
            close(row, RotationStatus.FINISHED, now)
            self.audit.record(
                s,
                actor,
                Action.ROTATION_FINISH,
                target=row.id,
                details={
                    **ids(row),
                    "seconds": round((now - aware(row.started_at)).total_seconds(), 1),
                },
            )
            return self._info(s, row)

    def abort(
        self,
        actor: Actor,
        rotation_id: str,
        lease: str,
        reason: str | None = None,
        store_version_restored: str | None = None,
    ) -> RotationInfo:
        """Rolls back the server side: the old key is enabled and primary again, the
        new key (if any) is deleted. The runner restores the store first, so that the
        store never holds a key that no longer works. Refused once the old key is
        deleted: there is nothing left to go back to."""
        self.authorizer.authorize(
            actor, Permission.KEYS_MANAGE, Action.ROTATION_ABORT, target=rotation_id, sensitive=True
        )
        text = clean_text(reason or "", 200) or None
        with self.audit.transaction() as s:
            now = self.clock()
            row = unfinished_row(s, rotation_id)
            self._lease(row, lease, now)
            old = s.get(ClientKeyRow, row.old_key_id)
            if old is None or old.deleted_at is not None or row.step >= 5:
                raise RotationIrreversible(
                    f"rotation {row.id} deleted the old key at step 5 (drain): it can no "
                    "longer be rolled back; re-run it to finish"
                )
            self.keys.restore_primary_in(s, actor, row.old_key_id)
            if row.new_key_id is not None:
                new = s.get(ClientKeyRow, row.new_key_id)
                if new is not None and new.deleted_at is None:
                    self.keys.retract_in(s, actor, new.id, f"rotation {row.id} was aborted")
            at_step = row.step
            close(row, RotationStatus.ABORTED, now)
            self.audit.record(
                s,
                actor,
                Action.ROTATION_ABORT,
                target=row.id,
                details={
                    **ids(row),
                    "atStep": at_step,
                    "reason": text,
                    "storeVersionRestored": clean_text(store_version_restored or "", 128) or None,
                },
            )
            info = self._info(s, row)
        self.keys.forget_cache()
        return info

    # --- plumbing ------------------------------------------------------------------

    def _advance(
        self,
        s: Session,
        actor: Actor,
        row: RotationRow,
        n: int,
        data: dict[str, Any],
        now: datetime,
    ) -> None:
        row.steps = {**row.steps, step_name(n): {"at": now.isoformat(), **data}}
        row.step = n
        row.status = RotationStatus.RUNNING
        row.last_error = None
        row.updated_at = now
        self.audit.record(
            s,
            actor,
            Action.ROTATION_STEP,
            target=row.id,
            details={"step": step_name(n), "number": n, **ids(row), **data},
        )

    @staticmethod
    def _lease(row: RotationRow, lease: str, now: datetime) -> None:
        if not lease or row.lease_digest != lease_digest(lease):
            raise RotationBusy(
                f"this run no longer drives rotation {row.id}: another run "
                f"({row.lease_holder}) took it over; stop this one",
                rotationId=row.id,
            )
        row.lease_expires_at = now + timedelta(seconds=row.lease_seconds)

    def _info(self, s: Session, row: RotationRow) -> RotationInfo:
        return rotation_info(s, row, self.usage_flush_seconds, self.key_cache_seconds)
