"""JSON error responses. Bodies name the problem and the field, never a secret."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from searchgate import error_status, errors
from searchgate.api.bodies import UnreadableBody
from searchgate.api.responses import JsonResponse


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


def status_of(exc: errors.SearchgateError) -> int:
    if isinstance(exc, AuthError):
        return exc.status
    return error_status.status_of(exc)


def error_body(request: Request, code: str, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"error": {"code": code, "message": message, **extra}}
    rid = getattr(request.state, "request_id", None)
    if rid:
        body["error"]["requestId"] = rid
    return body


async def service_error_response(request: Request, exc: errors.SearchgateError) -> JsonResponse:
    """The JSON answer to an error a service raised (4xx, with its code and details)."""
    status = status_of(exc)
    d = exc.to_dict()
    code, message = d.pop("code"), d.pop("message")
    headers = dict(exc.headers) if isinstance(exc, AuthError) else {}
    if isinstance(exc, errors.TooManyAttempts):
        headers["Retry-After"] = str(exc.retry_after)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="searchgate"'
    # Protocol clients read these two at the top level of a 420 upload answer.
    top = {k: d[k] for k in ("invalidRecordCount", "invalidRecordDetails") if k in d}
    return JsonResponse(
        {**error_body(request, code, message, **d), **top}, status_code=status, headers=headers
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.SearchgateError, service_error_response)  # type: ignore[arg-type]

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
        request.state.error = exc
        return JsonResponse(
            error_body(
                request,
                "internal_error",
                "the server failed to handle this request; quote the request id",
            ),
            status_code=500,
        )
