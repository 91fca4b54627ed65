"""POST /api/v1/search and /api/v1/search/refinements (GroupBy v1 protocol)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from searchgate.api.auth import Caller, authorize_presented, presented_key
from searchgate.api.bodies import inline_schema, read_json
from searchgate.api.deps import body_client_key, json_response, runtime
from searchgate.api.errors import ERROR_RESPONSES
from searchgate.api.responses import JsonResponse
from searchgate.api.routing import RequestRoute
from searchgate.errors import InvalidInput
from searchgate.keys.check import check_collection
from searchgate.keys.scopes import Scope
from searchgate.runtime import Runtime
from searchgate.search.prefilter import parse_prefilter
from searchgate.search.request import SearchRequest, parse_search_request

router = APIRouter(tags=["search"], route_class=RequestRoute, responses=ERROR_RESPONSES)


def collection_of(body: Any) -> str:
    name = body.get("collection") if isinstance(body, dict) else None
    return name if isinstance(name, str) and name else "default"


def with_forced_filter(rt: Runtime, req: SearchRequest, caller: Caller) -> SearchRequest:
    """A browser token's filter is ANDed with whatever the page asked for, so the
    browser can narrow the results further but never widen them."""
    forced = caller.forced_filter
    if not forced:
        return req
    asked = (req.pre_filter or "").strip()
    settings = rt.engine.settings_of(req.collection) or rt.services.catalog.settings_of(
        req.collection
    )
    if asked and settings is not None:
        # The page's filter must be a whole expression on its own: "x) OR (y" would
        # close the parenthesis around it and make "(forced AND x) OR y" of the text.
        parse_prefilter(asked, settings, rt.services.settings.limits.max_prefilter_chars)
    req.pre_filter = f"({forced}) AND ({asked})" if asked else forced
    return req


SEARCH_SCHEMA = inline_schema(SearchRequest)
BODY_LIMIT_SETTING = "SEARCHGATE_LIMIT_MAX_SEARCH_BODY_BYTES"


async def authorized_body(
    rt: Runtime, request: Request, key_and_collection: Callable[[Any], tuple[str | None, str]]
) -> tuple[Caller, Any]:
    """The caller and the JSON body. A key in a header is checked before a byte of the
    body is read; a key in the body (the protocol allows ``clientKey``) after at most
    the search body limit is read. ``key_and_collection``: where the body names them."""
    limit = rt.services.settings.limits.max_search_body_bytes
    keys = rt.services.keys
    presented = presented_key(request)
    if presented is not None:
        caller = authorize_presented(keys, request, presented, Scope.SEARCH)
        body = await read_json(request, limit, BODY_LIMIT_SETTING)
        check_collection(caller, key_and_collection(body)[1])
        return caller, body
    body = await read_json(request, limit, BODY_LIMIT_SETTING)
    key, collection = key_and_collection(body)
    return authorize_presented(keys, request, key, Scope.SEARCH, collection), body


def pool_caller(caller: Caller) -> str:
    """Whose share of the search pool a search takes: its key's, or for a browser token
    (public, the same in every shopper's page) its key's per client address."""
    if caller.browser_token is None:
        return caller.key.id
    return f"{caller.key.id}@{caller.ip}"


def search_fields(body: Any) -> tuple[str | None, str]:
    return body_client_key(body), collection_of(body)


def refinements_fields(body: Any) -> tuple[str | None, str]:
    original = body.get("originalQuery") if isinstance(body, dict) else None
    key = body_client_key(body) or body_client_key(original)
    return key, collection_of(original)


@router.post(
    "/api/v1/search",
    summary="Search a collection (GroupBy v1 request and response)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": SEARCH_SCHEMA}},
        }
    },
)
async def search(request: Request) -> JsonResponse:
    rt = runtime(request)
    caller, body = await authorized_body(rt, request, search_fields)
    if not isinstance(body, dict):
        raise InvalidInput("the body is a JSON object", field="body")
    req = with_forced_filter(rt, parse_search_request(body), caller)

    def answer() -> JsonResponse:
        # Rendered on the pool's thread too: a page of a thousand records is a few
        # milliseconds of JSON.
        return json_response(rt.search.search(req))

    # Most searches take a millisecond, a deep sorted page a hundred: on the event loop
    # such pages held up every other request (search/pool.py).
    return await rt.search_pool.run(pool_caller(caller), answer)


@router.post(
    "/api/v1/search/refinements",
    summary="All values of one navigation for a search",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "originalQuery": SEARCH_SCHEMA,
                            "navigationName": {"type": "string"},
                        },
                        "required": ["navigationName"],
                    }
                }
            },
        }
    },
)
async def refinements(request: Request) -> JsonResponse:
    rt = runtime(request)
    caller, body = await authorized_body(rt, request, refinements_fields)
    if not isinstance(body, dict):
        raise InvalidInput("the body is a JSON object", field="body")
    original = body.get("originalQuery") or {}
    if not isinstance(original, dict):
        raise InvalidInput("originalQuery is a search request object", field="originalQuery")
    nav = body.get("navigationName")
    if not isinstance(nav, str) or not nav:
        raise InvalidInput("navigationName is required", field="navigationName")
    req = with_forced_filter(rt, parse_search_request(original), caller)

    def answer() -> JsonResponse:
        return json_response(rt.search.refinements(req, nav))

    return await rt.search_pool.run(pool_caller(caller), answer)
