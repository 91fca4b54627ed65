"""Key self-service on the data plane: which key am I using, and "this key leaked".

``GET /api/v1/keys/self`` answers any usable client key or browser token, whatever its
scopes: the building block for checking every system that holds a key.

``POST /api/v1/keys/revoke`` is public on purpose. Whoever holds a key may switch it
off (holding it is the proof), which is what a secret scanner that found the key in a
public repository does. It only disables the key (an admin can enable it again), so
the worst a holder can do is what they could already do by abusing the key until it
is disabled anyway. Unknown keys cost one cached read and never a write transaction,
and the key is never echoed back.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from searchgate.api import answers
from searchgate.api.auth import authenticate
from searchgate.api.bodies import documented_body, inline_schema
from searchgate.api.deps import check_nesting, json_response, runtime
from searchgate.api.errors import ERROR_RESPONSES
from searchgate.api.responses import JsonResponse
from searchgate.errors import InvalidInput, NotFound, PayloadTooLarge
from searchgate_client.keyformat import check_key_format

router = APIRouter(prefix="/api/v1/keys", tags=["keys"], responses=ERROR_RESPONSES)

# A report is {"key": "sgk_..."} (48 characters of key): anything much larger is not one.
MAX_REPORT_BYTES = 1024
USER_AGENT_MAX = 256


class UnknownKey(NotFound):
    code = "unknown_key"


class LeakReport(BaseModel):
    """Documents the body only: it is read by ``_small_body`` and ``_reported_key``, which
    stop at MAX_REPORT_BYTES before reading on and never quote what was sent."""

    key: str = Field(description="the leaked client key, sgk_...", max_length=MAX_REPORT_BYTES)


@router.get(
    "/self",
    summary="The client key (or browser token) this request uses",
    response_model=answers.KeySelf,
)
async def key_self(request: Request) -> JsonResponse:
    rt = runtime(request)
    caller = authenticate(rt.services.keys, request, None)
    info = caller.key
    now = rt.services.keys.clock()
    token = caller.browser_token
    collections = caller.collections
    return json_response(
        {
            "id": info.id,
            "name": info.name,
            "prefix": info.display_prefix,
            "scopes": sorted(
                s.value for s in info.scopes if token is None or s.value in token.scopes
            ),
            "collections": sorted(collections) if collections is not None else None,
            "expiresAt": info.restrictions.expires_at.isoformat()
            if info.restrictions.expires_at
            else None,
            "primary": info.primary,
            "retiring": info.retiring_since is not None,
            "state": info.state(now),
            "system": caller.system,
            "browserToken": None
            if token is None
            else {
                "expiresAt": token.expires_at.isoformat(),
                "origins": sorted(token.origins),
                "collections": sorted(token.collections),
                "scopes": sorted(token.scopes),
                "filter": token.filter,
            },
        }
    )


async def _small_body(request: Request) -> bytes:
    """The body, refused as soon as it passes MAX_REPORT_BYTES (before it is all read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REPORT_BYTES:
            raise PayloadTooLarge(
                f'a leak report is {{"key": "sgk_..."}}, at most {MAX_REPORT_BYTES} bytes',
                limit=MAX_REPORT_BYTES,
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _reported_key(raw: bytes) -> str:
    try:
        body: Any = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        raise InvalidInput('the body must be JSON: {"key": "sgk_..."}', field="body") from None
    check_nesting(raw, body)
    presented = body.get("key") if isinstance(body, dict) else None
    if not isinstance(presented, str) or not presented.strip():
        raise InvalidInput('send the leaked key as {"key": "sgk_..."}', field="key")
    presented = presented.strip()
    problem = check_key_format(presented)
    if problem is not None:
        # The reason names the format rule that failed, never the string itself.
        raise InvalidInput(f"not a Searchgate client key: {problem}", field="key")
    return presented


@router.post(
    "/revoke",
    summary="Report a leaked client key: it is disabled at once (public)",
    openapi_extra=documented_body(inline_schema(LeakReport)),
    response_model=answers.Revoked,
)
async def revoke(request: Request) -> JsonResponse:
    presented = _reported_key(await _small_body(request))
    keys = runtime(request).services.keys
    # A cached read first: only a known, live key leads to a write transaction.
    known = await run_in_threadpool(keys.verify, presented)
    info = None
    if known is not None and not known.deleted:
        ip = request.client.host if request.client else None
        user_agent = (request.headers.get("user-agent") or "")[:USER_AGENT_MAX] or None
        info = await run_in_threadpool(keys.report_leak, presented, ip, user_agent)
    if info is None:
        raise UnknownKey("this is not a key of this deployment (or it was deleted)")
    return json_response({"revoked": True, "id": info.id, "name": info.name})
