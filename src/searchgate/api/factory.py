"""Entry point for uvicorn worker processes, at the address deployments name
(``searchgate.api.factory:app_from_env``); the app is assembled in ``searchgate.webapp``."""

from __future__ import annotations

from searchgate.webapp import app_from_env

__all__ = ["app_from_env"]
