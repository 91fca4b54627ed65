"""The storefront's hot endpoints are ordinary routes of the app: same answers, errors
and route names, without the framework's parameter solving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.testclient import TestClient

from searchgate.api import errors
from searchgate.api.routing import RequestRoute
from searchgate.config import Settings
from searchgate.errors import InvalidInput
from searchgate.webapp import create_app

seen: dict[str, Any] = {}
router = APIRouter(route_class=RequestRoute)


@router.post("/fine")
async def fine(request: Request) -> Response:
    body = await request.json()
    seen["route"] = request.scope.get("route")
    return JSONResponse({"echo": body})


@router.post("/refused")
async def refused(request: Request) -> Response:
    raise InvalidInput("query is too long", field="query")


@router.post("/broken")
async def broken(request: Request) -> Response:
    raise RuntimeError("a bug")


def client() -> TestClient:
    app = FastAPI()
    errors.install(app)
    app.include_router(router)

    @app.get("/elsewhere")
    async def elsewhere() -> dict[str, str]:
        return {"from": "another route"}

    return TestClient(app, raise_server_exceptions=True)


def test_a_request_route_answers_and_names_its_route() -> None:
    r = client().post("/fine", json={"q": 1})
    assert r.status_code == 200 and r.json() == {"echo": {"q": 1}}
    assert getattr(seen["route"], "path", None) == "/fine"


def test_other_methods_and_paths_are_routed_as_usual() -> None:
    c = client()
    assert c.get("/fine").status_code == 405
    assert c.get("/elsewhere").json() == {"from": "another route"}
    assert c.post("/nowhere").json()["error"]["code"] == "not_found"


def test_a_service_error_is_answered_as_json_with_its_code_and_field() -> None:
    r = client().post("/refused", json={})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_request"
    assert r.json()["error"]["field"] == "query"


def test_an_unexpected_error_goes_up_to_the_outer_layers() -> None:
    with pytest.raises(RuntimeError, match="a bug"):
        client().post("/broken", json={})


def test_an_endpoint_with_parameters_to_solve_is_refused() -> None:
    other = APIRouter(route_class=RequestRoute)

    async def takes_a_parameter(request: Request, limit: int = 5) -> Response:
        return JSONResponse({})

    with pytest.raises(TypeError, match="takes the request alone"):
        other.add_api_route("/limited", takes_a_parameter, methods=["GET"])


def test_search_refinements_and_sayt_are_routes_of_the_app_not_a_dispatcher(
    tmp_path: Path,
) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    middleware = {m.cls.__name__ for m in app.user_middleware}  # type: ignore[attr-defined]
    assert middleware == {"RequestMiddleware", "CorsMiddleware"}
    hot = {("POST", "/api/v1/search"), ("POST", "/api/v1/search/refinements")}
    hot.add(("GET", "/api/v1/sayt/search"))
    found = {
        (method, route.path)
        for r in app.router.routes
        for route in getattr(getattr(r, "original_router", None), "routes", [r])
        if isinstance(route, RequestRoute)
        for method in route.methods
    }
    assert found == hot
