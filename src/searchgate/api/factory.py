"""Entry point for uvicorn worker processes: settings come from SEARCHGATE_* variables."""

from __future__ import annotations

from fastapi import FastAPI

from searchgate.api.app import create_app
from searchgate.config import Settings
from searchgate.logs import configure


def app_from_env() -> FastAPI:
    settings = Settings()
    configure(settings.log_level)
    return create_app(settings)
