"""Client key and browser token authentication for the data plane.

401: no usable credential (missing, unknown, disabled, expired, deleted, a bad or
expired browser token). 403: a usable credential that may not do this (scope,
collection, client IP, browser origin). 429: the key's rate limit. Bodies say which
rule failed and name the key by id, never by its secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from starlette.requests import Request

from searchgate.api.errors import AuthError
from searchgate.errors import InvalidInput
from searchgate.keys.browser_tokens import (
    BrowserClaims,
    BrowserTokenError,
    looks_like_browser_token,
    verify_browser_token,
)
from searchgate.keys.info import KeyInfo
from searchgate.keys.restrictions import normalize_origin
from searchgate.keys.scopes import Scope
from searchgate.keys.service import KeyService
from searchgate.logs import redact
from searchgate.permissions import Actor, CredentialKind

# Query parameters that carry a key in other products' conventions, and the shape of one
# of ours wherever it is in the query string (base62 survives URL encoding unchanged).
_KEY_PARAMS = frozenset({"clientkey", "client_key", "apikey", "api_key", "key", "token"})
_KEY_IN_URL = re.compile(r"sgk_[0-9A-Za-z]{30,}|eyJ[0-9A-Za-z_-]{10,}\.eyJ")
_DECODINGS = 2
BROWSER_TOKEN_PATHS = frozenset(
    {"/api/v1/search", "/api/v1/search/refinements", "/api/v1/sayt/search", "/api/v1/keys/self"}
)
SYSTEM_HEADER = "x-searchgate-system"
SYSTEM_MAX = 64
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Caller:
    key: KeyInfo
    ip: str | None = None
    user_agent: str | None = None
    system: str = "unknown"
    browser_token: BrowserClaims | None = None

    @property
    def actor(self) -> Actor:
        """The key as the actor of the changes it makes (for the change log)."""
        return Actor(
            kind=CredentialKind.CLIENT_KEY,
            name=f"key {self.key.name}",
            token_id=self.key.id,
            ip=self.ip,
            user_agent=self.user_agent,
        )

    @property
    def forced_filter(self) -> str | None:
        """A browser token's filter: ANDed into every search it makes."""
        return self.browser_token.filter if self.browser_token is not None else None

    @property
    def collections(self) -> frozenset[str] | None:
        """The collections this caller may use (None: all)."""
        allowed = self.key.restrictions.collections
        if self.browser_token is not None:
            token = self.browser_token.collections
            return token if allowed is None else token & allowed
        return allowed

    def may_use(self, collection: str) -> bool:
        allowed = self.collections
        return allowed is None or collection in allowed


def system_of(request: Request, named: str | None = None) -> str:
    """Which system is calling: the SDK's header, else the name the request itself
    gives (``named``: the stream upload's ``system`` config line), else the User-Agent.
    A key-shaped part is masked before the name is cut to size: the name is stored."""
    raw = (
        request.headers.get(SYSTEM_HEADER)
        or named
        or request.headers.get("user-agent")
        or "unknown"
    )
    clean = redact(_UNPRINTABLE.sub("", raw)).strip()[:SYSTEM_MAX]
    return clean or "unknown"


def _key_in_query(request: Request) -> bool:
    names = {name.lower() for name in request.query_params}
    if names & _KEY_PARAMS:
        return True
    # The raw query string, still percent-encoded, as ``request.url.query`` has it; read
    # from the scope because building the URL object costs more than the whole check.
    raw: bytes = request.scope.get("query_string") or b""
    text = raw.decode("latin-1")
    if _KEY_IN_URL.search(text):
        return True
    # Decoded too, as the application and many log readers see it ("sgk%5F..."), and
    # once more for an encoding applied twice ("sgk%255F...").
    for _ in range(_DECODINGS):
        if "%" not in text:
            return False
        text = unquote(text)
        if _KEY_IN_URL.search(text):
            return True
    return False


def presented_key(request: Request, body_key: str | None = None) -> str | None:
    """The key from ``Authorization: Bearer``, ``X-Client-Key`` or the body's
    ``clientKey``; a key in the URL is refused so that it never lands in access logs."""
    # Most calls carry no query string: skip building the parsed URL for them.
    if request.scope.get("query_string") and _key_in_query(request):
        raise AuthError(
            400,
            "key_in_url",
            "client keys and browser tokens are not accepted in URLs (they end up in logs); "
            "send 'Authorization: Bearer <key>' or 'X-Client-Key' instead, and rotate the key",
        )
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        raise AuthError(401, "bad_authorization", "Authorization must be 'Bearer <client key>'")
    header = request.headers.get("x-client-key")
    if header:
        return header.strip()
    return body_key


OPAQUE_ORIGIN = "null"


def _origin(request: Request) -> str | None:
    """The page's origin in normal form; None when no page is named (a server).

    An opaque ("null": a sandboxed frame, a data: page) or malformed Origin comes from
    a browser all the same: it is OPAQUE_ORIGIN, which no origin rule lists, rather
    than None, which would pass for a server."""
    origin = request.headers.get("origin")
    if not origin or origin == OPAQUE_ORIGIN:
        # Browsers leave Origin out of same-origin GETs; the Referer still says the page.
        referer = request.headers.get("referer")
        if not referer:
            return OPAQUE_ORIGIN if origin else None
        parts = urlsplit(referer)
        try:
            return normalize_origin(f"{parts.scheme}://{parts.netloc}")
        except InvalidInput:
            return OPAQUE_ORIGIN if origin else None
    try:
        return normalize_origin(origin)
    except InvalidInput:
        return OPAQUE_ORIGIN


def _token_claims(keys: KeyService, token: str) -> tuple[BrowserClaims, KeyInfo]:
    found: list[KeyInfo] = []

    def public_key_for(kid: str) -> bytes | None:
        parent = keys.by_public_key_id(kid)
        if parent is None or parent.deleted:
            return None
        found.append(parent)
        return parent.public_key

    try:
        claims = verify_browser_token(token, public_key_for)
    except BrowserTokenError as exc:
        raise AuthError(401, exc.code, exc.message) from None
    info = found[-1] if found else None
    if info is None:
        raise AuthError(401, "token_invalid", "the browser token's parent key is unknown")
    return claims, info


def authenticate(
    keys: KeyService,
    request: Request,
    scope: Scope | None,
    body_key: str | None = None,
    collection: str | None = None,
    system: str | None = None,
) -> Caller:
    """``scope`` None: any usable key (``GET /api/v1/keys/self``). ``system``: the
    calling system as the request body names it, if it can (see ``system_of``)."""
    presented = presented_key(request, body_key)
    if not presented:
        raise AuthError(
            401,
            "missing_key",
            "a client key is required: 'Authorization: Bearer <key>', 'X-Client-Key', "
            "or 'clientKey' in a JSON body",
        )
    claims: BrowserClaims | None = None
    if looks_like_browser_token(presented):
        if request.url.path not in BROWSER_TOKEN_PATHS:
            # Elsewhere (records by id, settings) the token's fixed filter would not hold.
            raise AuthError(
                403,
                "token_not_allowed",
                "browser tokens are for search, refinements and SAYT only; "
                "use a client key from a server",
            )
        claims, info = _token_claims(keys, presented)
    else:
        found = keys.verify(presented)
        if found is None:
            raise AuthError(401, "invalid_key", "the client key is not valid")
        info = found
    system = system_of(request, system)
    # Set before the checks, so that refused requests count in the key's usage too.
    request.state.key_id = info.id
    request.state.key_system = system
    _check_usable(info, claims)
    ip = request.client.host if request.client else None
    origin = _origin(request)
    _check_rights(info, claims, scope, collection, ip, origin)
    rate = info.restrictions.rate_limit_per_minute
    if rate is not None:
        wait = keys.limiter.acquire(info.id, rate)
        if wait > 0:
            after = keys.limiter.retry_after(wait)
            raise AuthError(
                429,
                "rate_limited",
                f"client key {info.id} allows {rate} requests per minute; retry in {after} s",
                headers={"Retry-After": str(after)},
                retryAfter=after,
            )
    if origin not in (None, OPAQUE_ORIGIN) and request.headers.get("origin"):
        request.state.cors_origin = request.headers["origin"]
    return Caller(
        key=info,
        ip=ip,
        user_agent=request.headers.get("user-agent"),
        system=system,
        browser_token=claims,
    )


def _check_usable(info: KeyInfo, claims: BrowserClaims | None) -> None:
    via = "the browser token's parent key" if claims is not None else "client key"
    if info.deleted:
        raise AuthError(401, "invalid_key", "the client key is not valid")
    if info.disabled:
        raise AuthError(401, "key_disabled", f"{via} {info.id} is disabled")
    if info.restrictions.expired(datetime.now(UTC)):
        raise AuthError(401, "key_expired", f"{via} {info.id} has expired")


def _check_rights(
    info: KeyInfo,
    claims: BrowserClaims | None,
    scope: Scope | None,
    collection: str | None,
    ip: str | None,
    origin: str | None,
) -> None:
    if scope is not None and (
        scope not in info.scopes or (claims is not None and scope.value not in claims.scopes)
    ):
        holder = "browser token" if claims is not None else f"client key {info.id}"
        raise AuthError(
            403, "scope_missing", f"{holder} lacks the scope {scope.value!r}", scope=scope.value
        )
    if collection is not None:
        allowed = info.restrictions.allows_collection(collection) and (
            claims is None or collection in claims.collections
        )
        if not allowed:
            holder = "browser token" if claims is not None else f"client key {info.id}"
            raise AuthError(
                403,
                "collection_forbidden",
                f"{holder} may not use the collection {collection!r}",
                collection=collection,
            )
    if claims is None:
        if not info.restrictions.allows_ip(ip):
            raise AuthError(
                403,
                "ip_forbidden",
                f"client key {info.id} may not be used from {ip or 'an unknown address'}",
            )
        if not info.restrictions.allows_origin(origin):
            raise AuthError(
                403, "origin_forbidden", f"client key {info.id} may not be used from {origin}"
            )
        return
    # A browser token is for pages of the origins it names (and its parent's, if any).
    if (
        origin is None
        or origin not in claims.origins
        or not info.restrictions.allows_origin(origin)
    ):
        raise AuthError(
            403,
            "origin_forbidden",
            f"this browser token may not be used from {origin or 'a page without an Origin'}",
        )
