"""POST /api/v1/search and /api/v1/search/refinements (GroupBy v1 protocol)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from searchgate.api.auth import Caller, authenticate
from searchgate.api.bodies import inline_schema
from searchgate.api.deps import body_client_key, json_body, json_response, runtime
from searchgate.api.errors import ERROR_RESPONSES
from searchgate.api.responses import JsonResponse
from searchgate.api.routing import RequestRoute
from searchgate.errors import InvalidInput
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
    body = await json_body(request)
    caller = authenticate(
        rt.services.keys, request, Scope.SEARCH, body_client_key(body), collection_of(body)
    )
    if not isinstance(body, dict):
        raise InvalidInput("the body is a JSON object", field="body")
    req = with_forced_filter(rt, parse_search_request(body), caller)
    # A search takes about a millisecond of CPU: handing it to a thread costs more than
    # it frees, so it runs on the event loop (processes, not threads, use the cores).
    return json_response(rt.search.search(req))


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
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidInput("the body is a JSON object", field="body")
    original = body.get("originalQuery") or {}
    if not isinstance(original, dict):
        raise InvalidInput("originalQuery is a search request object", field="originalQuery")
    key = body_client_key(body) or body_client_key(original)
    caller = authenticate(rt.services.keys, request, Scope.SEARCH, key, collection_of(original))
    nav = body.get("navigationName")
    if not isinstance(nav, str) or not nav:
        raise InvalidInput("navigationName is required", field="navigationName")
    req = with_forced_filter(rt, parse_search_request(original), caller)
    return json_response(await run_in_threadpool(rt.search.refinements, req, nav))
