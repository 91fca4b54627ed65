from __future__ import annotations

from starlette.testclient import TestClient

from searchgate.demo import demo_settings, generate
from tests.conftest import load


def test_search_finds_uploaded_records(client: TestClient, auth: dict[str, str]) -> None:
    load(client, auth, "default", list(generate(300)), demo_settings())
    r = client.post("/api/v1/search", json={"query": "macbook", "pageSize": 5}, headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["totalRecordCount"] > 0
    assert all("macbook" in rec["_t"].lower() for rec in body["records"])
    assert body["pageInfo"]["recordStart"] == 1
    assert "clientKey" not in body["originalRequest"]


def test_missing_key_is_401_without_echo(client: TestClient) -> None:
    r = client.post("/api/v1/search", json={"query": "x", "clientKey": "sgk_notakey"})
    assert r.status_code == 401
    assert "sgk_notakey" not in r.text
    assert r.json()["error"]["code"] == "invalid_key"
