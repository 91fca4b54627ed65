"""Events as read back: the public record type, filters, pages and CSV rows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import or_
from sqlalchemy.sql import Select

from searchgate.audit.encoding import csv_cell, encode_field
from searchgate.audit.models import AuditEventRow
from searchgate.clock import aware
from searchgate.errors import InvalidInput

CSV_COLUMNS = (
    "seq",
    "time",
    "actor_kind",
    "actor_user_id",
    "actor_name",
    "actor_email",
    "token_id",
    "session_id",
    "action",
    "target",
    "outcome",
    "ip",
    "user_agent",
    "details",
    "mac",
)


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    occurred_at: datetime
    actor_kind: str
    actor_user_id: str | None
    actor_name: str
    actor_email: str | None
    actor_token_id: str | None
    actor_session_id: str | None
    action: str
    target: str | None
    outcome: str
    ip: str | None
    user_agent: str | None
    details: dict[str, Any]
    mac: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.occurred_at.isoformat(),
            "actor": {
                "kind": self.actor_kind,
                "userId": self.actor_user_id,
                "name": self.actor_name,
                "email": self.actor_email,
                "tokenId": self.actor_token_id,
                "sessionId": self.actor_session_id,
            },
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "ip": self.ip,
            "userAgent": self.user_agent,
            "details": self.details,
        }

    def csv_row(self) -> list[str]:
        values: list[object] = [
            self.seq,
            self.occurred_at.isoformat(),
            self.actor_kind,
            self.actor_user_id,
            self.actor_name,
            self.actor_email,
            self.actor_token_id,
            self.actor_session_id,
            self.action,
            self.target,
            self.outcome,
            self.ip,
            self.user_agent,
            orjson.dumps(self.details, option=orjson.OPT_SORT_KEYS).decode(),
            self.mac,
        ]
        return [csv_cell(v) for v in values]

    def log_line(self) -> str:
        """One line, whatever the fields hold."""
        parts = [
            f"seq={self.seq}",
            f"action={encode_field(self.action)}",
            f"outcome={self.outcome}",
            f"actor={encode_field(self.actor_name)}",
        ]
        if self.actor_token_id:
            parts.append(f"token={self.actor_token_id}")
        if self.target is not None:
            parts.append(f"target={encode_field(self.target)}")
        if self.ip:
            parts.append(f"ip={encode_field(self.ip)}")
        return "audit " + " ".join(parts)


def event_of(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(
        seq=row.seq,
        occurred_at=aware(row.occurred_at),
        actor_kind=row.actor_kind,
        actor_user_id=row.actor_user_id,
        actor_name=row.actor_name,
        actor_email=row.actor_email,
        actor_token_id=row.actor_token_id,
        actor_session_id=row.actor_session_id,
        action=row.action,
        target=row.target,
        outcome=row.outcome,
        ip=row.ip,
        user_agent=row.user_agent,
        details=orjson.loads(row.details_json),
        mac=row.mac,
    )


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class AuditFilter:
    """All given conditions must hold. ``user``: a user id or email (exact).
    ``action`` and ``target``: exact, or a prefix when they end with ``*``."""

    user: str | None = None
    action: str | None = None
    target: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        # Nothing recorded holds one, and PostgreSQL refuses a NUL in any text it is sent.
        for name in ("user", "action", "target", "outcome"):
            value = getattr(self, name)
            if value is not None and _CONTROL.search(value):
                raise InvalidInput(f"{name}: a filter holds no control characters", field=name)

    def apply(self, q: Select[Any]) -> Select[Any]:
        if self.user:
            q = q.where(
                or_(
                    AuditEventRow.actor_user_id == self.user,
                    AuditEventRow.actor_email == self.user.strip().lower(),
                )
            )
        if self.action:
            q = q.where(_match(AuditEventRow.action, self.action))
        if self.target:
            q = q.where(_match(AuditEventRow.target, self.target))
        if self.outcome:
            q = q.where(AuditEventRow.outcome == self.outcome)
        if self.since is not None:
            q = q.where(AuditEventRow.occurred_at >= self.since)
        if self.until is not None:
            q = q.where(AuditEventRow.occurred_at < self.until)
        return q


def _match(column: Any, pattern: str) -> Any:
    if pattern.endswith("*"):
        prefix = pattern[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return column.like(prefix + "%", escape="\\")
    return column == pattern


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    # Pass as ``before`` for the next (older) page; None on the last page.
    next_before: int | None


def filter_details(filters: AuditFilter) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("user", "action", "target", "outcome"):
        value = getattr(filters, name)
        if value:
            out[name] = value
    for name in ("since", "until"):
        value = getattr(filters, name)
        if value is not None:
            out[name] = value.isoformat()
    return {"filters": out}
