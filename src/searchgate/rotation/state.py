"""A rotation's persisted state as the service hands it out, what each step may
record, and the row helpers the service uses inside its transactions."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from searchgate.clock import aware
from searchgate.errors import Conflict, InvalidInput, NotFound
from searchgate.keys.info import KeyInfo, info_of
from searchgate.keys.models import ClientKeyRow
from searchgate.keys.usage import SystemUse
from searchgate.rotation.common import STEPS, UNFINISHED, RotationStatus, Timing, step_name
from searchgate.rotation.models import RotationRow

WRITABLE_KINDS = ("vault", "aws", "file")
LEASE_MIN, LEASE_MAX = 2, 3600
_KEY_SHAPED = re.compile(r"sg[kp]_[0-9A-Za-z]{16,}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RotationBusy(Conflict):
    """Another run drives this rotation (its lease is fresh), or took it over."""

    code = "rotation_busy"


class RotationIrreversible(Conflict):
    code = "rotation_irreversible"


def lease_digest(lease: str) -> str:
    return hashlib.sha256(lease.encode()).hexdigest()


def clean_text(text: str, size: int) -> str:
    """Free text from a runner, fit for the change log: no key-shaped strings (a
    message quoting a key must not put it there), no control characters."""
    return _CONTROL.sub(" ", _KEY_SHAPED.sub("[redacted]", text)).strip()[:size]


@dataclass(frozen=True)
class RotationInfo:
    id: str
    status: str
    step: int
    store_kind: str
    store_location: str
    old_key_id: str
    new_key_id: str | None
    replaced_key_ids: tuple[str, ...]
    store_version_before: str | None
    store_version_after: str | None
    timing: Timing
    steps: dict[str, dict[str, Any]]
    started_by: str
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    last_error: str | None
    lease_expires_at: datetime | None
    lease_holder: str | None
    lease_seconds: int
    old_key: KeyInfo | None
    new_key: KeyInfo | None
    usage_flush_seconds: float
    key_cache_seconds: float

    def to_dict(self, now: datetime) -> dict[str, Any]:
        def iso(at: datetime | None) -> str | None:
            return at.isoformat() if at is not None else None

        return {
            "id": self.id,
            "status": self.status,
            "step": self.step,
            "stepName": step_name(self.step),
            "nextStep": STEPS[self.step] if self.step < len(STEPS) else None,
            "store": {"kind": self.store_kind, "location": self.store_location},
            "oldKeyId": self.old_key_id,
            "newKeyId": self.new_key_id,
            "replacedKeyIds": list(self.replaced_key_ids),
            "oldKey": self.old_key.to_dict(now) if self.old_key else None,
            "newKey": self.new_key.to_dict(now) if self.new_key else None,
            "storeVersionBefore": self.store_version_before,
            "storeVersionAfter": self.store_version_after,
            "options": self.timing.to_dict(),
            "steps": self.steps,
            "startedBy": self.started_by,
            "startedAt": iso(self.started_at),
            "updatedAt": iso(self.updated_at),
            "finishedAt": iso(self.finished_at),
            "lastError": self.last_error,
            "lease": {
                "expiresAt": iso(self.lease_expires_at),
                "holder": self.lease_holder,
                "seconds": self.lease_seconds,
            },
            # What the runner adds to its waits: usage reaches the database only at the
            # next flush, and a disabled key is refused everywhere only after the cache.
            "delays": {
                "usageFlushSeconds": self.usage_flush_seconds,
                "keyCacheSeconds": self.key_cache_seconds,
            },
        }


@dataclass(frozen=True)
class Started:
    info: RotationInfo
    lease: str  # handed to the run that started or resumed; only its digest is stored
    created: bool


@dataclass(frozen=True)
class Overview:
    rotation: RotationInfo | None
    primary: KeyInfo | None
    max_key_age_days: int
    # The latest finished rotation: a run that finds the key it made still primary
    # says so instead of starting another one.
    last_finished: RotationInfo | None
    # How long a key must serve no request before an ordinary deletion (KeyService):
    # a rotation whose quiet period is shorter is warned about, and its deletion says so.
    deletion_check_seconds: float


@dataclass(frozen=True)
class Traffic:
    """Systems seen on the old key since ``since`` (the quiet period before the start)
    and on the new key, the runner's own checks left out."""

    old: list[SystemUse]
    new: list[SystemUse]
    since: datetime
    now: datetime


# What each step records: field -> (kind, required). Kinds: str, strs (list of str),
# bool, int. Anything else is refused, so the change log holds only what is described.
_STEP_FIELDS: dict[int, dict[str, tuple[str, bool]]] = {
    1: {"storeVersionBefore": ("str", True), "storeKeyId": ("str", True)},
    3: {"storeVersionAfter": ("str", True)},
    4: {
        "collections": ("strs", True),
        "moved": ("strs", True),
        "notMoved": ("strs", True),
        "forced": ("bool", False),
        "searchSkipped": ("bool", False),
    },
    5: {
        "disabledAt": ("str", False),
        "quietSince": ("str", False),
        "refused": ("strs", True),
        "forced": ("bool", False),
    },
    6: {"oldKeyRefusedWith": ("str", True), "events": ("int", True), "note": ("str", False)},
}


def check_fields(n: int, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidInput("data is a JSON object", field="data")
    spec = _STEP_FIELDS[n]
    unknown = sorted(set(data) - set(spec))
    if unknown:
        raise InvalidInput(
            f"step {step_name(n)} records {', '.join(sorted(spec))}; not {', '.join(unknown)}",
            field=f"data.{unknown[0]}",
        )
    out: dict[str, Any] = {}
    for name, (kind, required) in spec.items():
        value = data.get(name)
        if value is None:
            if required:
                raise InvalidInput(f"step {step_name(n)} needs {name}", field=f"data.{name}")
            continue
        ok = {
            "str": isinstance(value, str) and 0 < len(value) <= 200,
            "strs": isinstance(value, list)
            and len(value) <= 500
            and all(isinstance(v, str) and 0 < len(v) <= 200 for v in value),
            "bool": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool) and value >= 0,
        }[kind]
        if not ok:
            what = {
                "str": "a string of 1 to 200 characters",
                "strs": "a list of up to 500 such strings",
                "bool": "true or false",
                "int": "a whole number",
            }[kind]
            raise InvalidInput(f"{name} is {what}", field=f"data.{name}")
        out[name] = [clean_text(v, 200) for v in value] if kind == "strs" else value
        if kind == "str":
            out[name] = clean_text(value, 200)
    return out


def check_store(kind: str, location: str) -> tuple[str, str]:
    kind = (kind or "").strip().lower()
    if kind == "env":
        raise InvalidInput(
            "the env store is read-only: a rotation writes the new key, so it needs a "
            f"writable store ({', '.join(WRITABLE_KINDS)})",
            field="store.kind",
        )
    if kind not in WRITABLE_KINDS:
        raise InvalidInput(f"store.kind is one of {', '.join(WRITABLE_KINDS)}", field="store.kind")
    location = (location or "").strip()
    if not 0 < len(location) <= 512 or _CONTROL.search(location):
        raise InvalidInput(
            "store.location is the printable store location, 1 to 512 characters",
            field="store.location",
        )
    if _KEY_SHAPED.search(location):
        raise InvalidInput(
            "store.location looks like it holds a key; send where the key is, never the key",
            field="store.location",
        )
    return kind, location


def evidence(s: Session, row: RotationRow, n: int, data: dict[str, Any], now: datetime) -> None:
    """What the server can see for itself before it records step ``n``."""
    old = s.get(ClientKeyRow, row.old_key_id)
    new = s.get(ClientKeyRow, row.new_key_id) if row.new_key_id else None
    if n == 1:
        if data["storeKeyId"] != row.old_key_id:
            raise Conflict(
                f"the store holds key {data['storeKeyId']}, not the primary key "
                f"{row.old_key_id} this rotation replaces",
                field="data.storeKeyId",
            )
        if old is None or not old.is_primary or not info_of(old).usable(now):
            raise Conflict(f"key {row.old_key_id} is no longer the usable primary key")
    if n >= 3 and (new is None or new.deleted_at is not None or not new.is_primary):
        raise Conflict(f"the new key {row.new_key_id} is not the primary key any more")
    if n == 3 and data["storeVersionAfter"] == row.store_version_before:
        raise InvalidInput(
            "storeVersionAfter must differ from the version before the write",
            field="data.storeVersionAfter",
        )
    if n >= 5 and old is not None and old.deleted_at is None:
        raise Conflict(f"the old key {row.old_key_id} is not deleted yet")


def ids(row: RotationRow) -> dict[str, Any]:
    return {
        "oldKeyId": row.old_key_id,
        "newKeyId": row.new_key_id,
        "storeVersionBefore": row.store_version_before,
        "storeVersionAfter": row.store_version_after,
    }


def close(row: RotationRow, status: RotationStatus, now: datetime) -> None:
    row.status = status
    row.active = None
    row.finished_at = now
    row.updated_at = now
    row.lease_digest = None
    row.lease_expires_at = None


def active_row(s: Session) -> RotationRow | None:
    return s.scalar(select(RotationRow).where(RotationRow.active == 1))


def last_finished_row(s: Session) -> RotationRow | None:
    return s.scalar(
        select(RotationRow)
        .where(RotationRow.status == RotationStatus.FINISHED)
        .order_by(RotationRow.finished_at.desc(), RotationRow.id.desc())
        .limit(1)
    )


def find_row(s: Session, rotation_id: str) -> RotationRow:
    row = s.get(RotationRow, rotation_id) if len(rotation_id) <= 32 else None
    if row is None:
        raise NotFound(f"no rotation {rotation_id!r}")
    return row


def unfinished_row(s: Session, rotation_id: str) -> RotationRow:
    row = find_row(s, rotation_id)
    if row.status not in UNFINISHED:
        raise Conflict(f"rotation {row.id} is {row.status}", rotationId=row.id)
    return row


def primary_row(s: Session) -> ClientKeyRow | None:
    return s.scalar(
        select(ClientKeyRow).where(
            ClientKeyRow.is_primary.is_(True), ClientKeyRow.deleted_at.is_(None)
        )
    )


def rotation_info(
    s: Session, row: RotationRow, usage_flush_seconds: float, key_cache_seconds: float
) -> RotationInfo:
    def key(key_id: str | None) -> KeyInfo | None:
        found = s.get(ClientKeyRow, key_id) if key_id else None
        return info_of(found) if found is not None else None

    return RotationInfo(
        id=row.id,
        status=row.status,
        step=row.step,
        store_kind=row.store_kind,
        store_location=row.store_location,
        old_key_id=row.old_key_id,
        new_key_id=row.new_key_id,
        replaced_key_ids=tuple(row.replaced_key_ids),
        store_version_before=row.store_version_before,
        store_version_after=row.store_version_after,
        timing=Timing.from_dict(row.options),
        steps=row.steps,
        started_by=row.started_by,
        started_at=aware(row.started_at),
        updated_at=aware(row.updated_at),
        finished_at=aware(row.finished_at) if row.finished_at else None,
        last_error=row.last_error,
        lease_expires_at=aware(row.lease_expires_at) if row.lease_expires_at else None,
        lease_holder=row.lease_holder,
        lease_seconds=row.lease_seconds,
        old_key=key(row.old_key_id),
        new_key=key(row.new_key_id),
        usage_flush_seconds=usage_flush_seconds,
        key_cache_seconds=key_cache_seconds,
    )
