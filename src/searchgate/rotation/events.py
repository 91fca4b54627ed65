"""What a run reports: progress events (the CLI renders them live, the wizard will show
them on a page), its result, and the errors that stop it, each with an exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from searchgate.errors import SearchgateError

# Exit codes of `searchgate rotate` (docs/api.md, "Admin API: rotation").
EXIT_OK = 0  # finished, nothing to do, dry run, or aborted
EXIT_ERROR = 1  # the server failed or could not be reached; re-run to resume
EXIT_USAGE = 2  # bad options
EXIT_PRECONDITION = 3  # permissions, store not writable, store key is not the primary
EXIT_SYSTEMS = 4  # systems did not move, or still used the old key during probation
EXIT_STORE = 5  # the secret store failed (nothing half done: the old key still works)
EXIT_VERIFY = 6  # the new key did not verify, the old one was not refused, events missing
EXIT_BUSY = 7  # another run drives this rotation
EXIT_IRREVERSIBLE = 8  # --abort after the old key was deleted


class RotationStopped(SearchgateError):
    code = "rotation_stopped"
    exit_code = EXIT_ERROR


class PreconditionFailed(RotationStopped):
    code = "precondition_failed"
    exit_code = EXIT_PRECONDITION


class SystemsOnOldKey(RotationStopped):
    code = "systems_on_old_key"
    exit_code = EXIT_SYSTEMS


class StoreFailed(RotationStopped):
    code = "store_failed"
    exit_code = EXIT_STORE


class VerificationFailed(RotationStopped):
    code = "verification_failed"
    exit_code = EXIT_VERIFY


class RunBusy(RotationStopped):
    code = "rotation_busy"
    exit_code = EXIT_BUSY


class AbortRefused(RotationStopped):
    code = "rotation_irreversible"
    exit_code = EXIT_IRREVERSIBLE


@dataclass(frozen=True)
class SystemState:
    """One system during a wait. ``state``: waiting (not on the new key yet), moved,
    active (used the old key recently), quiet, refused (tried the disabled old key)."""

    system: str
    state: str
    last_seen_at: datetime | None = None
    requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "state": self.state,
            "lastSeenAt": self.last_seen_at.isoformat() if self.last_seen_at else None,
            "requests": self.requests,
        }


class EventKind(StrEnum):
    INFO = "info"
    WARNING = "warning"
    STEP = "step"  # a step begins
    STEP_DONE = "step-done"
    WAITING = "waiting"  # a wait goes on: ``remaining_seconds`` and ``systems``
    PLAN = "plan"  # a dry run's line


@dataclass(frozen=True)
class RotationEvent:
    kind: EventKind
    message: str
    step: int | None = None
    remaining_seconds: float | None = None
    systems: tuple[SystemState, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "step": self.step,
            "remainingSeconds": self.remaining_seconds,
            "systems": [s.to_dict() for s in self.systems],
            "data": self.data,
        }


class RunOutcome(StrEnum):
    FINISHED = "finished"
    ALREADY_FINISHED = "already-finished"  # the last rotation's key is still the primary
    NOTHING_TO_DO = "nothing-to-do"  # the primary key is younger than --if-older-than
    DRY_RUN = "dry-run"
    ABORTED = "aborted"
    NO_ROTATION = "no-rotation"  # nothing to abort


@dataclass(frozen=True)
class RunResult:
    outcome: RunOutcome
    message: str
    rotation_id: str | None = None
    old_key_id: str | None = None
    new_key_id: str | None = None
    plan: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "message": self.message,
            "rotationId": self.rotation_id,
            "oldKeyId": self.old_key_id,
            "newKeyId": self.new_key_id,
            "plan": list(self.plan),
        }
