"""The three waits of a rotation, judged by the usage data of the keys (per system: the
first request with the new key, the last with the old one):

- move (step 4): every system seen on the old key makes a request with the new one;
- quiet (step 5): the old key serves no request for the quiet period;
- probation (step 5): the disabled old key is refused to nobody.

Every time compared with usage is the server's (``TrafficView.now``), so the clock of
the host the runner runs on does not matter. Usage reaches the database at the next
flush and a disabled key is refused everywhere only after the key cache, so each wait
adds those delays (``RotationView.usage_flush_seconds`` and ``key_cache_seconds``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from searchgate.durations import format_duration
from searchgate.rotation.backend import RotationBackend, RotationView, SystemSeen, TrafficView
from searchgate.rotation.events import EventKind, RotationEvent, SystemsOnOldKey, SystemState

MARGIN = timedelta(milliseconds=500)


@dataclass
class WaitContext:
    backend: RotationBackend
    emit: Callable[[RotationEvent], None]
    sleep: Callable[[float], None]
    monotonic: Callable[[], float]
    renew: Callable[[], None]  # keeps the run's lease on the rotation during long waits
    poll_seconds: float
    force: bool

    def pause(self, remaining: float) -> None:
        self.renew()
        self.sleep(max(0.05, min(self.poll_seconds, remaining)))


def _names(systems: list[SystemSeen]) -> str:
    return ", ".join(sorted(s.system for s in systems))


def wait_moved(ctx: WaitContext, rot: RotationView) -> tuple[list[str], list[str]]:
    """Step 4: waits until each system seen on the old key (within the quiet period
    before the start) has made a request with the new key. Returns (moved, not moved);
    the latter is non-empty only with ``force``."""
    timeout = rot.timing.move_timeout.total_seconds()
    deadline = ctx.monotonic() + timeout
    while True:
        t: TrafficView = ctx.backend.traffic(rot.id)
        on_new = {s.system for s in t.new}
        waiting = [s for s in t.old if s.system not in on_new]
        moved = [s for s in t.old if s.system in on_new]
        # A system missed here (its last old-key request not flushed yet) is caught by
        # the drain: the old key cannot go quiet while it still uses it.
        if not waiting:
            return sorted(s.system for s in moved), []
        now = ctx.monotonic()
        remaining = deadline - now
        if remaining <= 0:
            if ctx.force:
                ctx.emit(
                    RotationEvent(
                        EventKind.WARNING,
                        f"not moved within {format_duration(timeout)}: {_names(waiting)}; "
                        "going on (--force)",
                        step=4,
                    )
                )
                return sorted(s.system for s in moved), sorted(s.system for s in waiting)
            raise SystemsOnOldKey(
                f"these systems used the old key and made no request with the new one within "
                f"{format_duration(timeout)}: {_names(waiting)}. They do not read the key from "
                f"the store {rot.store_label} (or cache it for longer): point them at the "
                "store, then re-run to go on waiting; or --force to go on without them",
                systems=sorted(s.system for s in waiting),
            )
        states = tuple(
            SystemState(
                s.system, "moved" if s.system in on_new else "waiting", s.last_seen_at, s.requests
            )
            for s in sorted(t.old, key=lambda s: s.system)
        )
        ctx.emit(
            RotationEvent(
                EventKind.WAITING,
                f"{len(moved)} of {len(t.old)} systems moved to the new key",
                step=4,
                remaining_seconds=max(0.0, remaining),
                systems=states,
            )
        )
        ctx.pause(remaining)


def wait_quiet(ctx: WaitContext, rot: RotationView) -> datetime:
    """Step 5, first part: waits until the old key has served no request (from anyone
    but the runner itself) for the quiet period, counted from the store write at the
    earliest. Bounded by the move timeout plus the quiet period. Returns the time the
    quiet period began."""
    quiet = rot.timing.quiet
    settle = timedelta(seconds=rot.usage_flush_seconds) + MARGIN
    written = rot.step_at("store-write") or rot.started_at
    bound = (rot.timing.move_timeout + quiet + settle).total_seconds()
    deadline = ctx.monotonic() + bound
    while True:
        t = ctx.backend.traffic(rot.id)
        last = max((s.last_seen_at for s in t.old), default=written)
        since = max(last, written)
        until = since + quiet + settle
        if t.now >= until:
            return since
        active = [s for s in t.old if s.last_seen_at > written]
        if ctx.monotonic() >= deadline:
            if ctx.force:
                ctx.emit(
                    RotationEvent(
                        EventKind.WARNING,
                        f"the old key is still in use by {_names(active)}; disabling it "
                        "anyway (--force)",
                        step=5,
                    )
                )
                return since
            raise SystemsOnOldKey(
                f"the old key was still used after {format_duration(bound)} by "
                f"{_names(active)}: they have not moved to the key in {rot.store_label}; "
                "fix them and re-run (or --force to disable it anyway)",
                systems=sorted(s.system for s in active),
            )
        states = tuple(
            SystemState(
                s.system,
                "active" if s.last_seen_at > t.now - quiet else "quiet",
                s.last_seen_at,
                s.requests,
            )
            for s in sorted(t.old, key=lambda s: s.last_seen_at, reverse=True)
        )
        remaining = (until - t.now).total_seconds()
        ctx.emit(
            RotationEvent(
                EventKind.WAITING,
                f"draining: the old key must stay unused for {format_duration(quiet)}"
                + (f" (last used by {_names(active)})" if active else ""),
                step=5,
                remaining_seconds=remaining,
                systems=states,
            )
        )
        ctx.pause(remaining)


def watch_probation(ctx: WaitContext, rot: RotationView, disabled_at: datetime) -> list[str]:
    """Step 5, second part: the old key is disabled; watches for refused requests until
    the probation (plus the cache and flush delays) is over. Returns the systems that
    were refused. Without ``force`` it returns at the first one: the caller enables the
    key again at once, so that system is broken for as short a time as possible."""
    probation = rot.timing.probation
    settle = timedelta(seconds=rot.usage_flush_seconds + rot.key_cache_seconds) + MARGIN
    until = disabled_at + probation + settle
    while True:
        t = ctx.backend.traffic(rot.id)
        refused = [s for s in t.old if s.last_seen_at >= disabled_at]
        if refused and not ctx.force:
            return sorted(s.system for s in refused)
        if t.now >= until:
            return sorted(s.system for s in refused)
        remaining = (until - t.now).total_seconds()
        ctx.emit(
            RotationEvent(
                EventKind.WAITING,
                "probation: the old key is disabled; watching for systems it breaks"
                + (f" (refused: {_names(refused)})" if refused else ""),
                step=5,
                remaining_seconds=remaining,
                systems=tuple(
                    SystemState(
                        s.system,
                        "refused" if s.last_seen_at >= disabled_at else "quiet",
                        s.last_seen_at,
                        s.requests,
                    )
                    for s in sorted(t.old, key=lambda s: s.system)
                ),
            )
        )
        ctx.pause(remaining)
