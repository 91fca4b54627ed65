"""The rotation runner: drives the six steps through a backend and a secret store,
records each one on the server as it completes, and resumes from what the server
recorded. It prints nothing: it reports through ``on_event`` and its result, and stops
with a ``RotationStopped`` error that carries an exit code.

What holds at every point, including after a crash between any two lines: the store
holds a key that works (the old one until the check-and-set write, the new one after),
no new key exists that the rotation does not know of (it is made and recorded in one
server transaction), and no key is deleted that the store may still hand out.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from searchgate.clock import Clock, utc_now
from searchgate.durations import format_duration
from searchgate.errors import SearchgateError
from searchgate.keys.info import KeyState
from searchgate.rotation.backend import RotationBackend, RotationView
from searchgate.rotation.common import STEP_TITLES, STEPS, Step, Timing, step_name
from searchgate.rotation.events import (
    EventKind,
    PreconditionFailed,
    RotationEvent,
    RotationStopped,
    RunBusy,
    RunOutcome,
    RunResult,
    StoreFailed,
    SystemsOnOldKey,
    VerificationFailed,
)
from searchgate.rotation.plan import abort_plan, describe_plan
from searchgate.rotation.store_ops import (
    check_preconditions,
    restore_for_abort,
    write_new_key,
)
from searchgate.rotation.waits import WaitContext, wait_moved, wait_quiet, watch_probation
from searchgate.secretstores.base import (
    SecretStore,
    StoreError,
)

MAX_BUSY_WAIT = 120.0  # seconds a run waits for another run's lease to lapse
CRASH_EXIT = 137  # what a SIGKILL looks like to a shell


@dataclass(frozen=True)
class RunOptions:
    timing: Timing = field(default_factory=Timing)
    force: bool = False
    dry_run: bool = False
    if_older_than: timedelta | None = None
    # Start another rotation even though the last one finished and its key is still
    # the primary (a re-run of the same command otherwise just says so).
    new: bool = False
    lease_seconds: int = 60
    poll_seconds: float = 2.0
    store_attempts: int = 3
    # Testing hook (SEARCHGATE_ROTATION_CRASH_AFTER): the process exits at once, as if
    # killed, right after the server recorded this step (name or number).
    crash_after: str | None = None


class RotationRunner:
    def __init__(
        self,
        backend: RotationBackend,
        store: SecretStore,
        options: RunOptions | None = None,
        on_event: Callable[[RotationEvent], None] | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Clock = utc_now,
    ) -> None:
        self.backend = backend
        self.store = store
        self.options = options or RunOptions()
        self._on_event = on_event or (lambda _e: None)
        self._sleep = sleep
        self._monotonic = monotonic
        self._clock = clock
        self._lease: str | None = None
        self._renewed = 0.0
        self._rot: RotationView | None = None
        # The new key, in memory only: from step 2 (or read back from the store).
        self._secret: str | None = None

    # --- entry points --------------------------------------------------------------

    def run(self) -> RunResult:
        """Starts a rotation or resumes the unfinished one, and takes it to the end."""
        current = self.backend.current()
        rot = current.rotation
        if rot is None:
            primary = current.primary
            if primary is None:
                raise PreconditionFailed("there is no primary key to rotate; create a key first")
            limit = self.options.if_older_than
            age = self._clock() - primary.created_at
            if limit is not None and age < limit:
                return RunResult(
                    RunOutcome.NOTHING_TO_DO,
                    f"the primary key {primary.name!r} is {format_duration(age)} old, younger "
                    f"than {format_duration(limit)}: nothing to do",
                    old_key_id=primary.id,
                )
            last = current.last_finished
            if limit is None and not self.options.new and last and last.new_key_id == primary.id:
                return self._already_finished(last)
            self._warn_short_quiet(current.deletion_check_seconds)
            expected = primary.id
        else:
            self._check_same_store(rot)
            expected = rot.old_key_id
        if self.options.dry_run:
            return self._dry_run(rot, expected)
        checked: tuple[str, str] | None = None
        if rot is None or rot.step == 0:
            checked = check_preconditions(self.backend, self.store, expected)
        rot = self._acquire(resuming=rot)
        while rot.step < len(STEPS):
            rot = self._guarded(rot.step + 1, rot, checked)
        rot = self.backend.finish(rot.id, self._held())
        self._emit(
            EventKind.INFO, f"rotation {rot.id} finished: {rot.new_key_id} is the primary key"
        )
        return RunResult(
            RunOutcome.FINISHED,
            f"rotation {rot.id} finished: key {rot.old_key_id} was replaced by "
            f"{rot.new_key_id} in {rot.store_label}",
            rotation_id=rot.id,
            old_key_id=rot.old_key_id,
            new_key_id=rot.new_key_id,
        )

    def _already_finished(self, last: RotationView) -> RunResult:
        at = last.finished_at or last.started_at
        message = (
            f"rotation {last.id} finished at {at:%Y-%m-%d %H:%M:%S} UTC "
            f"({format_duration(self._clock() - at)} ago): key {last.new_key_id} replaced "
            f"{last.old_key_id} in {last.store_label} and is still the primary key. Nothing "
            "to do: add --new to rotate again now, or --if-older-than (for cron) to rotate "
            "once the key is that old"
        )
        self._emit(EventKind.INFO, message)
        return RunResult(
            RunOutcome.ALREADY_FINISHED, message, last.id, last.old_key_id, last.new_key_id
        )

    def _warn_short_quiet(self, check_seconds: float | None) -> None:
        quiet = self.options.timing.quiet
        if check_seconds is None or quiet.total_seconds() >= check_seconds:
            return
        check = format_duration(check_seconds)
        self._emit(
            EventKind.WARNING,
            f"--quiet {format_duration(quiet)} is shorter than the server's deletion check "
            f"({check}): the old key is deleted once it served no request for "
            f"{format_duration(quiet)} and its probation passed, where a deletion by hand "
            f"waits {check}. The deletion's change-log entry records both",
        )

    def abort(self, reason: str | None = None) -> RunResult:
        """Rolls the unfinished rotation back, from any step before the old key's
        deletion: the old key enabled, the store restored, then the new key deleted."""
        current = self.backend.current()
        rot = current.rotation
        if rot is None:
            return RunResult(RunOutcome.NO_ROTATION, "no rotation is in progress: nothing to abort")
        self._check_same_store(rot)
        if self.options.dry_run:
            lines = (
                f"rotation {rot.id} is at step {rot.step} ({step_name(rot.step)})",
                *abort_plan(rot),
            )
            for line in lines:
                self._emit(EventKind.PLAN, line)
            return RunResult(
                RunOutcome.DRY_RUN, "nothing was changed (--dry-run)", rot.id, plan=lines
            )
        rot = self._acquire(resuming=rot)
        restored = restore_for_abort(self.backend, self.store, rot, self._on_event)
        rot = self.backend.abort(rot.id, self._held(), reason, restored)
        message = f"rotation {rot.id} aborted: key {rot.old_key_id} is the primary key again"
        if restored:
            message += f"; {rot.store_label} holds it again (version {restored})"
        self._emit(EventKind.INFO, message)
        return RunResult(RunOutcome.ABORTED, message, rot.id, rot.old_key_id, rot.new_key_id)

    # --- the steps -----------------------------------------------------------------

    def _guarded(self, n: int, rot: RotationView, checked: tuple[str, str] | None) -> RotationView:
        """Runs step ``n``; a failure is recorded on the rotation (which stays locked,
        waiting for a re-run or an abort) and stops the run."""
        self._emit(EventKind.STEP, f"step {n}/6: {STEP_TITLES[step_name(n)]}", step=n)
        try:
            if n == 1:
                version, key_id = checked or check_preconditions(
                    self.backend, self.store, rot.old_key_id
                )
                data: dict[str, Any] = {"storeVersionBefore": version, "storeKeyId": key_id}
                done = self.backend.complete_step(rot.id, self._held(), "preconditions", data)
            elif n == 2:
                done, self._secret = self.backend.create_key(rot.id, self._held(), None)
            elif n == 3:
                done = self._store_write(rot)
            elif n == 4:
                done = self._verify(rot)
            elif n == 5:
                done = self._drain(rot)
            else:
                done = self._confirm(rot)
        except StoreError as exc:
            self._record_failure(rot, n, exc.message)
            raise StoreFailed(exc.message) from None
        except RunBusy:
            raise
        except SearchgateError as exc:
            if exc.code == "rotation_busy":
                raise RunBusy(exc.message) from None
            self._record_failure(rot, n, exc.message)
            raise
        self._rot = done
        self._emit(
            EventKind.STEP_DONE,
            f"step {n}/6 done: {step_name(n)}",
            step=n,
            data=done.steps.get(step_name(n), {}),
        )
        self._persisted(n)
        return done

    def _store_write(self, rot: RotationView) -> RotationView:
        before = rot.store_version_before
        assert before is not None and rot.new_key_id is not None
        if self._secret is None:
            current = self.store.read()
            if current.version == before:
                # The run that made the key stopped before writing it: its secret is
                # gone (shown once). Nobody has it, so it is taken back and replaced.
                self._emit(
                    EventKind.WARNING,
                    f"the secret of the new key {rot.new_key_id} was lost before it reached "
                    "the store (the run that made it stopped); replacing that unused key",
                    step=3,
                )
                rot, self._secret = self.backend.create_key(rot.id, self._held(), rot.new_key_id)
            else:
                check = self.backend.check_key(current.value)
                if check.key_id != rot.new_key_id:
                    raise StoreFailed(
                        f"{self.store.location} changed since step 1 (version {current.version}, "
                        f"not {before}) and does not hold this rotation's new key: someone "
                        "else wrote it. Check the store, then re-run or --abort"
                    )
                self._secret = current.value
                return self.backend.complete_step(
                    rot.id, self._held(), "store-write", {"storeVersionAfter": current.version}
                )
        written = write_new_key(
            self.store,
            self._secret,
            before,
            self.options.store_attempts,
            self._on_event,
            self._sleep,
        )
        return self.backend.complete_step(
            rot.id, self._held(), "store-write", {"storeVersionAfter": written.version}
        )

    def _verify(self, rot: RotationView) -> RotationView:
        current = self.store.read()
        check = self.backend.check_key(current.value)
        if not check.ok or check.key_id != rot.new_key_id:
            raise VerificationFailed(
                f"the key read back from {self.store.location} (version {current.version}) "
                f"does not authenticate as the new key {rot.new_key_id} "
                f"({check.code or check.key_id}); nothing was disabled: re-run, or --abort"
            )
        self._secret = current.value
        collections: list[str] = []
        skipped = "search" not in check.scopes
        if not skipped:
            collections = self.backend.readable_collections(current.value)
            for name in collections:
                status = self.backend.search_status(current.value, name)
                if status != 200:
                    raise VerificationFailed(
                        f"a search on {name!r} with the new key answered {status}; the old "
                        "key still works: re-run, or --abort"
                    )
            self._emit(
                EventKind.INFO, f"the new key searched {len(collections)} collection(s)", step=4
            )
        moved, not_moved = wait_moved(self._waits(), rot)
        data = {
            "collections": collections,
            "moved": moved,
            "notMoved": not_moved,
            "forced": bool(not_moved),
            "searchSkipped": skipped,
        }
        return self.backend.complete_step(rot.id, self._held(), "verify", data)

    def _drain(self, rot: RotationView) -> RotationView:
        rot = self.backend.get(rot.id)
        old = rot.old_key
        assert old is not None
        refused: list[str] = []
        quiet_since: datetime | None = None
        if old.state != KeyState.DELETED:
            if old.state != KeyState.DISABLED:
                quiet_since = wait_quiet(self._waits(), rot)
                self.backend.disable_key(old.id, f"rotation {rot.id}: probation before deletion")
                rot = self.backend.get(rot.id)
                old = rot.old_key
                assert old is not None
                self._emit(EventKind.INFO, f"old key {old.id} disabled: probation", step=5)
            assert old.disabled_at is not None
            refused = watch_probation(self._waits(), rot, old.disabled_at)
            if refused and not self.options.force:
                self.backend.enable_key(old.id)
                quiet = format_duration(rot.timing.quiet)
                raise SystemsOnOldKey(
                    f"while the old key was disabled it was refused for {', '.join(refused)}: "
                    f"they still held it after serving no request with it for {quiet} (the "
                    "quiet period). It is enabled again. If they read the key from the store "
                    f"{rot.store_label} (the SDK does), their cached copy outlived the quiet "
                    f"period: set the SDK's CachedKey max_age_seconds (300 s by default) "
                    f"below {quiet}, or --abort and rotate again with a --quiet longer than "
                    "their cache (the SDK also re-reads the store at its first refusal, so a "
                    "re-run usually goes through). If they keep a copy of the key instead, "
                    "make them read the store. Then re-run (or --force to delete it anyway)",
                    systems=refused,
                )
        # The server deletes the old key when it records this step, as the rotation's
        # deletion (in the change log, with the drain's figures).
        data: dict[str, Any] = {"refused": refused, "forced": bool(refused)}
        if quiet_since is not None:
            data["quietSince"] = quiet_since.isoformat()
        if old.disabled_at is not None:
            data["disabledAt"] = old.disabled_at.isoformat()
        return self.backend.complete_step(rot.id, self._held(), "drain", data)

    def _confirm(self, rot: RotationView) -> RotationView:
        current = self.store.read()
        check = self.backend.check_key(current.value)
        if not check.ok or check.key_id != rot.new_key_id:
            raise VerificationFailed(
                f"the key in {self.store.location} does not authenticate as the new key "
                f"{rot.new_key_id} ({check.code or check.key_id})"
            )
        refused_with = self._old_key_refused(rot)
        events = [e for e in self.backend.step_events(rot.id) if e.outcome == "success"]
        counts = Counter(e.step for e in events)
        expected = {name: 1 for name in STEPS[:5]}
        expected[Step.CREATE_KEY] = 1 + len(rot.replaced_key_ids)
        wrong = [f"{k}: {counts.get(k, 0)}" for k, n in expected.items() if counts.get(k, 0) != n]
        if wrong:
            raise VerificationFailed(
                f"the change log does not hold one event per step for rotation {rot.id} "
                f"({'; '.join(wrong)})"
            )
        data = {"oldKeyRefusedWith": refused_with, "events": len(events)}
        return self.backend.complete_step(rot.id, self._held(), "confirm", data)

    def _old_key_refused(self, rot: RotationView) -> str:
        """The old key, read from the store's previous version, must get a 401 (after
        the key cache, at most). Without that version, the key's state must be deleted."""
        try:
            assert rot.store_version_before is not None
            old_value = self.store.read_version(rot.store_version_before).value
        except StoreError:
            view = self.backend.get(rot.id).old_key
            if view is None or view.state != KeyState.DELETED:
                raise VerificationFailed(f"the old key {rot.old_key_id} is not deleted") from None
            return "deleted"
        deadline = self._monotonic() + rot.key_cache_seconds + 2.0
        while True:
            check = self.backend.check_key(old_value)
            if check.status == 401:
                return check.code or "401"
            if self._monotonic() >= deadline:
                raise VerificationFailed(
                    f"the old key still authenticates (status {check.status}) after its deletion"
                )
            self._sleep(0.2)

    def _acquire(self, resuming: RotationView | None) -> RotationView:
        """Starts the rotation, or takes the unfinished one over (a lease: one run at a
        time). Waits, bounded, when a run that stopped still holds it."""
        timing = self.options.timing
        for attempt in (1, 2):
            try:
                rot, self._lease = self.backend.start(
                    self.store.kind,
                    self.store.location,
                    timing,
                    self._lease,
                    self.options.lease_seconds,
                )
                break
            except SearchgateError as exc:
                if exc.code != "rotation_busy":
                    if exc.code == "conflict":
                        raise PreconditionFailed(exc.message) from None
                    raise
                wait = float(exc.details.get("retryAfter") or 0)
                if attempt == 2 or not 0 < wait <= MAX_BUSY_WAIT:
                    raise RunBusy(exc.message) from None
                self._emit(EventKind.WAITING, exc.message, remaining_seconds=wait)
                self._sleep(wait + 0.5)
        self._renewed = self._monotonic()
        self._rot = rot
        if resuming is None:
            self._emit(EventKind.INFO, f"rotation {rot.id} started: replacing key {rot.old_key_id}")
        else:
            self._emit(
                EventKind.INFO,
                f"resuming rotation {rot.id} after step {rot.step} ({step_name(rot.step)})",
            )
            if rot.timing != timing:
                self._emit(
                    EventKind.INFO,
                    "it keeps the waits it started with: quiet "
                    f"{format_duration(rot.timing.quiet)}, probation "
                    f"{format_duration(rot.timing.probation)}, move timeout "
                    f"{format_duration(rot.timing.move_timeout)}",
                )
        return rot

    def _renew(self) -> None:
        if self._monotonic() - self._renewed < self.options.lease_seconds / 3:
            return
        self._acquire_quietly()

    def _acquire_quietly(self) -> None:
        try:
            self._rot, self._lease = self.backend.start(
                self.store.kind,
                self.store.location,
                self.options.timing,
                self._lease,
                self.options.lease_seconds,
            )
        except SearchgateError as exc:
            if exc.code == "rotation_busy":
                raise RunBusy(exc.message) from None
            raise
        self._renewed = self._monotonic()

    def _held(self) -> str:
        assert self._lease is not None, "the rotation is not acquired"
        self._renewed = self._monotonic()
        return self._lease

    def _waits(self) -> WaitContext:
        return WaitContext(
            backend=self.backend,
            emit=self._on_event,
            sleep=self._sleep,
            monotonic=self._monotonic,
            renew=self._renew,
            poll_seconds=self.options.poll_seconds,
            force=self.options.force,
        )

    def _record_failure(self, rot: RotationView, n: int, message: str) -> None:
        if self._lease is None:
            return
        # The error that stopped the run is the one to report, not a failure to record it.
        with contextlib.suppress(SearchgateError):
            self.backend.fail_step(rot.id, self._lease, step_name(n), message)

    def _check_same_store(self, rot: RotationView) -> None:
        if (rot.store_kind, rot.store_location) != (self.store.kind, self.store.location):
            raise PreconditionFailed(
                f"rotation {rot.id} of {rot.store_label} is unfinished (step {rot.step}, "
                f"{step_name(rot.step)}): run with that store to finish it, or to --abort it"
            )

    def _persisted(self, n: int) -> None:
        hook = self.options.crash_after
        if hook and hook in (str(n), step_name(n)):
            os._exit(CRASH_EXIT)

    def _dry_run(self, rot: RotationView | None, expected: str) -> RunResult:
        failure: PreconditionFailed | None = None
        if rot is None or rot.step == 0:
            try:
                check_preconditions(self.backend, self.store, expected)
            except PreconditionFailed as exc:
                failure = exc
        lines = describe_plan(rot, self.store.location, expected, self.options, failure)
        for line in lines:
            self._emit(EventKind.PLAN, line)
        if failure is not None:
            raise failure
        return RunResult(
            RunOutcome.DRY_RUN,
            "nothing was changed (--dry-run)",
            rot.id if rot else None,
            plan=lines,
        )

    def _emit(self, kind: EventKind, message: str, **kw: Any) -> None:
        self._on_event(RotationEvent(kind, message, **kw))


__all__ = ["RotationRunner", "RotationStopped", "RunOptions"]
