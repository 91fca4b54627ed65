"""The Command Center serves the pages of the route modules console/app.py lists, each
module declaring its own (no table filled as a side effect of importing)."""

from __future__ import annotations

import importlib
import pkgutil

import searchgate.console as console_package
from searchgate.console import ROUTES, app
from searchgate.console.web import PageRoutes


def route_modules() -> set[str]:
    return {
        m.name
        for m in pkgutil.iter_modules(console_package.__path__)
        if m.name.startswith("routes_")
    }


def test_every_route_module_is_listed_and_declares_its_own_pages() -> None:
    listed = {m.__name__.rsplit(".", 1)[1] for m in app.MODULES}
    assert listed == route_modules()
    for name in sorted(route_modules()):
        module = importlib.import_module(f"searchgate.console.{name}")
        assert isinstance(module.routes, PageRoutes), name
        assert module.routes.pages, name


def test_the_served_pages_are_exactly_the_listed_modules_pages() -> None:
    declared = [p.spec for m in app.MODULES for p in m.routes.pages]
    assert ROUTES == declared == [p.spec for p in app.PAGES]
    assert len({(r.method, r.path) for r in ROUTES}) == len(ROUTES)
