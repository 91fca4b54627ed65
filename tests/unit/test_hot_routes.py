"""The direct dispatch of the search endpoints: same answers, errors and route names."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from searchgate.api.hot_routes import HotRoutes
from searchgate.errors import InvalidInput

seen: dict[str, Any] = {}


async def fine(request: Request) -> Response:
    body = await request.json()
    seen["route"] = request.scope.get("route")
    return JSONResponse({"echo": body})


async def refused(request: Request) -> Response:
    raise InvalidInput("query is too long", field="query")


async def broken(request: Request) -> Response:
    raise RuntimeError("a bug")


async def fallback(request: Request) -> Response:
    return PlainTextResponse("router")


ROUTES = [
    Route("/fine", fine, methods=["POST"]),
    Route("/refused", refused, methods=["POST"]),
    Route("/broken", broken, methods=["POST"]),
]


def client() -> TestClient:
    inner = Starlette(routes=[Route("/fine", fallback, methods=["GET"])])
    calls: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            calls.append(scope["path"])
        await inner(scope, receive, send)

    hot = HotRoutes(
        app,
        {("POST", "/fine"): fine, ("POST", "/refused"): refused, ("POST", "/broken"): broken},
        list(ROUTES),
    )
    tc = TestClient(hot, raise_server_exceptions=True)
    tc.calls = calls  # type: ignore[attr-defined]
    return tc


def test_a_hot_endpoint_answers_without_the_inner_app_and_names_its_route() -> None:
    c = client()
    r = c.post("/fine", json={"q": 1})
    assert r.status_code == 200 and r.json() == {"echo": {"q": 1}}
    assert c.calls == []  # type: ignore[attr-defined]
    assert getattr(seen["route"], "path", None) == "/fine"


def test_other_methods_and_paths_go_to_the_inner_app() -> None:
    c = client()
    assert c.get("/fine").text == "router"
    assert c.post("/elsewhere").status_code == 404
    assert c.calls == ["/fine", "/elsewhere"]  # type: ignore[attr-defined]


def test_a_service_error_is_answered_as_json_with_its_code_and_field() -> None:
    r = client().post("/refused", json={})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_request"
    assert r.json()["error"]["field"] == "query"


def test_an_unexpected_error_goes_up_to_the_outer_layers() -> None:
    with pytest.raises(RuntimeError, match="a bug"):
        client().post("/broken", json={})
