"""A storefront that never puts the client key in a page.

It searches Searchgate on the server through the Python SDK (``searchgate-client``),
with the client key read from Vault or OpenBao (KV v2), re-read every few minutes and
at once when Searchgate answers 401. Its pages search as you type straight from the
browser with a short-lived browser token that this server derives, offline, for the
page's own origin: SAYT only, this collection only, minutes long.

    GET  /?q=TEXT                 the shop page; with q, the results, searched here
    GET  /api/search?q=TEXT       the same search as JSON
    POST /api/browser-token       {token, expiresAt, refreshInSeconds} for the calling page
    POST /api/browser-token?refused=1
                                  the same, after Searchgate refused the page's token:
                                  the key is checked first (a rotation may have deleted it)
    GET  /stats                   key reads, searches, tokens issued, failures

Settings come from the environment; see README.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import uvicorn
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from searchgate_client import (
    AsyncSearchgateClient,
    CachedKey,
    SearchgateError,
    from_vault,
)
from searchgate_client.browser_tokens import normalize_origin

HERE = Path(__file__).resolve().parent
PAGE_SIZE = 12
log = logging.getLogger("storefront")


class SettingError(Exception):
    pass


def _setting(env: dict[str, str], name: str, default: str | None = None) -> str:
    value = env.get(name, "").strip()
    if value:
        return value
    if default is None:
        raise SettingError(f"{name} is not set")
    return default


def _seconds(env: dict[str, str], name: str, default: str, lowest: float) -> float:
    text = _setting(env, name, default)
    try:
        value = float(text)
    except ValueError:
        raise SettingError(f"{name} is a number of seconds, got {text!r}") from None
    if not lowest <= value <= 86_400:
        raise SettingError(f"{name} is from {lowest:g} to 86400 seconds")
    return value


@dataclass(frozen=True)
class Settings:
    searchgate_url: str  # as this server reaches Searchgate
    public_url: str  # as browsers reach it
    public_origin: str  # the same, as the pages' Content-Security-Policy names it
    key_path: str
    system: str
    page_system: str
    collection: str
    key_max_age: float
    token_ttl: timedelta
    origins: frozenset[str]
    host: str
    port: int

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Settings:
        host = _setting(env, "HOST", "127.0.0.1")
        try:
            port = int(_setting(env, "PORT", "8000"))
        except ValueError:
            raise SettingError("PORT is a port number") from None
        searchgate_url = _setting(env, "SEARCHGATE_URL").rstrip("/")
        system = _setting(env, "SEARCHGATE_SYSTEM", "storefront-python")
        default_origins = f"http://{host}:{port},http://localhost:{port}"
        try:
            origins = frozenset(
                normalize_origin(o.strip())
                for o in _setting(env, "STOREFRONT_ORIGINS", default_origins).split(",")
                if o.strip()
            )
        except ValueError as exc:
            raise SettingError(f"STOREFRONT_ORIGINS: {exc}") from None
        ttl = _seconds(env, "STOREFRONT_TOKEN_TTL_SECONDS", "600", 60)
        public_url = _setting(env, "SEARCHGATE_PUBLIC_URL", searchgate_url).rstrip("/")
        parts = urlsplit(public_url)
        try:
            public_origin = normalize_origin(f"{parts.scheme}://{parts.netloc}")
        except ValueError as exc:
            raise SettingError(f"SEARCHGATE_PUBLIC_URL: {exc}") from None
        return cls(
            searchgate_url=searchgate_url,
            public_url=public_url,
            public_origin=public_origin,
            key_path=_setting(env, "SEARCHGATE_KEY_PATH"),
            system=system,
            page_system=_setting(env, "STOREFRONT_PAGE_SYSTEM", f"{system}-pages"),
            collection=_setting(env, "SEARCHGATE_COLLECTION", "default"),
            key_max_age=_seconds(env, "SEARCHGATE_KEY_MAX_AGE_SECONDS", "300", 0),
            token_ttl=timedelta(seconds=ttl),
            origins=origins,
            host=host,
            port=port,
        )

    @property
    def token_refresh_seconds(self) -> int:
        # Pages ask again at half a token's life, and no later than this server re-reads
        # the key: after a rotation, they move to the new key as soon as it does, so the
        # old key goes quiet and can be retired.
        half_life = self.token_ttl.total_seconds() / 2
        return max(1, int(min(half_life, max(self.key_max_age, 1))))


class Counters:
    def __init__(self) -> None:
        self.searches = 0
        self.failed_searches = 0
        self.tokens = 0
        self.refused_token_checks = 0
        self.failed_tokens = 0


class Storefront:
    def __init__(self, settings: Settings, key: CachedKey) -> None:
        self.settings = settings
        self.key = key
        self.searchgate = AsyncSearchgateClient(
            settings.searchgate_url, key, system=settings.system, timeout=10
        )
        self.counters = Counters()
        self._check = anyio.Lock()
        self._templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True),
        )
        self._csp = "; ".join(
            [
                "default-src 'self'",
                f"connect-src 'self' {settings.public_origin}",
                "img-src 'self'",
                "base-uri 'none'",
                "form-action 'self'",
                "frame-ancestors 'none'",
            ]
        )

    # --- server-side search, through the SDK ------------------------------------------

    async def search(self, query: str) -> dict[str, Any]:
        """The first page of ``query``; the SDK re-reads the key once on a 401."""
        self.counters.searches += 1
        try:
            found = await self.searchgate.search(
                {"collection": self.settings.collection, "query": query, "pageSize": PAGE_SIZE}
            )
        except SearchgateError as exc:
            self.counters.failed_searches += 1
            log.warning("search failed: %s %s: %s", exc.status, exc.code, exc.message)
            raise
        products = []
        for record in found["records"]:
            meta = record.get("allMeta") or {}
            products.append(
                {
                    "id": record["_id"],
                    "title": record.get("_t") or meta.get("title") or record["_id"],
                    "brand": meta.get("brand"),
                    "price": meta.get("price"),
                }
            )
        return {
            "query": query,
            "totalRecordCount": found["totalRecordCount"],
            "products": products,
        }

    # --- browser tokens ----------------------------------------------------------------

    async def browser_token(self, origin: str, refused: bool) -> dict[str, Any]:
        if refused:
            self.counters.refused_token_checks += 1
            await self._check_key()
        # Whole seconds, as in the token: never later than the token's own expiry.
        issued = datetime.now(UTC).replace(microsecond=0)
        token = await self.derive(origin)
        self.counters.tokens += 1
        return {
            "token": token,
            "expiresAt": (issued + self.settings.token_ttl).isoformat(),
            "refreshInSeconds": self.settings.token_refresh_seconds,
        }

    async def derive(self, origin: str) -> str:
        """A token from the current key: search as you type, in this collection, from
        ``origin``, for the configured lifetime. Offline: no request is made."""
        return await self.searchgate.browser_token(
            collections=[self.settings.collection],
            origins=[origin],
            ttl=self.settings.token_ttl,
            scopes=["sayt"],
        )

    async def _check_key(self) -> None:
        """Searchgate refused a page's token: its parent key may be gone (a rotation
        deleted it) while this server still holds it. Asking Searchgate which key this
        is lets the SDK's refresh-on-401 read the store again; pages refused together
        share one check."""
        _, seen = await anyio.to_thread.run_sync(self.key.current)
        async with self._check:
            _, now = await anyio.to_thread.run_sync(self.key.current)
            if now != seen:
                return  # another page's check has read the store meanwhile
            await self.searchgate.self_info()

    # --- HTTP --------------------------------------------------------------------------

    def page(self, query: str, results: dict[str, Any] | None, problem: str | None) -> str:
        return self._templates.get_template("page.html").render(
            settings=self.settings, query=query, results=results, problem=problem
        )

    async def home(self, request: Request) -> Response:
        query = request.query_params.get("q", "").strip()
        results, problem, status = None, None, 200
        if query:
            try:
                results = await self.search(query)
            except SearchgateError as exc:
                problem, status = _problem(exc)
        response = HTMLResponse(self.page(query, results, problem), status_code=status)
        response.headers["Content-Security-Policy"] = self._csp
        response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    async def api_search(self, request: Request) -> Response:
        query = request.query_params.get("q", "").strip()
        try:
            return JSONResponse(await self.search(query))
        except SearchgateError as exc:
            message, status = _problem(exc)
            return _error(status, exc.code, message)

    async def api_browser_token(self, request: Request) -> Response:
        # The page's own origin, as its browser names it: a token for any other origin
        # would be useless to it, and one for a foreign page is not handed out.
        raw = request.headers.get("origin", "")
        try:
            origin = normalize_origin(raw)
        except ValueError:
            origin = ""
        if origin not in self.settings.origins:
            return _error(
                403, "origin_forbidden", "browser tokens are for pages of this storefront only"
            )
        try:
            body = await self.browser_token(origin, "refused" in request.query_params)
        except SearchgateError as exc:
            self.counters.failed_tokens += 1
            log.warning("no browser token: %s %s: %s", exc.status, exc.code, exc.message)
            return _error(503, exc.code, "search as you type is unavailable right now")
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    async def stats(self, request: Request) -> Response:
        held = self.key.cached()
        return JSONResponse(
            {
                "system": self.settings.system,
                "keyReads": self.key.source_calls,
                "keyGeneration": held[1] if held is not None else None,
                "searches": self.counters.searches,
                "failedSearches": self.counters.failed_searches,
                "browserTokens": self.counters.tokens,
                "refusedTokenChecks": self.counters.refused_token_checks,
                "failedBrowserTokens": self.counters.failed_tokens,
            }
        )


def _problem(exc: SearchgateError) -> tuple[str, int]:
    if exc.status in (400, 413, 414, 422):
        return f"This search cannot run: {exc.message}", 400
    return "Search is unavailable right now. Please try again in a moment.", 503


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def create_app(settings: Settings) -> Starlette:
    key = CachedKey(from_vault(settings.key_path), max_age_seconds=settings.key_max_age)
    shop = Storefront(settings, key)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Fail at the start, not at the first customer, when the store cannot be read
        # or the token settings are refused (a malformed collection name).
        await anyio.to_thread.run_sync(key.current)
        await shop.derive(min(settings.origins))
        yield
        await shop.searchgate.aclose()

    app = Starlette(
        routes=[
            Route("/", shop.home),
            Route("/api/search", shop.api_search),
            Route("/api/browser-token", shop.api_browser_token, methods=["POST"]),
            Route("/stats", shop.stats),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        lifespan=lifespan,
    )
    app.state.storefront = shop
    return app


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # One line per request to Searchgate is the access log's job, not this one's.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = Settings.from_env(dict(os.environ))
    except SettingError as exc:
        print(f"storefront: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings)
    log.info(
        "listening on http://%s:%d as %s (pages: %s)",
        settings.host,
        settings.port,
        settings.system,
        settings.page_system,
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
