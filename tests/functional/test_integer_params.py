"""Whole numbers in query strings (admin API, SAYT, console paging): one parser, a 400
naming the parameter for anything but ASCII digits within bounds, never a 500."""

from __future__ import annotations

import html

import pytest
from httpx import Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from searchgate.demo import demo_settings, generate
from searchgate.keys.scopes import Scope
from searchgate.runtime import Runtime
from tests.conftest import load
from tests.functional.console_support import signed_in_admin, use_https
from tests.keyhelp import SYSTEM

ADMIN = "/api/v1/admin"
# Unicode digits ("²" passes str.isdigit, "١٢" passes int), too many digits for int(),
# and numbers past the databases' 64-bit integers.
BAD = ["\u00b2", "\u0661\u0662", "9" * 5000, str(2**63), "1" * 25, "-1", "1.5", "0x10", ""]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_names(r: Response, field: str) -> None:
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["field"] == field, r.text
    assert error["message"].startswith(f"{field}: "), r.text


@pytest.mark.parametrize("value", [v for v in BAD if v])
def test_admin_api_numbers_are_400_naming_the_parameter(
    client: TestClient, rt: Runtime, admin_token: str, value: str
) -> None:
    key = rt.services.keys.create(SYSTEM, "k", frozenset({Scope.SEARCH})).info
    headers = bearer(admin_token)
    for name in ("before", "limit"):
        assert_names(client.get(f"{ADMIN}/audit", params={name: value}, headers=headers), name)
    r = client.get(f"{ADMIN}/keys/{key.id}/usage", params={"days": value}, headers=headers)
    assert_names(r, "days")


def test_admin_api_numbers_within_bounds_still_work(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    headers = bearer(admin_token)
    r = client.get(
        f"{ADMIN}/audit", params={"limit": "2", "before": str(2**63 - 1)}, headers=headers
    )
    assert r.status_code == 200 and len(r.json()["events"]) <= 2, r.text
    assert client.get(f"{ADMIN}/audit", params={"limit": ""}, headers=headers).status_code == 200


@pytest.mark.parametrize("name", ["searchItems", "navigationItems", "productItems"])
def test_sayt_item_counts_take_ascii_digits_only(
    client: TestClient, auth: dict[str, str], name: str
) -> None:
    load(client, auth, "default", list(generate(5)), demo_settings())
    for value in BAD:
        r = client.get("/api/v1/sayt/search", params={"query": "a", name: value}, headers=auth)
        assert_names(r, name)
    r = client.get("/api/v1/sayt/search", params={"query": "a", name: "50"}, headers=auth)
    assert r.status_code == 200, r.text


CONSOLE = [
    ("/collections/default", "size"),
    ("/collections/default", "start"),
    ("/search", "size"),
    ("/search", "page"),
    ("/admin/audit", "before"),
]


def test_console_paging_numbers_show_an_error_page_naming_the_field(
    client: TestClient, rt: Runtime, auth: dict[str, str]
) -> None:
    load(client, auth, "default", list(generate(5)), demo_settings())
    use_https(client)
    signed_in_admin(client, rt)
    for path, name in CONSOLE:
        for value in [v for v in BAD if v]:
            r = client.get(path, params={name: value, "collection": "default", "q": "a"})
            assert r.status_code == 400, (path, name, value[:10], r.text[:300])
            assert f"{name}: a whole number" in html.unescape(r.text), (path, name)
    assert (
        client.get("/collections/default", params={"size": "10", "start": "11"}).status_code == 200
    )
    assert client.get("/search", params={"q": "a", "size": "10", "page": "2"}).status_code == 200
    assert client.get("/admin/audit", params={"before": str(2**63 - 1)}).status_code == 200


PARAM_TEXT = st.text(max_size=30) | st.from_regex(r"[0-9]{1,30}", fullmatch=True)


def test_no_number_text_answers_5xx(
    client: TestClient, rt: Runtime, auth: dict[str, str], admin_token: str
) -> None:
    load(client, auth, "default", list(generate(5)), demo_settings())
    key = rt.services.keys.create(SYSTEM, "k", frozenset({Scope.SEARCH})).info
    use_https(client)
    signed_in_admin(client, rt)

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(value=PARAM_TEXT)
    def check(value: str) -> None:
        api = [
            (f"{ADMIN}/audit", "before", bearer(admin_token)),
            (f"{ADMIN}/audit", "limit", bearer(admin_token)),
            (f"{ADMIN}/keys/{key.id}/usage", "days", bearer(admin_token)),
            ("/api/v1/sayt/search", "productItems", auth),
        ]
        for path, name, headers in api:
            r = client.get(path, params={"query": "a", name: value}, headers=headers)
            assert r.status_code < 500, (path, name, value, r.text)
            if r.status_code >= 400:
                assert r.json()["error"]["field"] == name, r.text
        for path, name in CONSOLE:
            r = client.get(path, params={name: value, "q": "a"})
            assert r.status_code in (200, 400), (path, name, value, r.status_code)

    check()


def test_a_declared_length_of_thousands_of_digits_is_too_large(client: TestClient) -> None:
    r = client.post("/api/v1/search", content=b"{}", headers={"Content-Length": "9" * 5000})
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "payload_too_large"
