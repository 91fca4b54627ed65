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


class RetryLater(SearchgateError):
    """An error whose answer says when to try again: the ``retryAfter`` detail, in
    seconds, also sent as the Retry-After header."""

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait (the Retry-After header): the ``retryAfter`` detail."""
        value = self.details.get("retryAfter")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return 1
        return max(1, ceil(value))


class Unavailable(SearchgateError):
    code = "unavailable"


class RevocationsUnconfirmed(RetryLater, Unavailable):
    """This server could not confirm its view of key revocations recently enough to
    trust a client key (docs/operations.md, "Several nodes"): it refuses every key
    rather than accept one that may have been disabled or deleted meanwhile."""

    code = "revocations_unconfirmed"


class DatabaseUnavailable(RetryLater, Unavailable):
    """The database did not answer a request that needs it."""

    code = "database_unavailable"


class StorageUnavailable(RetryLater):
    """The server could not write its data: its disk is full, or its storage read-only
    (``searchgate.storage`` tells them apart). The ``reason`` detail says which."""

    code = "storage_unavailable"


class StorageFull(StorageUnavailable):
    """No space left (or the quota used up): 507, the request may succeed once an
    operator has made room."""


class StorageReadOnly(StorageUnavailable):
    """The storage refuses every write (mounted read-only): 503."""


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


class TooManyAttempts(RetryLater):
    code = "too_many_attempts"


class RateLimited(TooManyAttempts):
    """Over a default request rate per client address (public SAYT, browser tokens)."""

    code = "rate_limited"


class TooManyConcurrent(RetryLater):
    """One caller has as many searches in flight as it may (429): the others it sends
    meanwhile are refused, so that it cannot take the whole search pool."""

    code = "too_many_concurrent"


class Overloaded(RetryLater, Unavailable):
    """The search pool's queue is full (503): this server is answering all it can."""

    code = "overloaded"


class TimeBudgetExceeded(RetryLater, Unavailable):
    """A search did not finish within the server's time budget for one request (503)."""

    code = "time_budget_exceeded"
