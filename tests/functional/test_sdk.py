"""The Python SDK against a real server: uvicorn on a free port, in a thread of this
process, over real sockets (the SDK's httpx.Client cannot talk to an ASGI app directly).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn

from searchgate.config import Settings
from searchgate.keys.scopes import ALL_SCOPES, Scope
from searchgate.keys.usage import UsageQueries
from searchgate.runtime import Runtime
from searchgate.webapp import create_app
from searchgate_client import (
    USER_AGENT,
    AsyncSearchgateClient,
    CachedKey,
    SearchgateClient,
    SearchgateConnectionError,
    SearchgateError,
)
from searchgate_client.keyformat import generate_key
from tests.keyhelp import SYSTEM
from tests.pg import free_port

RECORDS = [
    {"id": "1", "title": "Desk lamp", "brand": "Lumo", "price": 30},
    {"id": "2", "title": "Floor lamp", "brand": "Lumo", "price": 90},
    {"id": "3", "title": "Lamp shade", "brand": "Shadey", "price": 12},
]


@dataclass
class Live:
    url: str
    rt: Runtime

    def new_key(self, name: str) -> tuple[str, str]:
        created = self.rt.services.keys.create(SYSTEM, name, ALL_SCOPES)
        return created.info.id, created.secret

    def systems(self, key_id: str) -> dict[str, int]:
        self.rt.usage.flush()
        return {u.system: u.requests for u in UsageQueries(self.rt.services.db).systems(key_id)}


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    )
    # Not the main thread: uvicorn leaves the process's signal handlers alone.
    thread = threading.Thread(target=server.run, name="uvicorn-sdk-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield Live(f"http://127.0.0.1:{server.config.port}", app.state.runtime)
    finally:
        server.should_exit = True
        thread.join(30)


class CountingSource:
    """The secret store as the SDK sees it: a callable, here with a call count."""

    def __init__(self, *values: str) -> None:
        self.values = list(values)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return self.values[min(self.calls, len(self.values)) - 1]


def test_upload_search_refinements_and_sayt(live: Live) -> None:
    key_id, secret = live.new_key("storefront")
    with SearchgateClient(live.url, secret, system="storefront-eu") as sg:
        written = sg.upload_records("shop", RECORDS, wait=True)
        assert written["upserted"] == 3
        assert written["searchable"] is True
        found = sg.search({"collection": "shop", "query": "lamp", "pageSize": 2})
        assert found["totalRecordCount"] == 3
        assert len(found["records"]) == 2
        brands = sg.refinements({"collection": "shop", "query": "lamp"}, "brand")
        assert {v["value"] for v in brands["navigation"]["refinements"]} == {"Lumo", "Shadey"}
        typed = sg.sayt("shop", "flo", productItems=2, searchItems=0)
        assert [p["allMeta"]["title"] for p in typed["result"]["products"]] == ["Floor lamp"]
        replaced = sg.upload_records("shop", RECORDS[:1], mode="replace", wait=True)
        assert replaced["upserted"] == 1
        assert sg.search({"collection": "shop"})["totalRecordCount"] == 1
    # The server recorded the system by its header, not by the User-Agent.
    assert live.systems(key_id) == {"storefront-eu": 6}


def test_a_staged_replacement_through_the_sdk(live: Live) -> None:
    _key_id, secret = live.new_key("replacer")
    with SearchgateClient(live.url, secret, system="catalog-job") as sg:
        sg.upload_records("shop", RECORDS, wait=True)
        started = sg.start_replacement("shop")
        rid = started["id"]
        assert started["stagedRecords"] == 0
        for _ in range(2):
            staged = sg.stage_records("shop", rid, [{"id": "9", "title": "Wall lamp"}])
            assert staged["replacement"]["stagedRecords"] == 1
        assert sg.replacement("shop", rid)["stagedRecords"] == 1
        assert sg.search({"collection": "shop"})["totalRecordCount"] == 3
        done = sg.commit_replacement("shop", rid, wait=True)
        assert (done["records"], done["replaced"], done.get("searchable")) == (1, 3, True)
        assert sg.search({"collection": "shop"})["totalRecordCount"] == 1
        other = sg.start_replacement("shop")["id"]
        assert sg.abort_replacement("shop", other)["aborted"] is True
        with pytest.raises(SearchgateError) as gone:
            sg.commit_replacement("shop", other)
        assert gone.value.status == 404


def test_a_staged_replacement_through_the_async_sdk(live: Live) -> None:
    _key_id, secret = live.new_key("replacer-async")

    async def replace() -> int:
        async with AsyncSearchgateClient(live.url, secret) as sg:
            rid = (await sg.start_replacement("shop"))["id"]
            await sg.stage_records("shop", rid, RECORDS)
            done = await sg.commit_replacement("shop", rid, wait=True)
            assert done["createdCollection"] is True
            return (await sg.search({"collection": "shop"}))["totalRecordCount"]

    assert asyncio.run(replace()) == 3


def test_without_a_system_name_the_server_sees_the_sdk_user_agent(live: Live) -> None:
    key_id, secret = live.new_key("nameless")
    with SearchgateClient(live.url, secret) as sg:
        sg.upload_records("shop", RECORDS, wait=True)
    assert USER_AGENT.startswith("searchgate-python/")
    assert live.systems(key_id) == {USER_AGENT: 1}


def test_self_info_names_the_key_in_use(live: Live) -> None:
    key_id, secret = live.new_key("who-am-i")
    with SearchgateClient(live.url, CachedKey(lambda: secret), system="probe") as sg:
        me = sg.self_info()
    assert me["id"] == key_id
    assert me["name"] == "who-am-i"
    assert secret not in str(me)


def test_a_rotated_key_is_picked_up_with_one_refresh_and_one_retry(live: Live) -> None:
    old_id, old = live.new_key("v1")
    source = CountingSource(old)
    cached = CachedKey(source, max_age_seconds=300)
    with SearchgateClient(live.url, cached, system="storefront") as sg:
        sg.upload_records("shop", RECORDS, wait=True)
        assert source.calls == 1
        # A rotation: a new primary key goes to the store, the old one is disabled.
        new = live.rt.services.keys.new_primary(SYSTEM, "v2")
        source.values.append(new.secret)
        live.rt.services.keys.disable(SYSTEM, old_id, reason="rotated")
        found = sg.search({"collection": "shop", "query": "lamp"})
        assert found["totalRecordCount"] == 3
        assert source.calls == 2
        assert cached.get() == new.secret
        sg.search({"collection": "shop", "query": "shade"})
        assert source.calls == 2  # the new key is cached again
    assert live.systems(new.info.id) == {"storefront": 2}
    # The old key's one refused request is counted for it too.
    assert live.systems(old_id) == {"storefront": 2}


def test_a_key_that_stays_invalid_raises_after_one_refresh(live: Live) -> None:
    live.new_key("unrelated")
    stale = generate_key()
    source = CountingSource(stale)
    with SearchgateClient(live.url, CachedKey(source), system="stale") as sg:
        with pytest.raises(SearchgateError) as info:
            sg.search({"collection": "shop"})
        assert (info.value.status, info.value.code) == (401, "invalid_key")
        assert stale not in str(info.value)
        assert info.value.request_id
        assert source.calls == 2
        # Each call refreshes at most once: no loop, however often it is called.
        with pytest.raises(SearchgateError):
            sg.search({"collection": "shop"})
        assert source.calls == 3


def test_a_new_but_also_refused_key_gets_exactly_one_retry(live: Live) -> None:
    source = CountingSource(generate_key(), generate_key(), generate_key())
    with (
        SearchgateClient(live.url, CachedKey(source)) as sg,
        pytest.raises(SearchgateError) as info,
    ):
        sg.search({"collection": "shop"})
    assert info.value.status == 401
    assert source.calls == 2


def test_a_fixed_key_is_not_retried_and_errors_carry_the_servers_body(live: Live) -> None:
    key_id, secret = live.new_key("reader")
    live.rt.services.keys.disable(SYSTEM, key_id, reason="test")
    with SearchgateClient(live.url, secret) as sg, pytest.raises(SearchgateError) as info:
        sg.search({"collection": "shop"})
    assert (info.value.status, info.value.code) == (401, "key_disabled")
    assert info.value.body["error"]["code"] == "key_disabled"


def test_server_errors_become_searchgate_errors(live: Live) -> None:
    reader = live.rt.services.keys.create(SYSTEM, "search-only", frozenset({Scope.SEARCH}))
    _, writer = live.new_key("writer")
    with SearchgateClient(live.url, writer) as sg:
        sg.upload_records("shop", RECORDS, wait=True)
        with pytest.raises(SearchgateError) as info:
            sg.search({"collection": "shop", "pageSize": -1})
        assert (info.value.status, info.value.code, info.value.field) == (
            400,
            "invalid_request",
            "pageSize",
        )
        with pytest.raises(SearchgateError) as info:
            sg.search({"collection": "nope"})
        assert info.value.status == 404
    with SearchgateClient(live.url, reader.secret) as sg:
        with pytest.raises(SearchgateError) as info:
            sg.upload_records("shop", RECORDS)
        assert (info.value.status, info.value.code) == (403, "scope_missing")


def test_an_unreachable_server_is_a_connection_error() -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"
    with (
        SearchgateClient(unreachable, generate_key(), timeout=2) as sg,
        pytest.raises(SearchgateConnectionError) as info,
    ):
        sg.search({})
    assert (info.value.status, info.value.code) == (0, "connection_failed")


def test_a_browser_token_from_the_sdk_is_honoured_by_the_server(live: Live) -> None:
    _, secret = live.new_key("storefront-tokens")
    with SearchgateClient(live.url, CachedKey(lambda: secret)) as sg:
        sg.upload_records("shop", RECORDS, wait=True)
        token = sg.browser_token(
            collections=["shop"],
            origins=["https://shop.example"],
            ttl=timedelta(minutes=5),
            scopes=["search"],
            filter='brand:"Lumo"',
        )
    page = {"Authorization": f"Bearer {token}", "Origin": "https://shop.example"}
    r = httpx.post(f"{live.url}/api/v1/search", json={"collection": "shop"}, headers=page)
    assert r.status_code == 200, r.text
    assert r.json()["totalRecordCount"] == 2  # the forced filter hides the Shadey record
    assert r.headers["access-control-allow-origin"] == "https://shop.example"
    # The page cannot widen the filter, only narrow it.
    r = httpx.post(
        f"{live.url}/api/v1/search",
        json={"collection": "shop", "pre-filter": 'brand:"Shadey" OR brand:"Lumo"'},
        headers=page,
    )
    assert r.json()["totalRecordCount"] == 2
    elsewhere = {**page, "Origin": "https://evil.example"}
    r = httpx.post(f"{live.url}/api/v1/search", json={"collection": "shop"}, headers=elsewhere)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "origin_forbidden")
    r = httpx.get(f"{live.url}/api/v1/sayt/search", params={"query": "la"}, headers=page)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "scope_missing")
    assert token not in r.text


def test_the_async_client_makes_the_same_calls_and_follows_a_rotation(live: Live) -> None:
    old_id, old = live.new_key("async-v1")
    source = CountingSource(old)
    cached = CachedKey(source, max_age_seconds=300)

    async def storefront() -> dict[str, Any]:
        async with AsyncSearchgateClient(live.url, cached, system="async-shop") as sg:
            written = await sg.upload_records("shop", RECORDS, wait=True)
            found = await sg.search({"collection": "shop", "query": "lamp", "pageSize": 2})
            brands = await sg.refinements({"collection": "shop", "query": "lamp"}, "brand")
            typed = await sg.sayt("shop", "flo", productItems=2, searchItems=0)
            me = await sg.self_info()
            token = await sg.browser_token(
                collections=["shop"], origins=["https://shop.example"], ttl=timedelta(minutes=5)
            )
            # A rotation: the store gets a new key, the old one is disabled.
            new = live.rt.services.keys.new_primary(SYSTEM, "async-v2")
            source.values.append(new.secret)
            live.rt.services.keys.disable(SYSTEM, old_id, reason="rotated")
            after = await sg.search({"collection": "shop", "query": "shade"})
            with pytest.raises(SearchgateError) as info:
                await sg.search({"collection": "nope"})
            return {
                "upserted": written["upserted"],
                "page": (found["totalRecordCount"], len(found["records"])),
                "brands": {v.get("value") for v in brands["navigation"]["refinements"]},
                "sayt": [p.get("allMeta", {}).get("title") for p in typed["result"]["products"]],
                "me": me["id"],
                "token": token.count("."),
                "after": after["totalRecordCount"],
                "error": (info.value.status, info.value.code),
                "new_id": new.info.id,
            }

    out = asyncio.run(storefront())
    assert live.systems(out.pop("new_id")) == {"async-shop": 2}
    assert out == {
        "upserted": 3,
        "page": (3, 2),
        "brands": {"Lumo", "Shadey"},
        "sayt": ["Floor lamp"],
        "me": old_id,
        "token": 2,
        "after": 1,
        "error": (404, "not_found"),
    }
    assert source.calls == 2
