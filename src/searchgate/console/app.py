"""Adds the console's routes and static files to the application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

# Importing the route modules fills the route table (Key Management is
# routes_admin_keys; its navigation link is in base.html).
import searchgate.console.routes_account
import searchgate.console.routes_admin_keys
import searchgate.console.routes_admin_roles
import searchgate.console.routes_admin_rotation
import searchgate.console.routes_admin_users
import searchgate.console.routes_areas
import searchgate.console.routes_audit
import searchgate.console.routes_auth
import searchgate.console.routes_collections
import searchgate.console.routes_dashboard
import searchgate.console.routes_invitations
import searchgate.console.routes_search
import searchgate.console.routes_settings  # noqa: F401
from searchgate.console import error_pages, rotation_jobs
from searchgate.console.web import ROUTES, make_endpoint

STATIC = Path(__file__).parent / "static"
STATIC_PREFIX = "/static"


def install(app: FastAPI) -> None:
    for spec in ROUTES:
        app.router.routes.append(
            Route(spec.path, make_endpoint(spec), methods=[spec.method], name=spec.name)
        )
    app.router.routes.append(Mount(STATIC_PREFIX, app=StaticFiles(directory=STATIC), name="static"))
    error_pages.install(app)
    # The rotation wizard's background run, stopped before the runtime shuts down.
    rotation_jobs.install(app)
