"""Shared helpers of the data-plane routes."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from searchgate.api.responses import JsonResponse
from searchgate.errors import InvalidInput
from searchgate.jsondepth import DEPTH_REASON, MAX_JSON_DEPTH, may_be_too_deep, too_deep
from searchgate.runtime import Runtime


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def json_body(request: Request) -> Any:
    return decode_json(await request.body())


def decode_json(raw: bytes) -> Any:
    """A request's JSON body: blank is ``{}``; malformed or too deeply nested JSON is an
    InvalidInput naming the body."""
    if not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}", field="body") from None
    check_nesting(raw, value)
    return value


def check_nesting(raw: bytes, value: Any) -> None:
    """Refuses a decoded JSON body nested past the limit (docs/api.md, Limits)."""
    if may_be_too_deep(raw) and too_deep(value):
        raise InvalidInput(
            f"the body is nested too deeply: {DEPTH_REASON}",
            field="body",
            limit=MAX_JSON_DEPTH,
        )


def body_client_key(body: Any) -> str | None:
    if isinstance(body, dict):
        key = body.get("clientKey")
        return key if isinstance(key, str) else None
    return None


def json_response(content: Any, status: int = 200) -> JsonResponse:
    return JsonResponse(content, status_code=status)
