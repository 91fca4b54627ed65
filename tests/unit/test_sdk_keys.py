"""The SDK's key cache, store adapter, argument checks and import hygiene (no server)."""

from __future__ import annotations

import threading
import types
from dataclasses import dataclass
from datetime import timedelta

import pytest

import searchgate_client
from searchgate_client import (
    CachedKey,
    KeySourceError,
    SearchgateClient,
    derive_browser_token,
    from_store,
)
from searchgate_client.browser_tokens import derive_keypair, public_key_id, verify_browser_token
from searchgate_client.keyformat import generate_key


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Source:
    """A key source the test controls: returns ``value`` or raises ``error``."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.error: Exception | None = None
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.value


def test_the_key_is_cached_until_its_maximum_age() -> None:
    first, second = generate_key(), generate_key()
    source, clock = Source(first), Clock()
    cached = CachedKey(source, max_age_seconds=300, clock=clock)
    assert cached.get() == first
    source.value = second
    clock.now += 299
    assert cached.get() == first
    assert source.calls == 1
    clock.now += 1
    assert cached.get() == second
    assert source.calls == 2
    assert cached.current() == (second, 2)


def test_cached_never_reads_the_source() -> None:
    key = generate_key()
    source, clock = Source(key), Clock()
    cached = CachedKey(source, max_age_seconds=300, clock=clock)
    assert cached.cached() is None
    assert source.calls == 0
    assert cached.get() == key
    assert cached.cached() == (key, 1)
    clock.now += 300
    assert cached.cached() is None
    assert source.calls == 1


def test_max_age_zero_reads_the_source_every_time() -> None:
    source = Source(generate_key())
    cached = CachedKey(source, max_age_seconds=0)
    for _ in range(3):
        cached.get()
    assert source.calls == 3


def test_refresh_reads_now_and_whitespace_around_the_key_is_dropped() -> None:
    first, second = generate_key(), generate_key()
    source = Source(first + "\n")
    cached = CachedKey(source, clock=Clock())
    assert cached.get() == first
    source.value = f"  {second}\r\n"
    assert cached.refresh() == second
    assert cached.get() == second
    assert source.calls == 2


@pytest.mark.parametrize("bad", ["", "sgk_tooshort", "password123", b"sgk_bytes", None])
def test_a_source_returning_a_non_key_is_an_error_that_does_not_echo_it(bad: object) -> None:
    cached = CachedKey(lambda: bad, clock=Clock())  # type: ignore[arg-type, return-value]
    with pytest.raises(KeySourceError) as info:
        cached.get()
    assert info.value.code == "key_source_invalid"
    assert info.value.status == 0
    if isinstance(bad, str) and bad:
        assert bad not in str(info.value)


def test_a_failing_source_is_an_error_with_its_cause() -> None:
    source = Source(generate_key())
    source.error = TimeoutError("vault did not answer")
    cached = CachedKey(source, clock=Clock())
    with pytest.raises(KeySourceError) as info:
        cached.get()
    assert info.value.code == "key_source_failed"
    assert "TimeoutError" in info.value.message
    assert info.value.__cause__ is source.error


def test_a_failed_background_refresh_keeps_the_cached_key_and_retries_later() -> None:
    first, second = generate_key(), generate_key()
    source, clock = Source(first), Clock()
    cached = CachedKey(source, max_age_seconds=60, retry_seconds=10, clock=clock)
    assert cached.get() == first
    clock.now += 61
    source.error = ConnectionError("store down")
    assert cached.get() == first  # the store is down: keep serving the known key
    assert source.calls == 2
    clock.now += 9
    assert cached.get() == first
    assert source.calls == 2  # no hammering of a failing store
    clock.now += 1
    source.error = None
    source.value = second
    assert cached.get() == second
    assert source.calls == 3


def test_a_forced_refresh_raises_when_the_source_fails() -> None:
    """A refresh follows a 401: the cached key is known to be refused, so hiding the
    store's failure behind it would only turn one clear error into another."""
    source = Source(generate_key())
    cached = CachedKey(source, clock=Clock())
    cached.get()
    source.error = PermissionError("denied")
    with pytest.raises(KeySourceError, match="PermissionError"):
        cached.refresh()


def test_concurrent_refreshes_after_the_same_failure_read_the_source_once() -> None:
    first, second = generate_key(), generate_key()
    release = threading.Event()
    calls: list[int] = []

    def slow_source() -> str:
        calls.append(1)
        if len(calls) == 1:
            return first
        release.wait(10)
        return second

    cached = CachedKey(slow_source)
    value, generation = cached.current()
    assert value == first
    results: list[str] = []

    def refresh() -> None:
        results.append(cached.refresh(after=generation))

    threads = [threading.Thread(target=refresh) for _ in range(8)]
    for t in threads:
        t.start()
    release.set()
    for t in threads:
        t.join(10)
    assert results == [second] * 8
    assert len(calls) == 2
    # Without ``after`` a refresh always reads the source.
    cached.refresh()
    assert len(calls) == 3


@dataclass(frozen=True)
class Version:
    value: str
    version: str


class Store:
    def __init__(self, value: str) -> None:
        self.current = Version(value, "1")

    def read(self) -> Version:
        return self.current


def test_from_store_reads_the_current_version_each_time() -> None:
    first, second = generate_key(), generate_key()
    store = Store(first)
    source = from_store(store)
    assert source() == first
    store.current = Version(second, "2")
    assert source() == second
    assert CachedKey(source, max_age_seconds=0).get() == second


def test_the_client_checks_its_arguments_without_echoing_a_key() -> None:
    key = generate_key()
    for url in ("search.example", "ftp://search.example", "https://u:p@search.example"):
        with pytest.raises(ValueError, match="base_url"):
            SearchgateClient(url, key)
    bad_key = "sgk_" + "a" * 38
    with pytest.raises(ValueError, match="not a Searchgate client key") as info:
        SearchgateClient("https://search.example", bad_key)
    assert bad_key not in str(info.value)
    for system in ("", "x" * 65, "line\nbreak", "café"):
        with pytest.raises(ValueError, match="system"):
            SearchgateClient("https://search.example", key, system=system)
    with SearchgateClient("https://search.example/", key, system="shop-eu") as client:
        assert client.base_url == "https://search.example"
        with pytest.raises(ValueError, match="client key"):
            client.search({"query": "lamp", "clientKey": key})
        with pytest.raises(ValueError, match="callback"):
            client.sayt("shop", "la", callback="cb")
        with pytest.raises(ValueError, match="mode"):
            client.upload_records("shop", [], mode="append")


def test_the_client_derives_browser_tokens_from_its_current_key() -> None:
    key = generate_key()
    public = derive_keypair(key)[1]
    with SearchgateClient("https://search.example", CachedKey(lambda: key)) as client:
        token = client.browser_token(
            collections=["shop"], origins=["https://shop.example"], ttl=timedelta(minutes=5)
        )
    claims = verify_browser_token(token, {public_key_id(public): public}.get)
    assert claims.collections == frozenset({"shop"})
    assert derive_browser_token is searchgate_client.derive_browser_token


PUBLIC_API = [
    "MAX_TTL",
    "USER_AGENT",
    "AsyncSearchgateClient",
    "BrowserTokenInfo",
    "CachedKey",
    "InvalidRecord",
    "KeySelf",
    "KeySource",
    "KeySourceError",
    "Navigation",
    "PageInfo",
    "Record",
    "Refinement",
    "RefinementsResponse",
    "ReplacementAbortResponse",
    "ReplacementCommitResponse",
    "ReplacementInfo",
    "SaytNavigation",
    "SaytResponse",
    "SaytResult",
    "SaytSearchTerm",
    "SearchResponse",
    "SearchgateClient",
    "SearchgateConnectionError",
    "SearchgateError",
    "StagedBatchResponse",
    "UploadResponse",
    "derive_browser_token",
    "from_aws",
    "from_env",
    "from_file",
    "from_store",
    "from_vault",
]


def test_all_lists_exactly_the_public_api() -> None:
    public = {
        name
        for name, value in vars(searchgate_client).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(searchgate_client.__all__) == public
    assert sorted(searchgate_client.__all__) == sorted(PUBLIC_API)
    assert len(searchgate_client.__all__) == len(set(searchgate_client.__all__))
