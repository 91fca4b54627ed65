"""What the runner needs from the server, as a protocol with two implementations:
``HttpBackend`` (the admin API, for the CLI on any host) and ``LocalBackend`` (the
services in-process, for the console's wizard and tests). Both hand back the same plain
views, parsed from the same JSON, and raise ``SearchgateError``s with the API's codes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from searchgate.errors import SearchgateError
from searchgate.rotation.common import Timing


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    at = datetime.fromisoformat(value)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _time(value: Any) -> datetime:
    at = parse_time(value)
    if at is None:
        raise ValueError(f"expected an ISO time, got {value!r}")
    return at


class ApiError(SearchgateError):
    """An error answer of the server, with its status and code kept."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class KeyView:
    id: str
    name: str
    state: str  # active | disabled | expired | deleted
    primary: bool
    created_at: datetime
    disabled_at: datetime | None
    deleted_at: datetime | None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KeyView:
        return cls(
            id=str(d["id"]),
            name=str(d["name"]),
            state=str(d["state"]),
            primary=bool(d.get("primary")),
            created_at=_time(d["createdAt"]),
            disabled_at=parse_time(d.get("disabledAt")),
            deleted_at=parse_time(d.get("deletedAt")),
        )


@dataclass(frozen=True)
class RotationView:
    id: str
    status: str
    step: int
    store_kind: str
    store_location: str
    old_key_id: str
    new_key_id: str | None
    replaced_key_ids: tuple[str, ...]
    old_key: KeyView | None
    new_key: KeyView | None
    store_version_before: str | None
    store_version_after: str | None
    timing: Timing
    steps: dict[str, dict[str, Any]]
    started_at: datetime
    finished_at: datetime | None
    last_error: str | None
    lease_holder: str | None
    usage_flush_seconds: float
    key_cache_seconds: float

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RotationView:
        delays = d.get("delays") or {}
        return cls(
            id=str(d["id"]),
            status=str(d["status"]),
            step=int(d["step"]),
            store_kind=str(d["store"]["kind"]),
            store_location=str(d["store"]["location"]),
            old_key_id=str(d["oldKeyId"]),
            new_key_id=d.get("newKeyId"),
            replaced_key_ids=tuple(d.get("replacedKeyIds") or ()),
            old_key=KeyView.from_dict(d["oldKey"]) if d.get("oldKey") else None,
            new_key=KeyView.from_dict(d["newKey"]) if d.get("newKey") else None,
            store_version_before=d.get("storeVersionBefore"),
            store_version_after=d.get("storeVersionAfter"),
            timing=Timing.from_dict(d.get("options") or {}),
            steps=dict(d.get("steps") or {}),
            started_at=_time(d["startedAt"]),
            finished_at=parse_time(d.get("finishedAt")),
            last_error=d.get("lastError"),
            lease_holder=(d.get("lease") or {}).get("holder"),
            usage_flush_seconds=float(delays.get("usageFlushSeconds", 2.0)),
            key_cache_seconds=float(delays.get("keyCacheSeconds", 1.0)),
        )

    def step_at(self, name: str) -> datetime | None:
        return parse_time((self.steps.get(name) or {}).get("at"))

    @property
    def store_label(self) -> str:
        """Store locations name their kind already ("vault:secret/...")."""
        return self.store_location


@dataclass(frozen=True)
class CurrentView:
    rotation: RotationView | None
    primary: KeyView | None
    max_key_age_days: int
    last_finished: RotationView | None = None
    # None from a server that does not say (it predates the field).
    deletion_check_seconds: float | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CurrentView:
        check = d.get("deletionCheckSeconds")
        return cls(
            rotation=RotationView.from_dict(d["rotation"]) if d.get("rotation") else None,
            primary=KeyView.from_dict(d["primary"]) if d.get("primary") else None,
            max_key_age_days=int(d.get("maxKeyAgeDays") or 90),
            last_finished=(
                RotationView.from_dict(d["lastFinished"]) if d.get("lastFinished") else None
            ),
            deletion_check_seconds=float(check) if check is not None else None,
        )


@dataclass(frozen=True)
class SystemSeen:
    system: str
    first_seen_at: datetime
    last_seen_at: datetime
    requests: int

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SystemSeen:
        return cls(
            system=str(d["system"]),
            first_seen_at=_time(d["firstSeenAt"]),
            last_seen_at=_time(d["lastSeenAt"]),
            requests=int(d.get("requests") or 0),
        )


@dataclass(frozen=True)
class TrafficView:
    old: list[SystemSeen]
    new: list[SystemSeen]
    now: datetime  # the server's clock: every time compared with usage is the server's

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrafficView:
        return cls(
            old=[SystemSeen.from_dict(x) for x in d.get("oldKey") or []],
            new=[SystemSeen.from_dict(x) for x in d.get("newKey") or []],
            now=_time(d["now"]),
        )


@dataclass(frozen=True)
class KeyCheck:
    """What ``GET /api/v1/keys/self`` answered for a key."""

    status: int
    key_id: str | None = None
    code: str | None = None
    scopes: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class StepEvent:
    seq: int
    step: str
    outcome: str


class RotationBackend(Protocol):
    where: str  # printable: the server URL, or "in-process"

    def permissions(self) -> frozenset[str]: ...

    def current(self) -> CurrentView: ...

    def get(self, rotation_id: str) -> RotationView: ...

    def start(
        self, kind: str, location: str, timing: Timing, lease: str | None, lease_seconds: int
    ) -> tuple[RotationView, str]: ...

    def create_key(
        self, rotation_id: str, lease: str, replace_unused: str | None
    ) -> tuple[RotationView, str]: ...

    def complete_step(
        self, rotation_id: str, lease: str, step: str, data: dict[str, Any]
    ) -> RotationView: ...

    def fail_step(self, rotation_id: str, lease: str, step: str, message: str) -> RotationView: ...

    def abort(
        self, rotation_id: str, lease: str, reason: str | None, restored: str | None
    ) -> RotationView: ...

    def finish(self, rotation_id: str, lease: str) -> RotationView: ...

    def traffic(self, rotation_id: str) -> TrafficView: ...

    def disable_key(self, key_id: str, reason: str) -> None: ...

    def enable_key(self, key_id: str) -> None: ...

    def check_key(self, secret: str) -> KeyCheck: ...

    def readable_collections(self, secret: str) -> list[str]: ...

    def search_status(self, secret: str, collection: str) -> int: ...

    def step_events(self, rotation_id: str) -> list[StepEvent]: ...
