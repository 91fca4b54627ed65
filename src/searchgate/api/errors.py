"""JSON error responses. Bodies name the problem and the field, never a secret."""

from __future__ import annotations

import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from searchgate import error_status, errors
from searchgate.api.bodies import UnreadableBody
from searchgate.api.responses import JsonResponse
from searchgate.storage import storage_fault


class AuthError(errors.SearchgateError):
    """401 (no valid key) or 403 (a valid key that may not do this)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message, **details)
        self.status = status
        self.code = code
        self.headers = headers or {}


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str = Field(description="stable and machine-readable")
    message: str = Field(description="what to change, for a person")
    field: str | None = Field(default=None, description="the offending field, dotted")
    request_id: str | None = Field(
        default=None, alias="requestId", description="as in the X-Request-Id header"
    )


class ErrorBody(BaseModel):
    """Every error answer of the API (docs/api.md, Errors)."""

    error: ErrorDetail


# Documented on every operation; it also keeps the framework from documenting its own
# 422 answer, which this API never gives.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "The request was refused; the body says why"}
}


INTERNAL_ERROR = "the server failed to handle this request; quote the request id"

# Retry-After of an answer given while the database is unreachable.
DATABASE_RETRY_SECONDS = 2


def status_of(exc: errors.SearchgateError) -> int:
    if isinstance(exc, AuthError):
        return exc.status
    return error_status.status_of(exc)


def error_body(request: Request, code: str, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"error": {"code": code, "message": message, **extra}}
    # For the access log line (api/middleware.py).
    request.state.error_code = code
    rid = getattr(request.state, "request_id", None)
    if rid:
        body["error"]["requestId"] = rid
    return body


async def service_error_response(request: Request, exc: errors.SearchgateError) -> JsonResponse:
    """The JSON answer to an error a service raised (4xx, with its code and details)."""
    status = status_of(exc)
    if status >= 500:
        # Logged with the request id by the access middleware, with what caused it.
        request.state.error = exc
    d = exc.to_dict()
    code, message = d.pop("code"), d.pop("message")
    headers = dict(exc.headers) if isinstance(exc, AuthError) else {}
    if isinstance(exc, errors.RetryLater):
        headers["Retry-After"] = str(exc.retry_after)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="searchgate"'
    if isinstance(exc, errors.PayloadTooLarge):
        # The rest of the body is not read: the connection cannot carry another request.
        headers["Connection"] = "close"
    # Protocol clients read these two at the top level of a 420 upload answer.
    top = {k: d[k] for k in ("invalidRecordCount", "invalidRecordDetails") if k in d}
    return JsonResponse(
        {**error_body(request, code, message, **d), **top}, status_code=status, headers=headers
    )


# PostgreSQL's classes of errors that say the server is not there for us: a connection
# exception (08), and an operator intervention that ends or refuses sessions (57P01-03).
_UNREACHABLE_STATES = ("08", "57P01", "57P02", "57P03")
# SQLite's messages for a database file that is busy or cannot be opened right now.
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database file")


def unreachable(exc: Exception) -> bool:
    """Whether a database error says the database cannot be reached or used right now
    (rather than that a statement is wrong)."""
    if isinstance(exc, (InterfaceError, PoolTimeout)):
        return True
    if not isinstance(exc, OperationalError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    state = getattr(orig, "sqlstate", None)
    if state is not None:
        return str(state).startswith(_UNREACHABLE_STATES)
    if isinstance(orig, sqlite3.Error):
        return any(m in str(orig) for m in _SQLITE_UNAVAILABLE)
    # A driver error without a state: the client library failed to talk to the server.
    return True


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.SearchgateError, service_error_response)  # type: ignore[arg-type]

    async def _database_down(request: Request, exc: Exception) -> Response:
        # The database is unreachable or restarting (a connection refused or lost, the
        # pool exhausted by connections that hang): the request may succeed once it is
        # back, which a 500 would not say.
        fault = storage_fault(exc, saved_nothing=False)
        if fault is None and not unreachable(exc):
            # A failing statement (a missing table, a broken constraint) is the server's
            # own fault: the application's answer to any failure, whichever face asked.
            failure: Any = request.app.exception_handlers[Exception]
            answer: Response = await failure(request, exc)
            return answer
        response = await service_error_response(
            request,
            fault
            or errors.DatabaseUnavailable(
                "the database did not answer; retry shortly", retryAfter=DATABASE_RETRY_SECONDS
            ),
        )
        request.state.error = exc
        return response

    for db_error in (OperationalError, InterfaceError, PoolTimeout):
        app.add_exception_handler(db_error, _database_down)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JsonResponse:
        for problem in exc.errors():
            unreadable = problem.get("input")
            if isinstance(unreadable, UnreadableBody):
                return await service_error_response(request, unreadable.error)
        err = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        parts = list(err.get("loc", ()))
        # The first part says where (body, query string, path...): a parameter can itself
        # be called "query", so only that first part is dropped.
        if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
            parts = parts[1:]
        loc = ".".join(str(p) for p in parts)
        return JsonResponse(
            error_body(
                request,
                "invalid_request",
                f"{loc}: {err['msg']}" if loc else str(err["msg"]),
                field=loc or None,
            ),
            status_code=400,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JsonResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JsonResponse(error_body(request, code, str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JsonResponse:
        # Logged with the request id by the access middleware; no trace leaves the server.
        fault = storage_fault(exc, saved_nothing=False)
        if fault is not None:
            response = await service_error_response(request, fault)
            request.state.error = exc
            return response
        request.state.error = exc
        return JsonResponse(
            error_body(request, "internal_error", INTERNAL_ERROR),
            status_code=500,
        )
