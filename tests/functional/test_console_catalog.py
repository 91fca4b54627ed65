"""Collections, search preview and areas pages, checked against the data plane."""

from __future__ import annotations

import html
import re
from typing import Any

import orjson
from starlette.testclient import TestClient

from searchgate.demo import demo_settings, generate
from searchgate.runtime import Runtime
from tests.conftest import load, make_user
from tests.functional.console_support import error_for, post, sign_in, use_https


def _merchandiser(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    make_user(rt.services, "max@example.com", "merchandiser")
    sign_in(client, "max@example.com")


def _ids(page: str) -> list[str]:
    return re.findall(r'<td class="mono">(SKU\d+)</td>', page)


def test_collections_list_and_record_browser_page_through_every_record(
    client: TestClient, rt: Runtime, auth: dict[str, str]
) -> None:
    load(client, auth, "default", list(generate(23)), demo_settings())
    _merchandiser(client, rt)
    listing = client.get("/collections").text
    assert 'data-testid="count-default">23<' in listing
    seen: list[str] = []
    url = "/collections/default?size=10"
    while url:
        page = client.get(url).text
        seen.extend(_ids(page))
        nxt = re.search(r'data-testid="next-page" href="([^"]+)"', page)
        url = "/collections/default" + html.unescape(nxt.group(1)) if nxt else ""
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 23
    assert "Records 21\u201323 of 23" in page
    detail = client.get("/collections/default").text
    settings_json = re.search(r'data-testid="settings-json">(.*?)</pre>', detail, re.S)
    assert settings_json
    api = client.get("/api/v1/collections/default", headers=auth).json()["settings"]
    assert orjson.loads(html.unescape(settings_json.group(1))) == api
    assert client.get("/collections/nope").status_code == 404


def _response_json(page: str) -> dict[str, Any]:
    block = re.search(r'data-testid="response-json">(.*?)</pre>', page, re.S)
    assert block, page[:500]
    data: dict[str, Any] = orjson.loads(html.unescape(block.group(1)))
    return data


def test_search_preview_shows_exactly_what_the_search_api_answers(
    client: TestClient, rt: Runtime, auth: dict[str, str]
) -> None:
    load(client, auth, "default", list(generate(200)), demo_settings())
    _merchandiser(client, rt)
    page = client.get("/search", params={"collection": "default", "q": "laptop"}).text
    shown = _response_json(page)
    # A preview is not a shopper's query: SAYT's popular queries do not learn from it.
    assert rt.query_log.flush() == 0
    api = client.post(
        "/api/v1/search",
        json={
            "collection": "default",
            "area": "Production",
            "query": "laptop",
            "refinements": [],
            "skip": 0,
            "pageSize": 10,
        },
        headers=auth,
    ).json()
    assert rt.query_log.flush() == 1  # whereas the API's search is counted
    shown.pop("id"), api.pop("id")
    assert shown == api
    assert f"<strong>{api['totalRecordCount']}</strong> results" in page
    # Clicking a navigation value refines: the new total is the count that was shown.
    link = re.search(
        r'<a href="(/search\?[^"]+)" data-testid="refine-brand">\s*'
        r"<span>([^<]+)</span>\s*<span class=\"count\">(\d+)</span>",
        page,
    )
    assert link, page
    refined = client.get(html.unescape(link.group(1))).text
    data = _response_json(refined)
    assert data["totalRecordCount"] == int(link.group(3))
    assert data["selectedNavigation"][0]["refinements"][0]["value"] == link.group(2)
    assert all(r["allMeta"]["brand"] == link.group(2) for r in data["records"])
    bad = client.get("/search", params={"collection": "nope"})
    assert bad.status_code == 200 and 'data-testid="search-error"' in bad.text


def test_search_preview_of_a_word_with_an_underscore(
    client: TestClient, rt: Runtime, auth: dict[str, str]
) -> None:
    records = list(generate(40))
    records[7]["title"] = "Anker USB-C Hub"
    load(client, auth, "default", records, demo_settings())
    _merchandiser(client, rt)
    r = client.get("/search", params={"collection": "default", "q": "usb_c"})
    assert r.status_code == 200, r.text
    shown = _response_json(r.text)
    assert [rec["_id"] for rec in shown["records"]] == [records[7]["id"]]


def test_areas_are_created_edited_renamed_and_deleted_with_errors_at_the_field(
    client: TestClient, rt: Runtime, auth: dict[str, str]
) -> None:
    load(client, auth, "default", list(generate(5)), demo_settings())
    _merchandiser(client, rt)
    bad = post(client, "/areas", {"name": "no spaces allowed"}, page="/areas")
    assert bad.status_code == 400 and "letters, digits" in error_for(bad.text, "name")
    taken = post(client, "/areas", {"name": "Production"}, page="/areas")
    assert "exists already" in error_for(taken.text, "name")
    r = post(client, "/areas", {"name": "Staging"}, page="/areas")
    assert r.headers["location"] == "/areas/Staging"

    dup = post(
        client,
        "/areas/Staging/params",
        {"key": ["banner", "banner"], "value": ["a", "b"]},
        page="/areas/Staging",
    )
    assert dup.status_code == 400 and "appears twice" in error_for(dup.text, "key-1")
    r = post(
        client,
        "/areas/Staging/params",
        {"key": ["banner", "region", ""], "value": ["Spring sale", "eu", ""]},
        page="/areas/Staging",
    )
    assert r.status_code == 303
    rt.services.areas._cache = None
    answer = client.post("/api/v1/search", json={"area": "Staging", "query": ""}, headers=auth)
    assert answer.json()["siteParams"] == [
        {"key": "banner", "value": "Spring sale"},
        {"key": "region", "value": "eu"},
    ]
    page = client.get("/areas/Staging").text
    assert 'value="Spring sale"' in page

    clash = post(client, "/areas/Staging/rename", {"new_name": "Production"}, page="/areas/Staging")
    assert "exists already" in error_for(clash.text, "new_name")
    r = post(client, "/areas/Staging/rename", {"new_name": "Preview"}, page="/areas/Staging")
    assert r.headers["location"] == "/areas/Preview"
    assert client.get("/areas/Staging").status_code == 404
    default = post(client, "/areas/Production/delete", page="/areas/Production")
    assert "cannot be deleted" in default.text
    r = post(client, "/areas/Preview/delete", page="/areas/Preview")
    assert r.headers["location"] == "/areas"
    assert "/areas/Preview" not in client.get("/areas").text
