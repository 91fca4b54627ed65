"""The route class of the storefront's hot endpoints (search, refinements, SAYT).

They are ordinary route definitions: the same decorators, the same OpenAPI document
(their typed bodies and parameters come from the models their decoders use), the same
routing and error answers. What differs is the last step: the endpoint takes the request
and decodes it with its own typed decoder, so the framework's dependency solving, its
per-request exit stacks and its second exception wrapper are skipped. A search costs
about a millisecond of CPU and a SAYT keystroke a fifth of that; those layers added a
tenth to every search and more to every keystroke (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send


class RequestRoute(APIRoute):
    """A route whose endpoint takes the request alone and returns a response.

    Errors go up to the application's exception handlers, as from any route.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        d = self.dependant
        # Anything the framework would solve would be silently skipped here.
        if d.dependencies or d.path_params or d.query_params or d.header_params:
            raise TypeError(f"{path}: a RequestRoute endpoint takes the request alone")
        if d.cookie_params or d.body_params:
            raise TypeError(f"{path}: a RequestRoute endpoint takes the request alone")

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in (self.methods or ()):
            # The framework's answer to a method the path does not take (405).
            await super().handle(scope, receive, send)
            return
        response: Response = await self.endpoint(Request(scope, receive, send))
        await response(scope, receive, send)
