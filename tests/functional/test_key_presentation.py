"""Where a client key may be sent: the body's ``clientKey`` on every data-plane call with
a JSON body (the protocol's way), a header everywhere, and never the URL, however it is
encoded there."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from searchgate.demo import demo_settings
from tests.conftest import load

RECORDS = [{"id": "p1", "title": "Blue kettle", "brand": "Acme", "price": 20}]


def test_records_take_the_body_client_key(client: TestClient, key: str) -> None:
    base = "/api/v1/collections/shop"
    r = client.put(base, json={"settings": demo_settings(), "clientKey": key})
    assert r.status_code == 201, r.text
    # The settings object itself may carry it too.
    r = client.put(base, json={**demo_settings(), "clientKey": key})
    assert r.status_code == 200, r.text
    r = client.post(f"{base}/records?wait=true", json={"records": RECORDS, "clientKey": key})
    assert r.status_code == 200, r.text
    assert r.json()["upserted"] == 1 and r.json()["invalidRecordCount"] == 0, r.text
    r = client.get(f"{base}/records/p1", headers={"X-Client-Key": key})
    assert r.status_code == 200 and r.json()["title"] == "Blue kettle", r.text
    r = client.post(f"{base}/records/delete?wait=true", json={"ids": ["p1"], "clientKey": key})
    assert r.status_code == 200 and r.json()["deleted"] == 1, r.text
    assert key not in r.text


def test_the_records_object_form_works_with_a_header_key_too(
    client: TestClient, auth: dict[str, str]
) -> None:
    r = client.post(
        "/api/v1/collections/shop/records?wait=true", json={"records": RECORDS}, headers=auth
    )
    assert r.status_code == 200, r.text
    assert r.json()["upserted"] == 1 and r.json()["invalidRecordCount"] == 0, r.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/collections/shop/records", {"records": RECORDS}),
        ("POST", "/api/v1/collections/shop/records/delete", {"ids": ["p1"]}),
        ("PUT", "/api/v1/collections/shop", {"settings": demo_settings()}),
    ],
)
def test_a_wrong_or_missing_body_key_is_refused(
    client: TestClient, auth: dict[str, str], method: str, path: str, body: dict[str, Any]
) -> None:
    load(client, auth, "shop", RECORDS, demo_settings())
    r = client.request(method, path, json=body)
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_key", r.text
    wrong = "sgk_" + "A" * 38
    r = client.request(method, path, json={**body, "clientKey": wrong})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_key", r.text
    assert wrong not in r.text
    # A header key is checked first and wins over the body's.
    r = client.request(method, path, json={**body, "clientKey": wrong}, headers=auth)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "encode",
    [
        lambda k: k.replace("_", "%5F"),
        lambda k: k.replace("_", "%5f"),
        lambda k: "".join(f"%{ord(c):02X}" for c in k),
        lambda k: k.replace("_", "%255F"),
    ],
)
def test_a_percent_encoded_key_in_the_query_is_refused(
    client: TestClient, auth: dict[str, str], key: str, encode: Any
) -> None:
    load(client, auth, "default", RECORDS, demo_settings())
    encoded = encode(key)
    for method, path in (
        ("POST", f"/api/v1/search?x={encoded}"),
        ("GET", f"/api/v1/sayt/search?query=bl&x={encoded}"),
        ("GET", f"/api/v1/collections/default?ref={encoded}"),
    ):
        r = client.request(method, path, headers=auth, json={} if method == "POST" else None)
        assert r.status_code == 400, (path, r.text)
        assert r.json()["error"]["code"] == "key_in_url", r.text
        assert key not in r.text and key[4:20] not in r.text


@pytest.mark.parametrize("param", ["fuzzy", "searchItems", "productSort", "callback"])
def test_a_key_in_a_sayt_parameter_is_refused_not_quoted(
    client: TestClient, auth: dict[str, str], key: str, param: str
) -> None:
    load(client, auth, "default", RECORDS, demo_settings())
    r = client.get("/api/v1/sayt/search", params={"query": "bl", param: key}, headers=auth)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "key_in_url", r.text
    assert key[4:20] not in r.text
