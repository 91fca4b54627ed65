"""GET /api/v1/sayt/search: search as you type, with JSONP for script-tag clients.

The query string is read here rather than by the framework's parameter machinery: a
keystroke costs about 0.1 ms in the SAYT service, and declaring thirteen parameters
for the framework to solve cost twice that on every one. ``PARAMETERS`` is both what
is parsed and what the OpenAPI document shows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from searchgate.api.auth import authorize_presented, presented_key
from searchgate.api.deps import runtime
from searchgate.api.errors import ERROR_RESPONSES, AuthError
from searchgate.api.routing import RequestRoute
from searchgate.errors import InvalidInput
from searchgate.keys.scopes import Scope
from searchgate.params import whole_number
from searchgate.search.sayt import MAX_ITEMS, SaytRequest

router = APIRouter(tags=["sayt"], route_class=RequestRoute, responses=ERROR_RESPONSES)
CALLBACK = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]{0,63}(\.[A-Za-z_$][A-Za-z0-9_$]{0,63}){0,4}$")
# What the framework accepted for a boolean query parameter, kept as it was.
TRUE = frozenset({"1", "true", "on", "yes", "t", "y"})
FALSE = frozenset({"0", "false", "off", "no", "f", "n"})
JSON_TYPES = {str: "string", int: "integer", bool: "boolean"}


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: type
    default: Any
    description: str
    required: bool = False

    def openapi(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": JSON_TYPES[self.kind]}
        if self.default is not None:
            schema["default"] = self.default
        return {
            "name": self.name,
            "in": "query",
            "required": self.required,
            "description": self.description,
            "schema": schema,
        }

    def read(self, params: Mapping[str, str]) -> Any:
        raw = params.get(self.name)
        if raw is None:
            if self.required:
                raise InvalidInput(f"{self.name}: Field required", field=self.name)
            return self.default
        if self.kind is int:  # every one is an item count
            return whole_number(raw, self.name, low=0, high=MAX_ITEMS)
        if self.kind is bool:
            word = raw.strip().lower()
            if word in TRUE or word in FALSE:
                return word in TRUE
            raise InvalidInput(f"{self.name}: true or false, got {raw[:40]!r}", field=self.name)
        return raw


PARAMETERS = (
    Parameter("query", str, None, "the typed text", required=True),
    Parameter("collection", str, "default", "the collection"),
    Parameter("area", str, "Production", "the area (a named configuration)"),
    Parameter("language", str, None, "accepted for compatibility; ignored"),
    Parameter("searchItems", int, 5, "completions of the typed text (0 to 50)"),
    Parameter("navigationItems", int, 5, "matching navigation values (0 to 50)"),
    Parameter("productItems", int, 0, "products for the typed text (0 to 50)"),
    Parameter("fuzzy", bool, False, "also suggest words one or two edits away"),
    Parameter("alphabetize", bool, False, "completions in alphabetical order"),
    Parameter("productSort", str, None, "sort of the products: ~field:A or ~field:D, repeated"),
    Parameter("refinements", str, None, "filters of the products: ~name=value, repeated"),
    Parameter("callback", str, None, "JSONP: a JavaScript function name to wrap the answer in"),
)


@router.get(
    "/api/v1/sayt/search",
    summary="Search as you type",
    openapi_extra={"parameters": [p.openapi() for p in PARAMETERS]},
)
async def sayt(request: Request) -> Response:
    rt = runtime(request)
    # First of all: a key sent in the URL is refused before a parameter error could
    # quote it back.
    presented = presented_key(request)
    # A plain dict (the last of repeated names wins, as in the framework's own view):
    # a dozen lookups through the framework's multi-dict cost more than the key check.
    params = dict(request.query_params.multi_items())
    v = {p.name: p.read(params) for p in PARAMETERS}
    callback: str | None = v["callback"]
    collection: str = v["collection"]
    if callback is not None and not CALLBACK.fullmatch(callback):
        raise InvalidInput(
            "callback must be a JavaScript identifier (letters, digits, _ and $, dotted)",
            field="callback",
        )
    # A presented key is always checked (and a key in the URL always refused), even where
    # SAYT is public; only a call without any key may be public.
    public = False
    forced: str | None = None
    if presented is not None:
        caller = authorize_presented(
            rt.services.keys, request, presented, Scope.SAYT, collection=collection
        )
        forced = caller.forced_filter
    elif rt.sayt.is_public(collection):
        client = request.client
        rt.public_sayt_rates.check(client.host if client else None)
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
        query=v["query"],
        collection=collection,
        area=v["area"],
        search_items=v["searchItems"],
        navigation_items=v["navigationItems"],
        product_items=v["productItems"],
        fuzzy=v["fuzzy"],
        alphabetize=v["alphabetize"],
        product_sort=v["productSort"],
        refinements=v["refinements"],
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
