"""Errors raised by services. They carry a machine-readable code and a message a
person can act on; the web layers map each class to a status code."""

from __future__ import annotations

from math import ceil
from typing import Any


class SearchgateError(Exception):
    code = "error"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        body.update(self.details)
        return body


class InvalidInput(SearchgateError):
    code = "invalid_request"


class NotFound(SearchgateError):
    code = "not_found"


class Conflict(SearchgateError):
    code = "conflict"


class LimitExceeded(SearchgateError):
    code = "limit_exceeded"


class PayloadTooLarge(SearchgateError):
    code = "payload_too_large"


class UploadRejected(SearchgateError):
    """``failOnFirstError`` upload with an invalid record: nothing was applied."""

    code = "upload_rejected"


class Unavailable(SearchgateError):
    code = "unavailable"


class Unauthenticated(SearchgateError):
    """No valid credential: unknown, expired, revoked, or of the wrong kind."""

    code = "unauthenticated"


class Forbidden(SearchgateError):
    """A valid credential that may not do this."""

    code = "forbidden"
    # Set once the refusal is in the change log, so that it is recorded only once.
    recorded = False


class ReauthenticationRequired(Forbidden):
    """A sensitive action by a session that has not proved its password recently."""

    code = "reauthentication_required"


class TooManyAttempts(SearchgateError):
    code = "too_many_attempts"

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait (the Retry-After header): the ``retryAfter`` detail."""
        value = self.details.get("retryAfter")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return 1
        return max(1, ceil(value))
