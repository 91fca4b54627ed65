"""The web application, assembled where the runtime is built: the data plane and,
beside it at ``/``, the Command Center. Neither face knows the other."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from searchgate import console
from searchgate.api.app import build_api
from searchgate.clock import Clock, Monotonic, utc_now
from searchgate.config import Settings
from searchgate.logs import configure
from searchgate.runtime import Runtime, build_runtime


def create_app(
    settings: Settings | None = None,
    runtime: Runtime | None = None,
    *,
    clock: Clock = utc_now,
    monotonic: Monotonic = time.monotonic,
) -> FastAPI:
    """With ``runtime``, the app serves one the caller built, started and stops.
    Otherwise it builds its own on ``clock`` and ``monotonic`` (see ``build_runtime``)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or build_runtime(settings, clock=clock, monotonic=monotonic)
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
