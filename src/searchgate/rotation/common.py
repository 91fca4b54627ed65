"""What the server side and the runner share: step names, options and durations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from searchgate.errors import InvalidInput

# The runner names itself so in X-Searchgate-System: its own checks with the old and
# the new key are not mistaken for a system that still has to move, nor for a use of
# the key (usage leaves them out of the systems seen and of the last use).
from searchgate.keys.usage_models import ROTATION_SYSTEM as ROTATION_SYSTEM


class Step(StrEnum):
    """The six steps, in order; a rotation's ``step`` is the number of the last one done."""

    PRECONDITIONS = "preconditions"
    CREATE_KEY = "create-key"
    STORE_WRITE = "store-write"
    VERIFY = "verify"
    DRAIN = "drain"
    CONFIRM = "confirm"


STEPS: tuple[Step, ...] = tuple(Step)
STEP_TITLES: dict[str, str] = {
    Step.PRECONDITIONS: "check the caller, the store and the current key",
    Step.CREATE_KEY: "create a new primary key (the old one keeps working)",
    Step.STORE_WRITE: "write the new key to the secret store (check-and-set)",
    Step.VERIFY: "verify the new key and wait for the systems to move",
    Step.DRAIN: "drain, disable (probation) and delete the old key",
    Step.CONFIRM: "confirm the new key works and the old one is refused",
}


class RotationStatus(StrEnum):
    """A rotation's ``status`` column."""

    RUNNING = "running"
    FAILED = "failed"  # stopped by an error; still holds the lock: re-run or abort
    FINISHED = "finished"
    ABORTED = "aborted"


UNFINISHED = (RotationStatus.RUNNING, RotationStatus.FAILED)


def step_number(name: str) -> int:
    """1 to 6 for a step name or number (``"3"``); InvalidInput otherwise."""
    if name.isdigit() and 1 <= int(name) <= len(STEPS):
        return int(name)
    if name in STEPS:
        return STEPS.index(name) + 1
    raise InvalidInput(
        f"unknown step {name!r}: one of {', '.join(STEPS)} (or 1 to 6)", field="step"
    )


def step_name(number: int) -> str:
    return STEPS[number - 1] if 1 <= number <= len(STEPS) else "start"


@dataclass(frozen=True)
class Timing:
    """The waits of a rotation, fixed when it starts (a resumed run keeps them)."""

    quiet: timedelta = timedelta(minutes=15)
    probation: timedelta = timedelta(minutes=5)
    move_timeout: timedelta = timedelta(minutes=30)

    LIMIT = timedelta(days=7)

    def __post_init__(self) -> None:
        for name in ("quiet", "probation", "move_timeout"):
            value: timedelta = getattr(self, name)
            if not timedelta(0) <= value <= self.LIMIT:
                raise InvalidInput(
                    f"{name.replace('_', ' ')} is between 0 and 7 days, not {value}",
                    field=_CAMEL[name],
                )

    def to_dict(self) -> dict[str, float]:
        return {_CAMEL[k]: getattr(self, k).total_seconds() for k in _CAMEL}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Timing:
        values: dict[str, timedelta] = {}
        for name, camel in _CAMEL.items():
            raw = d.get(camel)
            if raw is None:
                continue
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise InvalidInput(f"{camel} is a number of seconds", field=camel)
            values[name] = timedelta(seconds=float(raw))
        return cls(**values)


_CAMEL = {
    "quiet": "quietSeconds",
    "probation": "probationSeconds",
    "move_timeout": "moveTimeoutSeconds",
}
