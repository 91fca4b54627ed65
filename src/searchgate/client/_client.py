"""SearchgateClient: search, SAYT, uploads and key self-checks over one connection pool."""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from searchgate import __version__
from searchgate.client._errors import SearchgateConnectionError, SearchgateError
from searchgate.client._keys import CachedKey
from searchgate.keys.browser_tokens import derive_browser_token
from searchgate.keys.format import check_key_format

USER_AGENT = f"searchgate-python/{__version__}"
SYSTEM_MAX = 64
# Names under which a key travels in a request body; the SDK sends it in a header only.
_BODY_KEY_FIELDS = ("clientKey", "client_key")


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
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url is an http(s) URL such as https://search.example:8000")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("base_url has no query, fragment or credentials")
        if isinstance(key, str):
            problem = check_key_format(key)
            if problem is not None:
                raise ValueError(f"key is not a Searchgate client key: {problem}")
            self._fixed: str | None = key
            self._provider: CachedKey | None = None
        else:
            self._fixed = None
            self._provider = key
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if system is not None:
            headers["X-Searchgate-System"] = _system_header(system)
        self.base_url = base_url.rstrip("/")
        self.system = system
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=timeout,
            verify=verify,
            # A redirect would carry the key to wherever it points.
            follow_redirects=False,
        )

    # --- the API ---------------------------------------------------------------------

    def search(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /api/v1/search with a GroupBy v1 search request."""
        _no_key_in(body, "the search request")
        return self._call("POST", "/api/v1/search", json_body=dict(body))

    def refinements(self, body: Mapping[str, Any], navigation_name: str) -> dict[str, Any]:
        """Every value of one navigation for the search ``body``."""
        _no_key_in(body, "the search request")
        return self._call(
            "POST",
            "/api/v1/search/refinements",
            json_body={"originalQuery": dict(body), "navigationName": navigation_name},
        )

    def sayt(self, collection: str, query: str, **params: str | int | bool) -> dict[str, Any]:
        """Search as you type; ``params`` are the endpoint's parameters (searchItems,
        productItems, fuzzy, refinements, ...)."""
        if "callback" in params:
            raise ValueError("callback (JSONP) is for browsers; the client reads JSON")
        query_params: dict[str, str | int | bool] = {"collection": collection, "query": query}
        query_params.update(params)
        return self._call("GET", "/api/v1/sayt/search", params=query_params)

    def upload_records(
        self,
        collection: str,
        records: Iterable[Mapping[str, Any]],
        mode: str = "upsert",
        wait: bool = False,
        *,
        fail_on_first_error: bool = False,
    ) -> dict[str, Any]:
        """Upserts ``records`` (``mode="replace"``: replaces the whole collection
        atomically). ``wait``: answer once the records are searchable."""
        if mode not in ("upsert", "replace"):
            raise ValueError("mode is 'upsert' or 'replace'")
        return self._call(
            "POST",
            f"/api/v1/collections/{quote(collection, safe='')}/records",
            params={"mode": mode, "wait": wait, "failOnFirstError": fail_on_first_error},
            json_body=[dict(record) for record in records],
        )

    def self_info(self) -> dict[str, Any]:
        """Which key this client uses (GET /api/v1/keys/self): id, name, scopes, expiry."""
        return self._call("GET", "/api/v1/keys/self")

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
        key = self._fixed if self._fixed is not None else self._current_key()[0]
        return derive_browser_token(
            key, collections=collections, origins=origins, ttl=ttl, scopes=scopes, filter=filter
        )

    # --- plumbing --------------------------------------------------------------------

    def _current_key(self) -> tuple[str, int]:
        if self._provider is None:
            assert self._fixed is not None
            return self._fixed, 0
        return self._provider.current()

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | bool] | None = None,
        json_body: Any = None,
    ) -> dict[str, Any]:
        key, generation = self._current_key()
        response = self._send(method, path, key, params, json_body)
        if response.status_code == 401 and self._provider is not None:
            # The key may have been rotated: read the source again, once. A source that
            # still holds the refused key gets no second, pointless attempt.
            fresh = self._provider.refresh(after=generation)
            if fresh != key:
                response = self._send(method, path, fresh, params, json_body)
        return self._result(response)

    def _send(
        self,
        method: str,
        path: str,
        key: str,
        params: Mapping[str, str | int | bool] | None,
        json_body: Any,
    ) -> httpx.Response:
        try:
            return self._http.request(
                method,
                path,
                params=params,
                json=json_body,
                headers={"Authorization": f"Bearer {key}"},
            )
        except httpx.TimeoutException as exc:
            raise SearchgateConnectionError(
                0, "timeout", f"{method} {path}: no answer in time ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise SearchgateConnectionError(
                0, "connection_failed", f"{method} {path}: {type(exc).__name__}: {exc}"
            ) from exc

    @staticmethod
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
        field = error.get("field")
        request_id = error.get("requestId") or response.headers.get("x-request-id")
        raise SearchgateError(
            response.status_code,
            code if isinstance(code, str) else f"http_{response.status_code}",
            message
            if isinstance(message, str)
            else f"HTTP {response.status_code} {response.reason_phrase}".strip(),
            field=field if isinstance(field, str) else None,
            request_id=request_id if isinstance(request_id, str) else None,
            retry_after=_float_or_none(response.headers.get("retry-after")),
            body=body,
        )

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
