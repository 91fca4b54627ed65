"""The SDK's errors: one base class, so that ``except SearchgateError`` catches them all."""

from __future__ import annotations

from typing import Any


class SearchgateError(Exception):
    """A refused or failed call. ``status`` is the HTTP status (0 when no answer came);
    ``code`` the stable machine-readable code of the server's error body; ``body`` the
    whole parsed error body (upload details, the systems still using a key, ...)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}" if status else f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = body or {}


class SearchgateConnectionError(SearchgateError):
    """No HTTP answer: connection refused, TLS failure, timeout (status 0)."""


class KeySourceError(SearchgateError):
    """The key source failed or returned something that is not a client key (status 0).
    The message never holds what the source returned; the source's own exception, if
    any, is the ``__cause__``."""
