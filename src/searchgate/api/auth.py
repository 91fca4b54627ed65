"""The data plane's side of the key check: it reads the credential a request presents
(refusing one in the URL) and the request's context once, and the keys service decides
the rest in one call (``searchgate.keys.check``: the status codes and error bodies).
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from starlette.requests import Request

from searchgate.api.errors import AuthError
from searchgate.errors import InvalidInput
from searchgate.keys.check import OPAQUE_ORIGIN, Caller, KeyRefusal, Presented, RequestContext
from searchgate.keys.restrictions import normalize_origin
from searchgate.keys.scopes import Scope
from searchgate.keys.service import KeyService
from searchgate.logs import redact

__all__ = [
    "Caller",
    "authenticate",
    "authorize_presented",
    "presented_key",
    "request_context",
    "system_of",
]

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


# Normal forms of the Origin values seen: a shop's pages send the same few on every
# request, and parsing one costs more than the rest of the key check. Bounded, since
# any caller can send any value.
_NORMAL_ORIGINS: dict[str, str] = {}
_NORMAL_ORIGINS_MAX = 1024


def _normal_origin(value: str) -> str:
    """``value`` in normal form, or OPAQUE_ORIGIN when it is malformed."""
    known = _NORMAL_ORIGINS.get(value)
    if known is None:
        try:
            known = normalize_origin(value)
        except InvalidInput:
            known = OPAQUE_ORIGIN
        if len(_NORMAL_ORIGINS) >= _NORMAL_ORIGINS_MAX:
            _NORMAL_ORIGINS.clear()
        _NORMAL_ORIGINS[value] = known
    return known


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
    return _normal_origin(origin)


def request_context(request: Request, system: str | None = None) -> RequestContext:
    """What the keys service needs of the request besides the credential."""
    return RequestContext(
        ip=request.client.host if request.client else None,
        origin=_origin(request),
        system=system_of(request, system),
        user_agent=request.headers.get("user-agent"),
        browser_tokens=request.scope["path"] in BROWSER_TOKEN_PATHS,
    )


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
    return authorize_presented(
        keys, request, presented_key(request, body_key), scope, collection, system
    )


def authorize_presented(
    keys: KeyService,
    request: Request,
    secret: str | None,
    scope: Scope | None,
    collection: str | None = None,
    system: str | None = None,
) -> Caller:
    """``authenticate`` for a route that has already read the credential with
    ``presented_key`` (SAYT must, before its parameters): the URL is scanned once."""
    context = request_context(request, system)
    try:
        caller = keys.authorize(Presented(secret) if secret else None, context, scope, collection)
    except KeyRefusal as exc:
        # Refused requests of a known key count in its usage too.
        if exc.key_id is not None:
            request.state.key_id = exc.key_id
            request.state.key_system = context.system
        raise
    request.state.key_id = caller.key.id
    request.state.key_system = caller.system
    if context.origin not in (None, OPAQUE_ORIGIN) and request.headers.get("origin"):
        request.state.cors_origin = request.headers["origin"]
    return caller
