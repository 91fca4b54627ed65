"""The storefront's search and SAYT calls, dispatched without the framework's routing.

A search costs about 1.7 ms of CPU in the services; the routing, dependency solving
and exception layers between our middleware and the endpoint added a tenth of that
again to every one. The endpoints are the same functions the router holds (so the
OpenAPI document, the route matrix and every behaviour stay as they are); only the
way a request reaches them is shorter. Everything outside this middleware (request
id, body limit, metrics, access log, CORS) still runs for them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from searchgate.api.errors import service_error_response
from searchgate.errors import SearchgateError

Endpoint = Callable[[Request], Awaitable[Response]]


class HotRoutes:
    """Serves ``(method, path) -> endpoint`` directly; anything else goes on to the app.

    Only endpoints that take the request alone qualify: nothing is parsed for them.
    """

    def __init__(
        self, app: ASGIApp, endpoints: dict[tuple[str, str], Endpoint], routes: list[BaseRoute]
    ) -> None:
        self.app = app
        self.endpoints = endpoints
        # The route objects, so that metrics and logs name the route as they would.
        self.routes: dict[tuple[str, str], BaseRoute] = {}
        for route in routes:
            methods = getattr(route, "methods", None) or ()
            for method in methods:
                key = (method, getattr(route, "path", ""))
                if key in endpoints:
                    self.routes[key] = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            key = (scope["method"], scope["path"])
            endpoint = self.endpoints.get(key)
            if endpoint is not None:
                scope["route"] = self.routes.get(key)
                request = Request(scope, receive, send)
                try:
                    response = await endpoint(request)
                except SearchgateError as exc:
                    # As the framework's exception layer would; anything else goes up
                    # to the outer layers (body limit, the 500 answer) as it would.
                    response = await service_error_response(request, exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
