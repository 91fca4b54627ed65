"""The data plane's face of the web application: its routes, error answers and
request middleware (``searchgate.webapp`` assembles it with the Command Center)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from searchgate import __version__
from searchgate.api import (
    errors,
    routes_admin,
    routes_admin_invitations,
    routes_admin_keys,
    routes_admin_rotation,
    routes_collections,
    routes_keys,
    routes_merchandising,
    routes_ops,
    routes_replacements,
    routes_sayt,
    routes_search,
    routes_upload,
)
from searchgate.api.cors import CorsMiddleware
from searchgate.api.middleware import RequestMiddleware
from searchgate.api.responses import JsonResponse
from searchgate.config import Settings
from searchgate.keys.usage import UsageTracker
from searchgate.runtime import Runtime


def build_api(settings: Settings, lifespan: Callable[[FastAPI], Any]) -> FastAPI:
    """The application with the data plane's routes; ``lifespan`` puts the runtime in
    ``app.state.runtime``. Routes added afterwards come after the API's, so they never
    shadow an API path."""
    app = FastAPI(
        title="Searchgate data plane",
        version=__version__,
        default_response_class=JsonResponse,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        # The framework's own OpenTelemetry layer asked for its providers on every
        # request; the server's metrics are its Prometheus series (docs/operations.md).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    errors.install(app)
    # The storefront's routes go into the application's own list: an included router
    # is matched twice on every request (once to be chosen, once inside), a twentieth
    # of a SAYT keystroke's HTTP cost (docs/performance.md).
    for hot in (routes_search, routes_sayt):
        app.router.routes.extend(hot.router.routes)
    for module in (routes_collections, routes_replacements, routes_upload, routes_ops):
        app.include_router(module.router)
    app.include_router(routes_keys.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_admin_invitations.router)
    app.include_router(routes_admin_keys.router)
    app.include_router(routes_admin_rotation.router)
    app.include_router(routes_merchandising.router)
    app.add_middleware(CorsMiddleware)
    app.add_middleware(
        RequestMiddleware, max_body_bytes=settings.limits.max_body_bytes, usage=_usage_of(app)
    )
    return app


def _usage_of(app: FastAPI) -> Callable[[], UsageTracker | None]:
    def usage() -> UsageTracker | None:
        rt: Runtime | None = getattr(app.state, "runtime", None)
        return rt.usage if rt is not None else None

    return usage
