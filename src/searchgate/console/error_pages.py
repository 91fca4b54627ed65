"""Error pages for console addresses that no view answered: an unknown address (404),
a method the page does not take (405), a view that failed (500).

They come in the console's layout (navigation for a signed-in person, a link to sign
in otherwise). The API's addresses keep the JSON answers of ``searchgate.api.errors``:
an address belongs to the API when its first path segment is one the API's routes use
(``/api/...``, ``/data/...``, ``/healthz``, ``/openapi.json``...), as the OpenAPI
document lists them.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from searchgate.console import auth
from searchgate.console.web import PUBLIC, Ctx, RouteSpec
from searchgate.runtime import Runtime

Handler = Callable[[Request, Any], Response | Awaitable[Response]]

TITLES = {404: "Page not found", 405: "Not available here"}
MESSAGES = {
    404: "There is no page at this address. Check the link, or start again from the overview.",
    405: "This page cannot be used that way. Open it from a link or a form of the console.",
}


def _root(path: str) -> str:
    return path.lstrip("/").split("/", 1)[0]


def api_roots(app: FastAPI) -> frozenset[str]:
    """The first path segments the API answers under: those of every path its OpenAPI
    document lists (it lists every API route), and the document's own."""
    roots = {_root(path) for path in app.openapi().get("paths", {})}
    if app.openapi_url:
        roots.add(_root(app.openapi_url))
    return frozenset(roots)


def page_for(request: Request, rt: Runtime, status: int, title: str, message: str) -> Response:
    """The error page in the layout, for whoever the request's session says it is."""
    spec = RouteSpec(request.method, request.url.path, PUBLIC, "error")
    try:
        session = auth.load_session(rt, request)
    except Exception:  # the failure being reported may be the database's
        session = auth.SessionState()
    ctx = Ctx(request, rt, session, None, spec, session.principal)
    if session.clear_cookie:
        ctx.set_cookie(auth.SESSION_COOKIE, "", 0)
    response = ctx.error_page(status, title, message)
    auth.finish(ctx, response)
    return response


async def _answer(handler: Handler, request: Request, exc: Exception) -> Response:
    result = handler(request, exc)
    return await result if inspect.isawaitable(result) else result


def install(app: FastAPI) -> None:
    """Puts the console's pages in front of the handlers installed before (the API's),
    which keep answering every API address."""
    api_http: Handler = app.exception_handlers[HTTPException]
    api_unexpected: Handler = app.exception_handlers[Exception]
    # Routes are all declared by the first request; they do not change afterwards.
    roots = cache(lambda: api_roots(app))

    def is_api(request: Request) -> bool:
        return _root(request.url.path) in roots()

    async def http_error(request: Request, exc: Exception) -> Response:
        if is_api(request) or not isinstance(exc, HTTPException) or exc.status_code not in TITLES:
            return await _answer(api_http, request, exc)
        rt: Runtime = request.app.state.runtime
        status = exc.status_code
        response = await run_in_threadpool(
            page_for, request, rt, status, TITLES[status], MESSAGES[status]
        )
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    async def unexpected(request: Request, exc: Exception) -> Response:
        if is_api(request):
            return await _answer(api_unexpected, request, exc)
        # Logged with the request id by the access middleware; no trace leaves the server.
        request.state.error = exc
        rid = getattr(request.state, "request_id", None) or "unknown"
        message = (
            "Something went wrong on the server. "
            f"Try again; if it keeps failing, give an operator the request id {rid}."
        )
        rt: Runtime = request.app.state.runtime
        return await run_in_threadpool(page_for, request, rt, 500, "Something went wrong", message)

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
