"""Load shedding and cost limits through the app: the deep-paging cap, the search body
limit (and the key checked before the body), the search pool's refusals (a caller's
concurrency, a full queue, the time budget), and the default rates per client address
of public SAYT and browser tokens. The pool is filled with searches that block on an
event the test sets, so no answer depends on timing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from searchgate.config import Limits, Settings
from searchgate.demo import demo_settings
from searchgate.keys.restrictions import Restrictions
from searchgate.keys.scopes import ALL_SCOPES, Scope
from searchgate.runtime import Runtime
from searchgate.webapp import create_app
from tests.conftest import load
from tests.functional.test_browser_token_auth import SHOP, page, token_for
from tests.keyhelp import SYSTEM

SEARCH = "/api/v1/search"
REFINEMENTS = "/api/v1/search/refinements"
SAYT = "/api/v1/sayt/search"
WINDOW = 60
SEARCH_BODY = 2_000
ADMIN_BODY = 4_000
RATE = 3


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        key_pepper="test-pepper",
        index_writer_heap_bytes=50_000_000,
        index_writer_threads=1,
        indexer_poll_seconds=0.02,
        limits=Limits(
            max_result_window=WINDOW,
            max_search_body_bytes=SEARCH_BODY,
            max_admin_body_bytes=ADMIN_BODY,
        ),
        search_threads=1,
        search_queue=2,
        search_caller_threads=1,
        search_caller_concurrency=2,
        public_sayt_rate_per_minute=RATE,
        browser_token_rate_per_minute=RATE,
    )


def records(n: int = 30) -> list[dict[str, Any]]:
    return [
        {
            "id": str(i),
            "title": f"Wireless headphones {i}",
            "brand": "Sony" if i % 2 else "Bose",
            "category1": "Electronics",
            "category2": "Audio",
            "category3": "Headphones",
            "price": 10 + i,
            "rating": 4.0,
            "colour": "Black",
            "inStock": True,
        }
        for i in range(n)
    ]


@pytest.fixture
def shop(client: TestClient, auth: dict[str, str]) -> dict[str, str]:
    load(client, auth, "default", records(), demo_settings())
    return auth


def error_of(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == code, error
    return error


class Blocker:
    """Searches that hold a pool thread until the test lets them go."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.release = threading.Event()
        self.started = threading.Semaphore(0)

    def hold(self, caller: str) -> None:
        def blocked() -> None:
            self.started.release()
            assert self.release.wait(30)

        self.rt.search_pool.submit(caller, blocked)


@pytest.fixture
def blocker(rt: Runtime) -> Iterator[Blocker]:
    b = Blocker(rt)
    yield b
    b.release.set()


# --- deep paging ------------------------------------------------------------------------


def test_deep_paging_past_the_window_is_refused(client: TestClient, shop: dict[str, str]) -> None:
    r = client.post(SEARCH, json={"query": "", "skip": WINDOW - 10, "pageSize": 10}, headers=shop)
    assert r.status_code == 200, r.text
    r = client.post(SEARCH, json={"query": "", "skip": WINDOW - 10, "pageSize": 11}, headers=shop)
    error = error_of(r, 400, "invalid_request")
    assert error["field"] == "skip"
    assert error["limit"] == WINDOW
    assert "SEARCHGATE_LIMIT_MAX_RESULT_WINDOW" in error["message"]
    body = {"originalQuery": {"skip": WINDOW, "pageSize": 1}, "navigationName": "brand"}
    error_of(client.post(REFINEMENTS, json=body, headers=shop), 400, "invalid_request")


def test_the_default_window_is_documented_as_ten_thousand() -> None:
    assert Limits().max_result_window == 10_000
    assert Limits().max_search_body_bytes == 64 * 1024


# --- bodies -----------------------------------------------------------------------------


def big_search(size: int) -> bytes:
    return orjson.dumps({"query": "headphones", "pad": "x" * size})


@pytest.mark.parametrize("path", [SEARCH, REFINEMENTS])
def test_a_search_body_over_its_limit_is_413(
    client: TestClient, shop: dict[str, str], path: str
) -> None:
    r = client.post(path, content=big_search(SEARCH_BODY), headers=shop)
    error = error_of(r, 413, "payload_too_large")
    assert error["limit"] == SEARCH_BODY
    assert "SEARCHGATE_LIMIT_MAX_SEARCH_BODY_BYTES" in error["message"]
    assert r.headers["connection"] == "close"

    def chunks() -> Iterator[bytes]:
        body = big_search(SEARCH_BODY)
        for i in range(0, len(body), 500):
            yield body[i : i + 500]

    r = client.post(path, content=chunks(), headers=shop)
    error_of(r, 413, "payload_too_large")


def test_a_bad_header_key_is_refused_before_the_body_is_looked_at(
    client: TestClient, shop: dict[str, str]
) -> None:
    bad = {"Authorization": "Bearer sgk_" + "0" * 38}
    # Over the search limit, and not even JSON: the key decides first.
    r = client.post(SEARCH, content=b"{" + b"x" * (SEARCH_BODY * 2), headers=bad)
    error_of(r, 401, "invalid_key")
    r = client.post(SEARCH, content=big_search(SEARCH_BODY * 2))
    # Without a header key the body is read up to the search limit only.
    error_of(r, 413, "payload_too_large")


def test_a_key_in_the_body_still_works_within_the_limit(
    client: TestClient, shop: dict[str, str], key: str
) -> None:
    r = client.post(SEARCH, json={"clientKey": key, "query": "headphones"})
    assert r.status_code == 200, r.text
    assert "clientKey" not in r.json()["originalRequest"]
    body = {"originalQuery": {"clientKey": key}, "navigationName": "brand"}
    assert client.post(REFINEMENTS, json=body).status_code == 200


def test_a_header_key_restricted_to_collections_is_checked_against_the_body(
    client: TestClient, shop: dict[str, str], rt: Runtime
) -> None:
    narrow = rt.services.keys.create(
        SYSTEM,
        "narrow",
        frozenset({Scope.SEARCH}),
        restrictions=Restrictions.build(collections=["default"]),
    ).secret
    headers = {"Authorization": f"Bearer {narrow}"}
    assert client.post(SEARCH, json={"query": "x"}, headers=headers).status_code == 200
    r = client.post(SEARCH, json={"collection": "other"}, headers=headers)
    error = error_of(r, 403, "collection_forbidden")
    assert error["collection"] == "other"
    body = {"originalQuery": {"collection": "other"}, "navigationName": "brand"}
    error_of(client.post(REFINEMENTS, json=body, headers=headers), 403, "collection_forbidden")


@hsettings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.one_of(
        st.binary(max_size=SEARCH_BODY + 200),
        st.dictionaries(
            st.sampled_from(["query", "skip", "pageSize", "collection", "pad", "sort"]),
            st.one_of(st.integers(-5, 10**6), st.text(max_size=300), st.none()),
        ).map(orjson.dumps),
    ),
    path=st.sampled_from([SEARCH, REFINEMENTS]),
)
def test_any_search_body_answers_2xx_or_4xx(
    client: TestClient, shop: dict[str, str], body: bytes, path: str
) -> None:
    r = client.post(path, content=body, headers=shop)
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.json()["error"]["code"]


# --- the search pool ------------------------------------------------------------------


def test_a_caller_past_its_concurrency_gets_429_and_another_key_still_searches(
    client: TestClient, shop: dict[str, str], rt: Runtime, blocker: Blocker
) -> None:
    greedy = rt.services.keys.create(SYSTEM, "greedy", ALL_SCOPES)
    for _ in range(2):
        blocker.hold(greedy.info.id)
    r = client.post(
        SEARCH, json={"query": "x"}, headers={"Authorization": f"Bearer {greedy.secret}"}
    )
    error = error_of(r, 429, "too_many_concurrent")
    assert error["limit"] == 2
    assert r.headers["retry-after"] == "1"
    assert "SEARCHGATE_SEARCH_CALLER_CONCURRENCY" in error["message"]
    # The greedy key holds the only thread; another key's search waits its turn and is
    # answered once the greedy one's searches end.
    answered: list[int] = []
    other = threading.Thread(
        target=lambda: answered.append(
            client.post(SEARCH, json={"query": "headphones"}, headers=shop).status_code
        )
    )
    other.start()
    blocker.release.set()
    other.join(30)
    assert answered == [200]


def test_a_full_queue_answers_503_overloaded(
    client: TestClient, shop: dict[str, str], rt: Runtime, blocker: Blocker
) -> None:
    blocker.hold("running")
    assert blocker.started.acquire(timeout=30)
    blocker.hold("waiting-1")
    blocker.hold("waiting-2")
    r = client.post(SEARCH, json={"query": "x"}, headers=shop)
    error_of(r, 503, "overloaded")
    assert r.headers["retry-after"] == "1"
    body = {"originalQuery": {}, "navigationName": "brand"}
    error_of(client.post(REFINEMENTS, json=body, headers=shop), 503, "overloaded")
    # The rest of the server answers meanwhile.
    assert client.get("/healthz").status_code == 200


def test_a_search_over_its_time_budget_is_503(
    tmp_path: Path, database_url: str, settings: Settings
) -> None:
    tight = settings.model_copy(update={"search_time_budget_seconds": 0.05})
    with TestClient(create_app(tight), raise_server_exceptions=False) as c:
        rt: Runtime = c.app.state.runtime  # type: ignore[attr-defined]
        key = rt.services.keys.create(SYSTEM, "k", ALL_SCOPES).secret
        auth = {"Authorization": f"Bearer {key}"}
        release = threading.Event()
        rt.search_pool.submit("someone", lambda: release.wait(30))
        try:
            r = c.post(SEARCH, json={"query": "x"}, headers=auth)
            error = error_of(r, 503, "time_budget_exceeded")
            assert error["limit"] == 0.05
            assert "SEARCHGATE_SEARCH_TIME_BUDGET_SECONDS" in error["message"]
            assert r.headers["retry-after"] == "1"
        finally:
            release.set()


# --- default rates per client address --------------------------------------------------


def test_public_sayt_has_a_default_rate_per_client_address(
    client: TestClient, shop: dict[str, str]
) -> None:
    settings = demo_settings()
    settings["sayt"] = {**settings["sayt"], "public": True, "publicFields": ["title"]}
    assert client.put("/api/v1/collections/default", json=settings, headers=shop).status_code == 200
    for _ in range(RATE):
        assert client.get(SAYT, params={"query": "wire"}).status_code == 200
    r = client.get(SAYT, params={"query": "wire"})
    error = error_of(r, 429, "rate_limited")
    assert "SEARCHGATE_PUBLIC_SAYT_RATE_PER_MINUTE" in error["message"]
    assert int(r.headers["retry-after"]) >= 1
    # A key's own requests are not public ones.
    assert client.get(SAYT, params={"query": "wire"}, headers=shop).status_code == 200


def test_browser_tokens_have_a_default_rate_per_client_address(
    client: TestClient, shop: dict[str, str], rt: Runtime
) -> None:
    parent = rt.services.keys.create(SYSTEM, "storefront", ALL_SCOPES).secret
    token = token_for(parent)
    for _ in range(RATE):
        r = client.post(SEARCH, json={"query": "headphones"}, headers=page(token, SHOP))
        assert r.status_code == 200, r.text
    r = client.get(SAYT, params={"query": "wire"}, headers=page(token, SHOP))
    error = error_of(r, 429, "rate_limited")
    assert "SEARCHGATE_BROWSER_TOKEN_RATE_PER_MINUTE" in error["message"]
    # The parent key itself, from a server, is not held to the browsers' rate.
    r = client.post(
        SEARCH, json={"query": "headphones"}, headers={"Authorization": f"Bearer {parent}"}
    )
    assert r.status_code == 200


def test_the_settings_and_codes_are_documented() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    operations = (docs / "operations.md").read_text()
    api = (docs / "api.md").read_text()
    for name in (
        "search_threads",
        "search_queue",
        "search_caller_threads",
        "search_caller_concurrency",
        "search_time_budget_seconds",
        "public_sayt_rate_per_minute",
        "browser_token_rate_per_minute",
    ):
        assert name in Settings.model_fields
        assert f"`SEARCHGATE_{name.upper()}`" in operations, name
    for limit in ("max_search_body_bytes", "max_admin_body_bytes", "max_result_window"):
        assert limit in Limits.model_fields
        assert f"`{limit.upper()}`" in api, limit
    for code in ("too_many_concurrent", "overloaded", "time_budget_exceeded", "rate_limited"):
        assert f"`{code}`" in api, code


def test_the_stream_upload_checks_a_header_key_before_reading_the_body(
    client: TestClient, shop: dict[str, str], rt: Runtime
) -> None:
    bad = {
        "Authorization": "Bearer sgk_" + "0" * 38,
        "Content-Type": "multipart/form-data; boundary=x",
    }
    # Not even multipart: the key decides first.
    error_of(
        client.post("/data/v1/upload/stream", content=b"garbage", headers=bad), 401, "invalid_key"
    )
    narrow = rt.services.keys.create(
        SYSTEM,
        "uploader",
        frozenset({Scope.RECORDS_WRITE}),
        restrictions=Restrictions.build(collections=["default"]),
    ).secret
    files = {
        "config": ("config", "collection: other\nsystem: nightly-feed"),
        "data": ("data", b'[{"id": "1", "title": "t"}]', "application/json"),
    }
    r = client.post(
        "/data/v1/upload/stream", files=files, headers={"Authorization": f"Bearer {narrow}"}
    )
    error_of(r, 403, "collection_forbidden")
    files["config"] = ("config", "collection: default\nsystem: nightly-feed")
    r = client.post(
        "/data/v1/upload/stream", files=files, headers={"Authorization": f"Bearer {narrow}"}
    )
    assert r.status_code == 200, r.text


def test_an_admin_body_over_its_limit_is_413_unread(client: TestClient) -> None:
    body = orjson.dumps({"name": "k", "scopes": ["search"], "pad": "x" * ADMIN_BODY})
    r = client.post(
        "/api/v1/admin/keys", content=body, headers={"Authorization": "Bearer sgt_nothing"}
    )
    error = error_of(r, 413, "payload_too_large")
    assert error["limit"] == ADMIN_BODY
    assert "SEARCHGATE_LIMIT_MAX_ADMIN_BODY_BYTES" in error["message"]
    # Within the limit, the credential decides as before.
    small = orjson.dumps({"name": "k", "scopes": ["search"]})
    r = client.post(
        "/api/v1/admin/keys", content=small, headers={"Authorization": "Bearer sgt_nothing"}
    )
    assert r.status_code == 401, r.text
