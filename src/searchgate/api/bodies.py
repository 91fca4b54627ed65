"""JSON request bodies: read the project's way, validated and documented by the framework.

A route with a JSON body declares it as a pydantic model parameter, so that FastAPI
validates it (errors go through the one validation handler in ``api/errors.py``) and
``/openapi.json`` shows its schema. Such routes use ``JsonRoute``, which keeps what the
API promised before the framework parsed bodies (docs/api.md, Limits):

- the body is read whole before the framework looks at it, under the admin API's
  own limit (``MAX_ADMIN_BODY_BYTES``), so that a body past it answers 413 as soon as
  it is (inside the framework's parsing it became a 400);
- orjson decodes it and the nesting limit applies before any model sees it;
- an empty body is the empty object, and the Content-Type is not looked at (``curl -d``
  labels JSON as a form);
- a body that cannot be read fails only when the model is validated, after the route's
  dependencies: a caller without a valid credential gets its 401 whatever it sent.

Routes that read their body themselves (record uploads stream through their own parser,
the protocol's lenient forms) document it with ``documented_body``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from searchgate.api.deps import decode_json
from searchgate.errors import InvalidInput, PayloadTooLarge

JSON_CONTENT_TYPE = (b"content-type", b"application/json")


class UnreadableBody:
    """What a malformed or too deeply nested body decodes to: no model accepts it, and
    the validation handler answers with the reader's own error."""

    __slots__ = ("error",)

    def __init__(self, error: InvalidInput) -> None:
        self.error = error


class JsonBodyRequest(Request):
    _json_headers: Headers
    _decoded: Any

    @property
    def headers(self) -> Headers:
        # The framework decodes a body only under a JSON Content-Type; these routes take
        # nothing but JSON, whatever the client labelled it.
        if not hasattr(self, "_json_headers"):
            raw = [(k, v) for k, v in self.scope["headers"] if k != b"content-type"]
            self._json_headers = Headers(raw=[*raw, JSON_CONTENT_TYPE])
        return self._json_headers

    async def body(self) -> bytes:
        raw = await super().body()
        # The framework treats an empty body as a missing one; here it is the empty
        # object, so that a model's own defaults and required fields answer.
        return raw or b"{}"

    async def json(self) -> Any:
        if not hasattr(self, "_decoded"):
            try:
                self._decoded = decode_json(await self.body())
            except InvalidInput as exc:
                self._decoded = UnreadableBody(exc)
        return self._decoded


class JsonRoute(APIRoute):
    """A route whose JSON body model is read as the module docstring says."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def read_first(request: Request) -> Response:
            typed = JsonBodyRequest(request.scope, request.receive)
            limits = request.app.state.runtime.services.settings.limits
            # Read here under the admin API's own limit; the framework's read then
            # finds the body already there.
            typed._body = await read_limited(
                typed, limits.max_admin_body_bytes, "SEARCHGATE_LIMIT_MAX_ADMIN_BODY_BYTES"
            )
            return await handler(typed)

        return read_first


async def read_json(request: Request, limit: int, setting: str) -> Any:
    """A route's JSON body read under its own size limit, decoded as ``decode_json``."""
    return decode_json(await read_limited(request, limit, setting))


async def read_limited(request: Request, limit: int, setting: str) -> bytes:
    """A route's body read under its own size limit (``setting`` names it): a declared
    length past it is refused before a byte is read, a body without one as soon as it
    passes it (413 ``payload_too_large``)."""
    declared = request.headers.get("content-length")
    # More digits than any limit has is too large without reading them all.
    if (
        declared is not None
        and declared.isdigit()
        and (len(declared) > 18 or int(declared) > limit)
    ):
        raise _too_large(limit, setting)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, setting)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int, setting: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body is larger than {limit} bytes ({setting})", field="body", limit=limit
    )


def inline_schema(tp: Any) -> dict[str, Any]:
    """The JSON schema of ``tp`` (a model, or any type pydantic reads) with its
    definitions written in place: a schema placed in a route's ``openapi_extra`` cannot
    refer to its own ``$defs``."""
    schema = TypeAdapter(tp).json_schema(by_alias=True)
    defs: dict[str, Any] = schema.pop("$defs", {})

    def expand(node: Any, seen: frozenset[str]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                name = ref.removeprefix("#/$defs/")
                if name in seen:
                    raise ValueError(f"{tp!r} is recursive through {name}")
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return {**expand(defs[name], seen | {name}), **expand(rest, seen)}
            return {k: expand(v, seen) for k, v in node.items()}
        if isinstance(node, list):
            return [expand(v, seen) for v in node]
        return node

    expanded: dict[str, Any] = expand(schema, frozenset())
    return expanded


def documented_body(
    schema: dict[str, Any], media_types: tuple[str, ...] = ("application/json",)
) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its body itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {media: {"schema": schema} for media in media_types},
        }
    }
