"""Adds the console's routes and static files to the application."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from fastapi import FastAPI
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from searchgate.console import (
    error_pages,
    routes_account,
    routes_admin_keys,
    routes_admin_roles,
    routes_admin_rotation,
    routes_admin_users,
    routes_analytics,
    routes_areas,
    routes_audit,
    routes_auth,
    routes_collections,
    routes_dashboard,
    routes_invitations,
    routes_merchandising,
    routes_merchandising_objects,
    routes_merchandising_preview,
    routes_search,
    routes_settings,
)
from searchgate.console.web import Page, RouteSpec, all_pages, make_endpoint

STATIC = Path(__file__).parent / "static"
STATIC_PREFIX = "/static"

# The modules whose pages the Command Center serves, in routing order: a module not
# listed here serves nothing (Key Management is routes_admin_keys; its navigation link
# is in base.html).
MODULES: tuple[ModuleType, ...] = (
    routes_account,
    routes_admin_keys,
    routes_admin_roles,
    routes_admin_rotation,
    routes_admin_users,
    routes_analytics,
    routes_areas,
    routes_audit,
    routes_auth,
    routes_collections,
    routes_dashboard,
    routes_invitations,
    routes_merchandising,
    routes_merchandising_objects,
    routes_merchandising_preview,
    routes_search,
    routes_settings,
)
PAGES: list[Page] = all_pages(module.routes for module in MODULES)
ROUTES: list[RouteSpec] = [p.spec for p in PAGES]


def install(app: FastAPI) -> None:
    for p in PAGES:
        app.router.routes.append(
            Route(p.spec.path, make_endpoint(p), methods=[p.spec.method], name=p.spec.name)
        )
    app.router.routes.append(Mount(STATIC_PREFIX, app=StaticFiles(directory=STATIC), name="static"))
    error_pages.install(app)
