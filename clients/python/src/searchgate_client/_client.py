"""SearchgateClient and AsyncSearchgateClient: search, SAYT, uploads and key self-checks
over one connection pool. Both build the same requests and read the same answers; they
differ only in how they wait."""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import TracebackType
from typing import Any, cast
from urllib.parse import quote, urlsplit

import anyio.to_thread
import httpx

from searchgate_client._errors import SearchgateConnectionError, SearchgateError
from searchgate_client._keys import CachedKey
from searchgate_client._types import (
    KeySelf,
    RefinementsResponse,
    ReplacementAbortResponse,
    ReplacementCommitResponse,
    ReplacementInfo,
    SaytResponse,
    SearchResponse,
    StagedBatchResponse,
    UploadResponse,
)
from searchgate_client._version import __version__
from searchgate_client.browser_tokens import derive_browser_token
from searchgate_client.keyformat import check_key_format

USER_AGENT = f"searchgate-python/{__version__}"
SYSTEM_MAX = 64
# Names under which a key travels in a request body; the SDK sends it in a header only.
_BODY_KEY_FIELDS = ("clientKey", "client_key")

Params = Mapping[str, str | int | bool]


def _system_header(system: str) -> str:
    if not system or len(system) > SYSTEM_MAX or not system.isprintable() or not system.isascii():
        raise ValueError(f"system is 1 to {SYSTEM_MAX} printable ASCII characters")
    return system


def _no_key_in(body: Mapping[str, Any], where: str) -> None:
    if any(name in body for name in _BODY_KEY_FIELDS):
        raise ValueError(
            f"{where} holds a client key: remove it, the client sends its key in a header"
        )


def _float_or_none(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class _Call:
    """One API request, before a key is attached."""

    method: str
    path: str
    params: Params | None = None
    json_body: Any = field(default=None, repr=False)


def _search(body: Mapping[str, Any]) -> _Call:
    _no_key_in(body, "the search request")
    return _Call("POST", "/api/v1/search", json_body=dict(body))


def _refinements(body: Mapping[str, Any], navigation_name: str) -> _Call:
    _no_key_in(body, "the search request")
    return _Call(
        "POST",
        "/api/v1/search/refinements",
        json_body={"originalQuery": dict(body), "navigationName": navigation_name},
    )


def _sayt(collection: str, query: str, params: Params) -> _Call:
    if "callback" in params:
        raise ValueError("callback (JSONP) is for browsers; the client reads JSON")
    query_params: dict[str, str | int | bool] = {"collection": collection, "query": query}
    query_params.update(params)
    return _Call("GET", "/api/v1/sayt/search", params=query_params)


def _upload(
    collection: str,
    records: Iterable[Mapping[str, Any]],
    mode: str,
    wait: bool,
    fail_on_first_error: bool,
) -> _Call:
    if mode not in ("upsert", "replace"):
        raise ValueError("mode is 'upsert' or 'replace'")
    return _Call(
        "POST",
        f"/api/v1/collections/{quote(collection, safe='')}/records",
        params={"mode": mode, "wait": wait, "failOnFirstError": fail_on_first_error},
        json_body=[dict(record) for record in records],
    )


def _replacements(collection: str, *parts: str) -> str:
    path = f"/api/v1/collections/{quote(collection, safe='')}/replacements"
    return "/".join([path, *(quote(p, safe="") for p in parts)])


def _stage(collection: str, replacement_id: str, records: Iterable[Mapping[str, Any]]) -> _Call:
    return _Call(
        "POST",
        _replacements(collection, replacement_id, "records"),
        json_body=[dict(record) for record in records],
    )


_SELF = _Call("GET", "/api/v1/keys/self")


def _connection_error(call: _Call, exc: httpx.TransportError) -> SearchgateConnectionError:
    where = f"{call.method} {call.path}"
    if isinstance(exc, httpx.TimeoutException):
        return SearchgateConnectionError(
            0, "timeout", f"{where}: no answer in time ({type(exc).__name__})"
        )
    return SearchgateConnectionError(
        0, "connection_failed", f"{where}: {type(exc).__name__}: {exc}"
    )


def _result(response: httpx.Response) -> dict[str, Any]:
    try:
        parsed: Any = response.json()
    except ValueError:
        parsed = None
    if response.is_success:
        if not isinstance(parsed, dict):
            raise SearchgateError(
                response.status_code,
                "unexpected_response",
                "the server's answer is not a JSON object",
            )
        return parsed
    body = parsed if isinstance(parsed, dict) else {}
    raw_error = body.get("error")
    error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
    code = error.get("code")
    message = error.get("message")
    field_name = error.get("field")
    request_id = error.get("requestId") or response.headers.get("x-request-id")
    raise SearchgateError(
        response.status_code,
        code if isinstance(code, str) else f"http_{response.status_code}",
        message
        if isinstance(message, str)
        else f"HTTP {response.status_code} {response.reason_phrase}".strip(),
        field=field_name if isinstance(field_name, str) else None,
        request_id=request_id if isinstance(request_id, str) else None,
        retry_after=_float_or_none(response.headers.get("retry-after")),
        body=body,
    )


class _Settings:
    """What both clients check and keep from their arguments."""

    def __init__(
        self,
        base_url: str,
        key: CachedKey | str,
        system: str | None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url is an http(s) URL such as https://search.example:8000")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("base_url has no query, fragment or credentials")
        if isinstance(key, str):
            problem = check_key_format(key)
            if problem is not None:
                raise ValueError(f"key is not a Searchgate client key: {problem}")
            self.fixed: str | None = key
            self.provider: CachedKey | None = None
        else:
            self.fixed = None
            self.provider = key
        self.headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if system is not None:
            self.headers["X-Searchgate-System"] = _system_header(system)
        self.base_url = base_url.rstrip("/")


def _token(
    key: str,
    collections: Sequence[str],
    origins: Sequence[str],
    ttl: timedelta,
    scopes: Sequence[str],
    filter: str | None,
) -> str:
    return derive_browser_token(
        key, collections=collections, origins=origins, ttl=ttl, scopes=scopes, filter=filter
    )


class SearchgateClient:
    """A client of one Searchgate server.

    ``key`` is a ``CachedKey`` (recommended: the key comes from the secret store and is
    refreshed once when the server answers 401, so rotations go unnoticed) or a fixed
    key string. ``system`` names the calling system in the server's usage view
    (``X-Searchgate-System``); without it the server records the User-Agent.
    """

    def __init__(
        self,
        base_url: str,
        key: CachedKey | str,
        system: str | None = None,
        timeout: float = 10,
        *,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._settings = _Settings(base_url, key, system)
        self.base_url = self._settings.base_url
        self.system = system
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=self._settings.headers,
            timeout=timeout,
            verify=verify,
            # A redirect would carry the key to wherever it points.
            follow_redirects=False,
        )

    # --- the API ---------------------------------------------------------------------

    def search(self, body: Mapping[str, Any]) -> SearchResponse:
        """POST /api/v1/search with a GroupBy v1 search request."""
        return cast(SearchResponse, self._call(_search(body)))

    def refinements(self, body: Mapping[str, Any], navigation_name: str) -> RefinementsResponse:
        """Every value of one navigation for the search ``body``."""
        return cast(RefinementsResponse, self._call(_refinements(body, navigation_name)))

    def sayt(self, collection: str, query: str, **params: str | int | bool) -> SaytResponse:
        """Search as you type; ``params`` are the endpoint's parameters (searchItems,
        productItems, fuzzy, refinements, ...)."""
        return cast(SaytResponse, self._call(_sayt(collection, query, params)))

    def upload_records(
        self,
        collection: str,
        records: Iterable[Mapping[str, Any]],
        mode: str = "upsert",
        wait: bool = False,
        *,
        fail_on_first_error: bool = False,
    ) -> UploadResponse:
        """Upserts ``records`` (``mode="replace"``: replaces the whole collection
        atomically). ``wait``: answer once the records are searchable."""
        call = _upload(collection, records, mode, wait, fail_on_first_error)
        return cast(UploadResponse, self._call(call))

    def start_replacement(self, collection: str) -> ReplacementInfo:
        """Opens a staged replacement of ``collection`` (one at a time per collection):
        stage its new records in batches, then ``commit_replacement`` swaps them in."""
        return cast(ReplacementInfo, self._call(_Call("POST", _replacements(collection))))

    def replacement(self, collection: str, replacement_id: str) -> ReplacementInfo:
        """A replacement's staged record count and expiry."""
        call = _Call("GET", _replacements(collection, replacement_id))
        return cast(ReplacementInfo, self._call(call))

    def stage_records(
        self, collection: str, replacement_id: str, records: Iterable[Mapping[str, Any]]
    ) -> StagedBatchResponse:
        """Stages a batch by record id: sending the same batch again stages nothing twice."""
        call = _stage(collection, replacement_id, records)
        return cast(StagedBatchResponse, self._call(call))

    def commit_replacement(
        self, collection: str, replacement_id: str, wait: bool = False
    ) -> ReplacementCommitResponse:
        """Swaps the staged records in for the collection's, atomically."""
        call = _Call(
            "POST", _replacements(collection, replacement_id, "commit"), params={"wait": wait}
        )
        return cast(ReplacementCommitResponse, self._call(call))

    def abort_replacement(self, collection: str, replacement_id: str) -> ReplacementAbortResponse:
        """Drops the staged records; the collection is untouched."""
        call = _Call("DELETE", _replacements(collection, replacement_id))
        return cast(ReplacementAbortResponse, self._call(call))

    def self_info(self) -> KeySelf:
        """Which key this client uses (GET /api/v1/keys/self): id, name, scopes, expiry."""
        return cast(KeySelf, self._call(_SELF))

    def browser_token(
        self,
        *,
        collections: Sequence[str],
        origins: Sequence[str],
        ttl: timedelta,
        scopes: Sequence[str] = ("search", "sayt"),
        filter: str | None = None,
    ) -> str:
        """A browser token derived offline from the current key (see
        ``derive_browser_token``); after a rotation it is derived from the new key."""
        return _token(self._current_key()[0], collections, origins, ttl, scopes, filter)

    # --- plumbing --------------------------------------------------------------------

    def _current_key(self) -> tuple[str, int]:
        provider = self._settings.provider
        if provider is None:
            assert self._settings.fixed is not None
            return self._settings.fixed, 0
        return provider.current()

    def _call(self, call: _Call) -> dict[str, Any]:
        key, generation = self._current_key()
        response = self._send(call, key)
        provider = self._settings.provider
        if response.status_code == 401 and provider is not None:
            # The key may have been rotated: read the source again, once. A source that
            # still holds the refused key gets no second, pointless attempt.
            fresh = provider.refresh(after=generation)
            if fresh != key:
                response = self._send(call, fresh)
        return _result(response)

    def _send(self, call: _Call, key: str) -> httpx.Response:
        try:
            return self._http.request(
                call.method,
                call.path,
                params=call.params,
                json=call.json_body,
                headers={"Authorization": f"Bearer {key}"},
            )
        except httpx.TransportError as exc:
            raise _connection_error(call, exc) from exc

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SearchgateClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncSearchgateClient:
    """``SearchgateClient`` for asyncio or trio: the same arguments and methods, awaited.

    A ``CachedKey`` whose copy is fresh is used at once; reading its source (which may
    block on a secret store) runs in a worker thread, never in the event loop.
    """

    def __init__(
        self,
        base_url: str,
        key: CachedKey | str,
        system: str | None = None,
        timeout: float = 10,
        *,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._settings = _Settings(base_url, key, system)
        self.base_url = self._settings.base_url
        self.system = system
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=self._settings.headers,
            timeout=timeout,
            verify=verify,
            # A redirect would carry the key to wherever it points.
            follow_redirects=False,
        )

    # --- the API ---------------------------------------------------------------------

    async def search(self, body: Mapping[str, Any]) -> SearchResponse:
        """POST /api/v1/search with a GroupBy v1 search request."""
        return cast(SearchResponse, await self._call(_search(body)))

    async def refinements(
        self, body: Mapping[str, Any], navigation_name: str
    ) -> RefinementsResponse:
        """Every value of one navigation for the search ``body``."""
        return cast(RefinementsResponse, await self._call(_refinements(body, navigation_name)))

    async def sayt(self, collection: str, query: str, **params: str | int | bool) -> SaytResponse:
        """Search as you type; ``params`` are the endpoint's parameters."""
        return cast(SaytResponse, await self._call(_sayt(collection, query, params)))

    async def upload_records(
        self,
        collection: str,
        records: Iterable[Mapping[str, Any]],
        mode: str = "upsert",
        wait: bool = False,
        *,
        fail_on_first_error: bool = False,
    ) -> UploadResponse:
        """Upserts ``records`` (``mode="replace"``: replaces the whole collection
        atomically). ``wait``: answer once the records are searchable."""
        call = _upload(collection, records, mode, wait, fail_on_first_error)
        return cast(UploadResponse, await self._call(call))

    async def start_replacement(self, collection: str) -> ReplacementInfo:
        """Opens a staged replacement of ``collection`` (one at a time per collection):
        stage its new records in batches, then ``commit_replacement`` swaps them in."""
        return cast(ReplacementInfo, await self._call(_Call("POST", _replacements(collection))))

    async def replacement(self, collection: str, replacement_id: str) -> ReplacementInfo:
        """A replacement's staged record count and expiry."""
        call = _Call("GET", _replacements(collection, replacement_id))
        return cast(ReplacementInfo, await self._call(call))

    async def stage_records(
        self, collection: str, replacement_id: str, records: Iterable[Mapping[str, Any]]
    ) -> StagedBatchResponse:
        """Stages a batch by record id: sending the same batch again stages nothing twice."""
        call = _stage(collection, replacement_id, records)
        return cast(StagedBatchResponse, await self._call(call))

    async def commit_replacement(
        self, collection: str, replacement_id: str, wait: bool = False
    ) -> ReplacementCommitResponse:
        """Swaps the staged records in for the collection's, atomically."""
        call = _Call(
            "POST", _replacements(collection, replacement_id, "commit"), params={"wait": wait}
        )
        return cast(ReplacementCommitResponse, await self._call(call))

    async def abort_replacement(
        self, collection: str, replacement_id: str
    ) -> ReplacementAbortResponse:
        """Drops the staged records; the collection is untouched."""
        call = _Call("DELETE", _replacements(collection, replacement_id))
        return cast(ReplacementAbortResponse, await self._call(call))

    async def self_info(self) -> KeySelf:
        """Which key this client uses (GET /api/v1/keys/self): id, name, scopes, expiry."""
        return cast(KeySelf, await self._call(_SELF))

    async def browser_token(
        self,
        *,
        collections: Sequence[str],
        origins: Sequence[str],
        ttl: timedelta,
        scopes: Sequence[str] = ("search", "sayt"),
        filter: str | None = None,
    ) -> str:
        """A browser token derived offline from the current key (see
        ``derive_browser_token``); after a rotation it is derived from the new key."""
        key = (await self._current_key())[0]
        return _token(key, collections, origins, ttl, scopes, filter)

    # --- plumbing --------------------------------------------------------------------

    async def _current_key(self) -> tuple[str, int]:
        provider = self._settings.provider
        if provider is None:
            assert self._settings.fixed is not None
            return self._settings.fixed, 0
        cached = provider.cached()
        if cached is not None:
            return cached
        return await anyio.to_thread.run_sync(provider.current)

    async def _call(self, call: _Call) -> dict[str, Any]:
        key, generation = await self._current_key()
        response = await self._send(call, key)
        provider = self._settings.provider
        if response.status_code == 401 and provider is not None:
            # As in SearchgateClient._call: one re-read of the source, one retry.
            fresh = await anyio.to_thread.run_sync(lambda: provider.refresh(after=generation))
            if fresh != key:
                response = await self._send(call, fresh)
        return _result(response)

    async def _send(self, call: _Call, key: str) -> httpx.Response:
        try:
            return await self._http.request(
                call.method,
                call.path,
                params=call.params,
                json=call.json_body,
                headers={"Authorization": f"Bearer {key}"},
            )
        except httpx.TransportError as exc:
            raise _connection_error(call, exc) from exc

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncSearchgateClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
