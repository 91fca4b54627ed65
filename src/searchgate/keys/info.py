"""What a client key is, as services and pages see it: never the secret."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from searchgate.clock import aware
from searchgate.keys.models import ClientKeyRow
from searchgate.keys.restrictions import Restrictions
from searchgate.keys.scopes import Scope


class KeyState(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"
    EXPIRED = "expired"
    DELETED = "deleted"


@dataclass(frozen=True)
class KeyInfo:
    id: str
    name: str
    display_prefix: str
    scopes: frozenset[Scope]
    restrictions: Restrictions
    created_at: datetime
    created_by: str
    primary: bool
    retiring_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None
    deleted_at: datetime | None
    last_used_at: datetime | None
    last_ip: str | None
    last_system: str | None
    public_key_id: str | None
    public_key: bytes | None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def state(self, now: datetime) -> KeyState:
        if self.deleted:
            return KeyState.DELETED
        if self.disabled:
            return KeyState.DISABLED
        if self.restrictions.expired(now):
            return KeyState.EXPIRED
        return KeyState.ACTIVE

    def usable(self, now: datetime) -> bool:
        return self.state(now) is KeyState.ACTIVE

    def age_days(self, now: datetime) -> float:
        return (now - self.created_at).total_seconds() / 86400

    def to_dict(self, now: datetime) -> dict[str, Any]:
        def iso(at: datetime | None) -> str | None:
            return at.isoformat() if at is not None else None

        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.display_prefix,
            "scopes": sorted(s.value for s in self.scopes),
            **self.restrictions.to_dict(),
            "primary": self.primary,
            "retiring": self.retiring_since is not None,
            "retiringSince": iso(self.retiring_since),
            "state": self.state(now),
            "createdAt": iso(self.created_at),
            "createdBy": self.created_by,
            "disabledAt": iso(self.disabled_at),
            "disabledReason": self.disabled_reason,
            "deletedAt": iso(self.deleted_at),
            "lastUsedAt": iso(self.last_used_at),
            "lastIp": self.last_ip,
            "lastSystem": self.last_system,
            "browserTokenKeyId": self.public_key_id,
        }


@dataclass(frozen=True)
class CreatedKey:
    info: KeyInfo
    secret: str  # shown once; never stored, logged or recorded
    replaced: KeyInfo | None = None  # the key that was primary before, if any


def _opt(at: datetime | None) -> datetime | None:
    return aware(at) if at is not None else None


def info_of(row: ClientKeyRow) -> KeyInfo:
    known = {s.value for s in Scope}
    collections = row.collections
    return KeyInfo(
        id=row.id,
        name=row.name,
        display_prefix=row.display_prefix,
        scopes=frozenset(Scope(s) for s in row.scopes if s in known),
        restrictions=Restrictions(
            collections=frozenset(collections) if collections is not None else None,
            expires_at=_opt(row.expires_at),
            ip_ranges=tuple(ipaddress.ip_network(n, strict=False) for n in row.ip_ranges or ()),
            origins=frozenset(row.origins or ()),
            rate_limit_per_minute=row.rate_limit_per_minute,
        ),
        created_at=aware(row.created_at),
        created_by=row.created_by or "",
        primary=bool(row.is_primary),
        retiring_since=_opt(row.retiring_since),
        disabled_at=_opt(row.disabled_at),
        disabled_reason=row.disabled_reason,
        deleted_at=_opt(row.deleted_at),
        last_used_at=_opt(row.last_used_at),
        last_ip=row.last_ip,
        last_system=row.last_system,
        public_key_id=row.public_key_id,
        public_key=row.public_key,
    )
