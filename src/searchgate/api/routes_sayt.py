"""GET /api/v1/sayt/search: search as you type, with JSONP for script-tag clients."""

from __future__ import annotations

import re

import orjson
from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from searchgate.api.auth import authenticate, presented_key
from searchgate.api.deps import runtime
from searchgate.api.errors import AuthError
from searchgate.errors import InvalidInput
from searchgate.keys.scopes import Scope
from searchgate.search.sayt import SaytRequest

router = APIRouter(tags=["sayt"])
CALLBACK = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]{0,63}(\.[A-Za-z_$][A-Za-z0-9_$]{0,63}){0,4}$")


@router.get("/api/v1/sayt/search", summary="Search as you type")
async def sayt(
    request: Request,
    query: str = Query(..., description="the typed text"),
    collection: str = "default",
    area: str = "Production",
    language: str | None = None,
    searchItems: int = 5,
    navigationItems: int = 5,
    productItems: int = 0,
    fuzzy: bool = False,
    alphabetize: bool = False,
    productSort: str | None = None,
    refinements: str | None = None,
    callback: str | None = None,
) -> Response:
    rt = runtime(request)
    if callback is not None and not CALLBACK.match(callback):
        raise InvalidInput(
            "callback must be a JavaScript identifier (letters, digits, _ and $, dotted)",
            field="callback",
        )
    public = False
    if presented_key(request) is not None:
        authenticate(rt.services.keys, request, Scope.SAYT)
    else:
        settings = rt.sayt.settings(collection)
        if not settings.sayt.public:
            raise AuthError(
                401,
                "missing_key",
                f"SAYT on {collection!r} needs a client key (public SAYT is off for it)",
            )
        public = True
    req = SaytRequest(
        query=query,
        collection=collection,
        area=area,
        search_items=searchItems,
        navigation_items=navigationItems,
        product_items=productItems,
        fuzzy=fuzzy,
        alphabetize=alphabetize,
        product_sort=productSort,
        refinements=refinements,
    )
    result = await run_in_threadpool(rt.sayt.search, req, public)
    body = orjson.dumps(result)
    if callback:
        return Response(
            callback.encode() + b"(" + body + b");",
            media_type="application/javascript",
            headers={"X-Content-Type-Options": "nosniff"},
        )
    return Response(body, media_type="application/json")
