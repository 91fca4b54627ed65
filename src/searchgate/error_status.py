"""The one table from service errors to HTTP status codes, shared by the data plane's
JSON errors and the Command Center's error pages (so a conflict is a 409 in both)."""

from __future__ import annotations

from searchgate import errors

STATUS: dict[type[errors.SearchgateError], int] = {
    errors.InvalidInput: 400,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.LimitExceeded: 422,
    errors.PayloadTooLarge: 413,
    errors.UploadRejected: 420,
    errors.Unavailable: 503,
    errors.RevocationsUnconfirmed: 503,
    errors.DatabaseUnavailable: 503,
    errors.StorageUnavailable: 507,
    errors.StorageFull: 507,
    errors.StorageReadOnly: 503,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.ReauthenticationRequired: 403,
    errors.TooManyAttempts: 429,
    errors.RateLimited: 429,
    errors.TooManyConcurrent: 429,
    errors.Overloaded: 503,
    errors.TimeBudgetExceeded: 503,
}


def status_of(exc: errors.SearchgateError) -> int:
    """The status of ``exc``'s nearest class in the table: a subclass such as a key
    still in use answers as the Conflict it is, not as an unknown error."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400
