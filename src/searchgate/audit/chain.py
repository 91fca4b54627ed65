"""The MAC chain: each event's HMAC-SHA256 covers its fields and the previous MAC.

The key is never stored in the database (``SEARCHGATE_AUDIT_KEY``, the server secrets
store, or the file ``secrets/audit-key`` in the data directory: see
``searchgate.server_secrets``), so whoever can write to the database
but not read the key cannot edit, remove or reorder events without ``verify()``
noticing.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC

import orjson

from searchgate.audit.models import AuditEventRow
from searchgate.clock import aware

GENESIS = "0" * 64
KEY_FILE = "audit-key"


@dataclass(frozen=True)
class AuditKey:
    id: str
    secret: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> AuditKey:
        return cls(id=hashlib.sha256(b"audit-key-id:" + secret).hexdigest()[:12], secret=secret)

    def mac(self, row: AuditEventRow) -> str:
        return hmac.new(self.secret, canonical(row), hashlib.sha256).hexdigest()


def canonical(row: AuditEventRow) -> bytes:
    """Every stored field but the MAC itself, in a fixed order and encoding. The
    sequence number is included, so an event moved to another position fails."""
    at = aware(row.occurred_at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return orjson.dumps(
        [
            "searchgate-audit-v1",
            row.seq,
            at,
            row.actor_kind,
            row.actor_user_id,
            row.actor_name,
            row.actor_email,
            row.actor_token_id,
            row.actor_session_id,
            row.action,
            row.target,
            row.outcome,
            row.ip,
            row.user_agent,
            row.details_json,
            row.key_id,
            row.prev_mac,
        ]
    )


@dataclass(frozen=True)
class Problem:
    seq: int
    kind: str  # edited | missing | out-of-chain | foreign-key | head | anchor
    message: str


@dataclass
class ChainChecker:
    """Walks events in sequence order and collects every problem, each naming the
    event it concerns. Fed one row at a time so that large logs stream."""

    key: AuditKey
    checked: int = 0
    last_seq: int = 0
    last_mac: str = GENESIS

    def __post_init__(self) -> None:
        self.problems: list[Problem] = []

    def feed(self, row: AuditEventRow) -> None:
        gap = row.seq > self.last_seq + 1
        if gap:
            first, last = self.last_seq + 1, row.seq - 1
            which = f"event {first}" if first == last else f"events {first} to {last}"
            self.problems.append(
                Problem(first, "missing", f"{which} missing: deleted from the log")
            )
        if row.key_id != self.key.id:
            self.problems.append(
                Problem(
                    row.seq,
                    "foreign-key",
                    f"event {row.seq} was signed with audit key {row.key_id}, not with "
                    f"this server's key {self.key.id}: wrong key configured, or forged",
                )
            )
        elif not hmac.compare_digest(self.key.mac(row), row.mac):
            self.problems.append(
                Problem(
                    row.seq,
                    "edited",
                    f"event {row.seq}: its contents do not match its MAC "
                    "(edited, or moved here from another position)",
                )
            )
        if not gap and row.prev_mac != self.last_mac:
            self.problems.append(
                Problem(
                    row.seq,
                    "out-of-chain",
                    f"event {row.seq} does not follow event {row.seq - 1} in the chain "
                    "(events reordered or replaced)",
                )
            )
        self.checked += 1
        self.last_seq = row.seq
        self.last_mac = row.mac
