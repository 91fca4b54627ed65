"""What every secret store offers: a versioned value under the field ``client_key``,
read and written with check-and-set, and errors that say what to do without ever
carrying the secret."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

# The client reads what the stores write: one name for the field, shared with it.
from searchgate_client.sources import FIELD as FIELD


@dataclass(frozen=True)
class SecretVersion:
    """One version of the secret. ``repr`` and ``str`` show the version, never the value,
    so that a logged or printed SecretVersion cannot leak the key."""

    value: str = field(repr=False)
    version: str
    created_at: datetime | None = None

    def __repr__(self) -> str:
        return (
            f"SecretVersion(version={self.version!r}, created_at={self.created_at!r}, "
            "value=<redacted>)"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class SecretFields:
    """One version of a secret that holds several named values (the server secrets:
    ``key_pepper``, ``audit_key``). Shows the field names, never the values."""

    values: Mapping[str, str] = field(repr=False)
    version: str

    def __repr__(self) -> str:
        return f"SecretFields(version={self.version!r}, fields={sorted(self.values)})"

    __str__ = __repr__


@runtime_checkable
class FieldStore(Protocol):
    """A store that can also hold several named values at one path (Vault, AWS, file)."""

    kind: str
    location: str

    def read_fields(self) -> SecretFields: ...

    def create_fields(self, values: Mapping[str, str]) -> SecretFields:
        """Writes ``values`` only when nothing is stored there yet (StoreConflict else)."""
        ...


@runtime_checkable
class SecretStore(Protocol):
    kind: str
    location: str
    writable: bool

    def read(self) -> SecretVersion: ...

    def read_version(self, version: str) -> SecretVersion: ...

    def write(self, value: str, expected_version: str | None) -> SecretVersion: ...

    def restore(self, version: str, expected_version: str) -> SecretVersion: ...

    def check_writable(self) -> None: ...


class StoreError(Exception):
    """A store operation failed. ``message`` says what happened and what to do; it never
    contains a secret (values, tokens, secret ids are redacted before it is built)."""

    code = "store_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class StoreUnavailable(StoreError):
    """Unreachable, timed out, or answering 5xx after the bounded retries."""

    code = "store_unavailable"


class StorePermissionDenied(StoreError):
    code = "store_permission_denied"


class StoreConflict(StoreError):
    """Check-and-set refused: the current version is not the one expected."""

    code = "store_conflict"


class StoreNotFound(StoreError):
    code = "store_not_found"


class StoreMisconfigured(StoreError):
    """The configuration cannot work (missing setting, wrong engine, read-only store)."""

    code = "store_misconfigured"


_MAX_DETAIL = 300


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` from a server or library, fit for an error message: every known secret
    replaced, and cut short so that a long response body cannot smuggle data through."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    text = " ".join(text.split())
    if len(text) > _MAX_DETAIL:
        text = text[:_MAX_DETAIL] + "…"
    return text
