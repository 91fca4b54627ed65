"""What the rotation wizard shows, built from the rotation service's state: the six
steps with what each recorded, the traffic of the old and the new key by system, the
configured store, and step 1's preconditions one by one (the run checks them again)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from searchgate.config import Settings
from searchgate.keys.info import KeyInfo
from searchgate.keys.service import KeyService
from searchgate.keys.usage import SystemUse
from searchgate.permissions import Actor
from searchgate.rotation.common import STEP_TITLES, STEPS, UNFINISHED
from searchgate.rotation.jobs import NEEDED
from searchgate.rotation.service import Overview, RotationInfo, Traffic
from searchgate.rotation.waits import MARGIN
from searchgate.secretstores import SecretStore, StoreError, StoreNotFound, open_store

_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?\+00:00$")

# What each step records (rotation.state), as the page labels it.
FACT_LABELS = {
    "storeVersionBefore": "store version before",
    "storeKeyId": "key in the store",
    "newKeyId": "new key",
    "replacesUnused": "replaced an unused key",
    "storeVersionAfter": "store version after",
    "collections": "collections searched",
    "moved": "systems moved",
    "notMoved": "systems not moved",
    "forced": "forced",
    "searchSkipped": "search skipped (no search scope)",
    "quietSince": "quiet since",
    "disabledAt": "disabled at",
    "refused": "refused during probation",
    "oldKeyRefusedWith": "old key refused with",
    "events": "change-log events",
    "note": "note",
}


@dataclass(frozen=True)
class StoreState:
    kind: str | None  # as configured
    path: str | None
    store: SecretStore | None  # opened; nothing has talked to the store yet
    problem: str | None  # why it could not be opened

    @property
    def configured(self) -> bool:
        return bool(self.kind and self.path)


def configured_store(settings: Settings) -> StoreState:
    kind, path = settings.rotation_store_kind, settings.rotation_store_path
    if not kind or not path:
        return StoreState(kind, path, None, None)
    try:
        return StoreState(kind, path, open_store(kind, path), None)
    except StoreError as exc:
        return StoreState(kind, path, None, exc.message)


@dataclass(frozen=True)
class Check:
    label: str
    ok: bool
    detail: str
    # For the store check that failed: the way back the page offers ("store": put the
    # primary key in the store; with ``stored``, also make that key primary again).
    fix: str | None = None
    stored: KeyInfo | None = None


@dataclass(frozen=True)
class StepRow:
    number: int
    name: str
    title: str
    state: str  # done, running, failed, next, pending
    at: str | None
    facts: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SystemRow:
    system: str
    old: SystemUse | None
    new: SystemUse | None

    @property
    def state(self) -> str:
        if self.new is not None:
            return "moved" if self.old is not None else "new key only"
        return "old key only"


def _fact(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    text = str(value)
    if _ISO_TIME.match(text):
        return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M:%S UTC")
    return text


def step_rows(rot: RotationInfo | None, run_active: bool) -> list[StepRow]:
    done = rot.step if rot is not None else 0
    unfinished = rot is None or rot.status in UNFINISHED
    rows = []
    for n, name in enumerate(STEPS, start=1):
        data = dict(rot.steps.get(name, {})) if rot is not None else {}
        at = data.pop("at", None)
        if n <= done:
            state = "done"
        elif n == done + 1 and unfinished and run_active:
            state = "running"
        elif n == done + 1 and rot is not None and rot.status == "failed":
            state = "failed"
        elif n == done + 1 and rot is not None and unfinished:
            state = "next"
        else:
            state = "pending"
        facts = tuple((FACT_LABELS.get(k, k), _fact(v)) for k, v in data.items())
        rows.append(StepRow(n, name, STEP_TITLES[name], state, at, facts))
    return rows


def system_rows(traffic: Traffic) -> list[SystemRow]:
    old = {u.system: u for u in traffic.old}
    new = {u.system: u for u in traffic.new}
    return [SystemRow(s, old.get(s), new.get(s)) for s in sorted(old.keys() | new.keys())]


@dataclass(frozen=True)
class Drain:
    """Step 5's waits, as the usage data stands: read from the database, so that every
    server process shows the same, whichever drives the run."""

    phase: str  # quiet (the old key must stay unused) or probation (it is disabled)
    left: float  # seconds, at least 0


def drain_left(rot: RotationInfo, traffic: Traffic) -> Drain | None:
    """The waits of wait_quiet and watch_probation (rotation.waits), with their delays
    for the usage flush and the key cache, while step 5 is under way."""
    old = rot.old_key
    if rot.status not in UNFINISHED or rot.step != 4 or old is None or old.deleted:
        return None
    flush = timedelta(seconds=rot.usage_flush_seconds)
    if old.disabled_at is not None:
        cache = timedelta(seconds=rot.key_cache_seconds)
        until = old.disabled_at + rot.timing.probation + flush + cache + MARGIN
        return Drain("probation", max(0.0, (until - traffic.now).total_seconds()))
    written_at = rot.steps.get("store-write", {}).get("at")
    written = datetime.fromisoformat(written_at) if written_at else rot.started_at
    since = max([written, *(u.last_seen_at for u in traffic.old)])
    until = since + rot.timing.quiet + flush + MARGIN
    return Drain("quiet", max(0.0, (until - traffic.now).total_seconds()))


def preconditions(
    keys: KeyService, actor: Actor, store: SecretStore, overview: Overview, now: datetime
) -> list[Check]:
    """Step 1's preconditions, each on its own line."""
    missing = sorted(p.value for p in NEEDED if not actor.has(p))
    checks = [
        Check(
            "Your role may rotate keys",
            not missing,
            "lacks " + ", ".join(missing)
            if missing
            else "admin:keys:manage, and admin:audit:read for the change-log check",
        )
    ]
    primary = overview.primary
    usable = primary is not None and primary.usable(now)
    checks.append(
        Check(
            "There is a usable primary key",
            usable,
            f"{primary.name} ({primary.display_prefix}…)"
            if primary is not None and usable
            else "make a working key primary in Key Management first",
        )
    )
    rot = overview.rotation
    checks.append(
        Check(
            "No rotation is in progress",
            rot is None,
            "none" if rot is None else f"{rot.id} is at step {rot.step}: continue or abort it",
        )
    )
    checks.append(_writable(store))
    checks.append(_holds_primary(keys, store, overview))
    return checks


def _writable(store: SecretStore) -> Check:
    label = "The store is reachable and writable"
    if not store.writable:
        return Check(label, False, f"{store.location} is read-only; use a vault, aws or file store")
    try:
        store.check_writable()
    except StoreError as exc:
        return Check(label, False, exc.message)
    return Check(label, True, store.location)


def _holds_primary(keys: KeyService, store: SecretStore, overview: Overview) -> Check:
    label = "The store holds the current primary key"
    try:
        current = store.read()
    except StoreNotFound:
        return Check(
            label,
            False,
            "it holds no key yet: write the primary key there (below), or with "
            f"searchgate store write --store {store.kind} --path …",
            fix="store",
        )
    except StoreError as exc:
        return Check(label, False, exc.message)
    # The value is only handed to the key service: the page names its key, nothing more.
    info = keys.verify(current.value)
    primary = overview.primary
    if info is None:
        return Check(
            label,
            False,
            f"version {current.version} is not a key of this server: write the primary key "
            "there (below)",
            fix="store",
        )
    if primary is None or info.id != primary.id:
        usable = not info.deleted and info.usable(keys.clock())
        return Check(
            label,
            False,
            f"version {current.version} holds {info.name} ({info.display_prefix}…), not the "
            "primary key (was a new primary key made by hand?): systems reading the store "
            "do not use the key a rotation would replace. Write the primary key to the store"
            + (f", or make {info.name} the primary key again (below)" if usable else " (below)"),
            fix="store",
            stored=info if usable else None,
        )
    return Check(label, True, f"version {current.version}: {info.name}")
