"""GET /api/v1/sayt/search: search as you type, with JSONP for script-tag clients."""

from __future__ import annotations

import re

import orjson
from fastapi import APIRouter, Query
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
    if callback is not None and not CALLBACK.fullmatch(callback):
        raise InvalidInput(
            "callback must be a JavaScript identifier (letters, digits, _ and $, dotted)",
            field="callback",
        )
    # A presented key is always checked (and a key in the URL always refused), even where
    # SAYT is public; only a call without any key may be public.
    public = False
    forced: str | None = None
    if presented_key(request) is not None:
        caller = authenticate(rt.services.keys, request, Scope.SAYT, collection=collection)
        forced = caller.forced_filter
    elif rt.sayt.is_public(collection):
        public = True
    else:
        # The same answer for an unknown collection: no key, no hint of what exists.
        raise AuthError(
            401,
            "missing_key",
            "SAYT needs a client key ('Authorization: Bearer <key>' or 'X-Client-Key') "
            "unless the collection's SAYT settings make it public",
        )
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
        pre_filter=forced,
    )
    # Well under a millisecond of CPU: cheaper on the event loop than on a thread.
    result = rt.sayt.search(req, public)
    body = orjson.dumps(result)
    headers = {"X-Content-Type-Options": "nosniff"}
    if public:
        # Public SAYT is meant for browsers on any storefront origin, and carries no
        # credentials, so any origin may read it.
        headers["Access-Control-Allow-Origin"] = "*"
    if callback:
        # U+2028/2029 are valid in JSON but ended a JavaScript string before ES2019; the
        # leading comment keeps the body from starting with attacker-chosen bytes.
        safe = body.replace("\u2028".encode(), b"\\u2028").replace("\u2029".encode(), b"\\u2029")
        return Response(
            b"/**/" + callback.encode() + b"(" + safe + b");",
            media_type="application/javascript",
            headers=headers,
        )
    return Response(body, media_type="application/json", headers=headers)
