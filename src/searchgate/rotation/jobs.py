"""The rotation wizard's background run: one thread per server process drives the
rotation runner, so that its long waits (systems moving to the new key, the quiet
period, probation) never hold a request. The runtime holds the one ``RotationJobs`` of
its process and stops its run before the services shut down; the console's page
launches runs and follows them by polling.

One run at a time in this process; across processes and hosts the rotation service's
lock and lease are the guard (a second run anywhere gets ``rotation_busy``). The run
stops only at the runner's pauses: an abort asked for from the page, or the server
shutting down, is noticed at the next one. A server that stops (or dies) leaves the
rotation as recorded after its last completed step; the page then offers to continue.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from searchgate.accounts.identity import load_identity
from searchgate.clock import Clock, utc_now
from searchgate.errors import Conflict, Forbidden, SearchgateError
from searchgate.permissions import Actor, Permission
from searchgate.rotation.events import (
    AbortRefused,
    EventKind,
    RotationEvent,
    RotationStopped,
    RunOutcome,
    RunResult,
)
from searchgate.rotation.local_backend import LocalBackend
from searchgate.rotation.runner import RotationRunner, RunOptions
from searchgate.secretstores import SecretStore, StoreError

if TYPE_CHECKING:
    from searchgate.runtime import Services
    from searchgate.search.service import SearchService

log = logging.getLogger("searchgate.rotation.jobs")

# Short enough that "continue" after a server restart waits little for the lease of the
# run that died; the runner renews it every third of this during its waits.
LEASE_SECONDS = 15
POLL_SECONDS = 1.0
KEEP_NOTES = 30
# How often the run reads the person's account again (disabled, role changed).
RECHECK_SECONDS = 10.0
STOP_WAIT_SECONDS = 10.0
NEEDED = frozenset({Permission.KEYS_MANAGE, Permission.AUDIT_READ})


class JobMode(StrEnum):
    RUN = "run"  # start or continue
    ABORT = "abort"  # roll back


class JobState(StrEnum):
    RUNNING = "running"
    ABORTING = "aborting"
    # Stopped by an error: the rotation waits to be continued or aborted.
    FAILED = "failed"
    # The server shut down.
    STOPPED = "stopped"


# How a run ended: a RunOutcome of the runner, or JobState.FAILED or STOPPED.


class Cancelled(Exception):
    """Raised from the runner's pauses: an abort was asked for, or the server stops."""


class PersonBackend(LocalBackend):
    """The in-process backend, acting as the person who launched the run.

    The request that launched it checked their recent re-authentication, and that one
    confirmation covers the run: its sensitive calls (deleting the old key after the
    quiet period, an abort) come long after any re-authentication window. Their account
    is read again every RECHECK_SECONDS: a person disabled, or whose role no longer
    holds the permissions, stops the run at its next call."""

    def __init__(self, services: Services, search: SearchService, person: Actor) -> None:
        self._person = person
        self._checked = time.monotonic()
        super().__init__(services, search, person)

    @property
    def actor(self) -> Actor:
        now = time.monotonic()
        if now - self._checked >= RECHECK_SECONDS:
            self._checked = now
            self._recheck()
        return dataclasses.replace(self._person, reauthenticated_at=self.services.audit.clock())

    @actor.setter
    def actor(self, value: Actor) -> None:
        self._person = value

    def _recheck(self) -> None:
        person = self._person
        identity = None
        if person.user_id is not None:
            with self.services.db.read() as s:
                identity = load_identity(s, person.user_id)
        if identity is None or not identity.active or not identity.permissions >= NEEDED:
            raise Forbidden(
                f"{person.name} may no longer rotate keys (the account was disabled or its "
                "role changed): the run stopped; another admin can continue or abort it"
            )


@dataclass(frozen=True)
class Note:
    at: datetime
    kind: EventKind
    message: str
    step: int | None


@dataclass(frozen=True)
class JobView:
    """A run as the page shows it, copied under the lock."""

    mode: JobMode
    state: JobState | RunOutcome  # running, aborting, or how it ended
    started_by: str
    started_at: datetime
    ended_at: datetime | None
    notes: tuple[Note, ...]  # newest first
    waiting: RotationEvent | None  # the wait going on, if any
    waiting_left: float | None  # its remaining seconds, now
    message: str | None  # the result, or the error that stopped the run
    rotation_id: str | None
    abort_requested: bool

    @property
    def active(self) -> bool:
        return self.state in (JobState.RUNNING, JobState.ABORTING)


class _Job:
    def __init__(
        self,
        runner_for: Callable[
            [Callable[[float], None], Callable[[RotationEvent], None]], RotationRunner
        ],
        mode: JobMode,
        started_by: str,
        reason: str | None,
        stopping: threading.Event,
    ) -> None:
        self.mode = mode
        self.started_by = started_by
        self.reason = reason
        self.started_at = utc_now()
        self._stopping = stopping
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._state: JobState | RunOutcome = (
            JobState.ABORTING if mode is JobMode.ABORT else JobState.RUNNING
        )
        self._abort_requested = mode is JobMode.ABORT
        self._notes: deque[Note] = deque(maxlen=KEEP_NOTES)
        self._waiting: tuple[RotationEvent, float] | None = None
        self._ended_at: datetime | None = None
        self._message: str | None = None
        self._rotation_id: str | None = None
        self.runner: RotationRunner = runner_for(self._sleep, self._on_event)
        self.thread = threading.Thread(target=self._main, name="searchgate-rotation", daemon=True)

    # --- what the page sees ----------------------------------------------------------

    def view(self) -> JobView:
        with self._lock:
            waiting, left = None, None
            if self._waiting is not None:
                waiting, stamp = self._waiting
                if waiting.remaining_seconds is not None:
                    left = max(0.0, waiting.remaining_seconds - (time.monotonic() - stamp))
            return JobView(
                mode=self.mode,
                state=self._state,
                started_by=self.started_by,
                started_at=self.started_at,
                ended_at=self._ended_at,
                notes=tuple(reversed(self._notes)),
                waiting=waiting,
                waiting_left=left,
                message=self._message,
                rotation_id=self._rotation_id,
                abort_requested=self._abort_requested,
            )

    def request_abort(self, reason: str | None) -> bool:
        """Asks a run to stop at its next pause and roll back; False when it is
        rolling back already or has ended."""
        with self._lock:
            if self._state != JobState.RUNNING or self._abort_requested:
                return False
            self._abort_requested = True
            self.reason = reason
            self._note(EventKind.INFO, "abort asked for: the run rolls back at its next pause")
        self._wake.set()
        return True

    def wake(self) -> None:
        self._wake.set()

    # --- the thread ------------------------------------------------------------------

    def _main(self) -> None:
        try:
            result = self.runner.abort(self.reason) if self.mode is JobMode.ABORT else self._run()
            self._end(result.outcome, result.message, result.rotation_id)
        except Cancelled:
            self._end(
                JobState.STOPPED,
                "The server stopped while the rotation ran. It is recorded up to its last "
                "completed step: continue it (or abort it) from this page.",
            )
        except (RotationStopped, SearchgateError) as exc:
            self._end(JobState.FAILED, exc.message)
        except StoreError as exc:
            self._end(JobState.FAILED, f"the secret store failed: {exc.message}")
        except Exception:
            # Unexpected: the details go to the server log, never to the page.
            log.exception("rotation run failed")
            self._end(
                JobState.FAILED,
                "the run failed unexpectedly (see the server log); continue or abort",
            )

    def _run(self) -> RunResult:
        try:
            return self.runner.run()
        except Cancelled:
            if self._stopping.is_set():
                raise
        with self._lock:
            self._state = JobState.ABORTING
            self._waiting = None
            self._wake.clear()
        try:
            return self.runner.abort(self.reason)
        except AbortRefused as exc:
            # The old key was deleted before the run reached a pause: there is nothing
            # to go back to, and the new key works. The run finishes instead.
            with self._lock:
                self._state = JobState.RUNNING
                self._abort_requested = False
                self._note(EventKind.WARNING, f"too late to abort: {exc.message}")
            return self.runner.run()

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + max(0.0, seconds)
        while True:
            with self._lock:
                if self._stopping.is_set():
                    raise Cancelled("the server is stopping")
                if self._abort_requested and self._state == JobState.RUNNING:
                    raise Cancelled("abort requested")
                self._wake.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._wake.wait(left)

    def _on_event(self, event: RotationEvent) -> None:
        with self._lock:
            if event.kind == EventKind.WAITING:
                self._waiting = (event, time.monotonic())
                return
            if event.kind in (EventKind.STEP, EventKind.STEP_DONE):
                self._waiting = None
            self._note(event.kind, event.message, event.step)

    def _note(self, kind: EventKind, message: str, step: int | None = None) -> None:
        self._notes.append(Note(utc_now(), kind, message, step))

    def _end(
        self, state: JobState | RunOutcome, message: str, rotation_id: str | None = None
    ) -> None:
        with self._lock:
            self._state = state
            self._message = message
            self._rotation_id = rotation_id
            self._waiting = None
            self._ended_at = utc_now()
        log.info("rotation run ended: %s: %s", state, message)


class RotationJobs:
    """The process's rotation run: at most one at a time, the last one kept
    for the page until another starts."""

    def __init__(self, clock: Clock = utc_now) -> None:
        # The runner judges key ages by the services' clock, as every other check does.
        self._clock = clock
        self._lock = threading.Lock()
        self._job: _Job | None = None
        self._stopping = threading.Event()

    def view(self) -> JobView | None:
        job = self._job
        return job.view() if job is not None else None

    def launch(
        self,
        mode: JobMode,
        person: Actor,
        backend: LocalBackend,
        store: SecretStore,
        options: RunOptions,
        reason: str | None = None,
    ) -> JobView:
        """Starts a run (``mode``: start or continue, or roll back) in a
        thread of its own. Conflict while another run of this process is active."""

        def runner_for(
            sleep: Callable[[float], None], on_event: Callable[[RotationEvent], None]
        ) -> RotationRunner:
            return RotationRunner(backend, store, options, on_event, sleep=sleep, clock=self._clock)

        with self._lock:
            if self._stopping.is_set():
                raise Conflict("the server is stopping; try again when it is back")
            current = self._job
            if current is not None and current.view().active:
                raise Conflict(
                    f"a rotation run started by {current.started_by} is going on in this "
                    "server; wait for it, or abort it"
                )
            job = _Job(runner_for, mode, person.label, reason, self._stopping)
            self._job = job
            job.thread.start()
        return job.view()

    def request_abort(self, reason: str | None) -> bool:
        job = self._job
        return job is not None and job.request_abort(reason)

    def stop(self, timeout: float = STOP_WAIT_SECONDS) -> None:
        """Stops the run at its next pause (the rotation stays recorded as it is)."""
        self._stopping.set()
        job = self._job
        if job is not None:
            job.wake()
            job.thread.join(timeout)

    def wait(self, timeout: float) -> bool:
        """For tests and shutdown: True once no run is active."""
        job = self._job
        if job is None:
            return True
        job.thread.join(timeout)
        return not job.thread.is_alive()
