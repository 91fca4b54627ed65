"""The web application, assembled where the runtime is built: the data plane and,
beside it at ``/``, the Command Center. Neither face knows the other."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from searchgate import console
from searchgate.api.app import build_api
from searchgate.config import Settings
from searchgate.logs import configure
from searchgate.runtime import Runtime, build_runtime


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """With ``runtime``, the app serves one the caller built, started and stops."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or build_runtime(settings)
        app.state.runtime = rt
        if not rt.started:
            rt.start()
        try:
            yield
        finally:
            if runtime is None:
                rt.stop()

    app = build_api(settings, lifespan)
    # After the API: the console's error pages answer only what the API's do not.
    console.install(app)
    return app


def app_from_env() -> FastAPI:
    """Entry point for server worker processes: settings from SEARCHGATE_* variables."""
    settings = Settings()
    configure(settings.log_level)
    return create_app(settings)
