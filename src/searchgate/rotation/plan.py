"""What ``--dry-run`` prints: each remaining step, with the facts it would act on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from searchgate.durations import format_duration
from searchgate.keys.info import KeyState
from searchgate.rotation.backend import RotationView
from searchgate.rotation.common import STEPS, step_name

if TYPE_CHECKING:
    from searchgate.rotation.events import PreconditionFailed
    from searchgate.rotation.runner import RunOptions


def describe_plan(
    rot: RotationView | None,
    location: str,
    old_key: str,
    options: RunOptions,
    failure: PreconditionFailed | None,
) -> tuple[str, ...]:
    timing = rot.timing if rot is not None else options.timing
    quiet, probation = format_duration(timing.quiet), format_duration(timing.probation)
    move = format_duration(timing.move_timeout)
    version = rot.store_version_before if rot is not None else None
    lines: list[str] = []
    if rot is not None:
        lines.append(
            f"rotation {rot.id} is at step {rot.step} ({step_name(rot.step)}); a run resumes "
            f"with step {rot.step + 1}"
        )
    what = {
        "preconditions": (
            "check that the token holds admin:keys:manage and admin:audit:read, that "
            f"{location} is reachable and writable and holds the primary key {old_key}; "
            "take the rotation lock"
            + (f" -> would stop here: {failure.message}" if failure else " -> checks pass now")
        ),
        "create-key": (
            f"create a new primary key with the scopes and restrictions of {old_key}; "
            f"{old_key} keeps working"
        ),
        "store-write": (
            f"write the new key to {location} with check-and-set"
            + (f" on version {version}" if version else " on the version read in step 1")
            + "; the previous version stays for a rollback"
        ),
        "verify": (
            "read the key back from the store, check it with GET /api/v1/keys/self and one "
            "search per collection it may read; then wait (up to "
            f"{move}) until every system seen on the old key in the {quiet} before the "
            "start has made a request with the new key"
            + ("" if not options.force else " (--force: go on without those that do not)")
        ),
        "drain": (
            f"wait until the old key has served no request for {quiet}, disable it, watch "
            f"{probation} of probation for refused requests (any: enable it again and stop"
            + (", unless --force" if not options.force else "; --force: delete anyway")
            + "), then delete it"
        ),
        "confirm": (
            "check the store's key works and the old key is refused (401), check the change "
            "log holds one event per step, and finish"
        ),
    }
    first = rot.step if rot is not None else 0
    for n, name in enumerate(STEPS[first:], start=first + 1):
        lines.append(f"step {n}/6 {name}: {what[name]}")
    return tuple(lines)


def abort_plan(rot: RotationView) -> tuple[str, ...]:
    old = rot.old_key
    if rot.step >= 5 or old is None or old.state == KeyState.DELETED:
        return ("refused: the old key was deleted at step 5; a re-run finishes the rotation",)
    lines = []
    if old.state == KeyState.DISABLED:
        lines.append(f"enable the old key {old.id} again")
    if rot.store_version_before is not None and rot.step >= 2:
        lines.append(
            f"put {rot.store_label} back to the value of version {rot.store_version_before} "
            "(check-and-set), if it holds the new key"
        )
    lines.append(
        f"make {rot.old_key_id} the primary key again"
        + (f", delete the new key {rot.new_key_id}" if rot.new_key_id else "")
        + ", release the lock"
    )
    return tuple(lines)
