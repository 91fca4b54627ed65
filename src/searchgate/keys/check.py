"""The check a data-plane request passes: one call decides whether the credential it
presents (a client key or a browser token) may do this here and now.

Validity (unknown, deleted, disabled, expired; a bad or expired browser token), then
rights (scope, collection, client IP, browser origin), then the key's rate. The HTTP
layer reads the credential and the request's context once and raises what this
raises: 401 for no usable credential, 403 for a usable one that may not do this, 429
for the rate. Messages name the key by id, never by its secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from searchgate.errors import Forbidden, SearchgateError, TooManyAttempts, Unauthenticated
from searchgate.keys.info import KeyInfo
from searchgate.keys.reading import KeyRecords
from searchgate.keys.scopes import Scope
from searchgate.permissions import Actor, CredentialKind
from searchgate_client.browser_tokens import (
    BrowserClaims,
    BrowserTokenError,
    looks_like_browser_token,
    verify_browser_token,
)

# The Origin of a page that may not say where it is (a sandboxed frame, a data: page):
# it comes from a browser all the same, and no origin rule lists it.
OPAQUE_ORIGIN = "null"


@dataclass(frozen=True, slots=True)
class Presented:
    """The credential a request carries: a client key or a browser token."""

    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the request says of itself, read once by the HTTP layer."""

    ip: str | None
    # In normal form; OPAQUE_ORIGIN for a browser page that names none; None when no
    # page is named (a server).
    origin: str | None
    system: str
    user_agent: str | None
    # Whether this operation takes browser tokens (search, refinements, SAYT): elsewhere
    # (records by id, settings) a token's fixed filter would not hold.
    browser_tokens: bool


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


class KeyRefusal(SearchgateError):
    """A refused credential. ``key_id``: the key it turned out to be, if known (a
    refused request still counts in that key's usage); never in the answer's body."""

    def __init__(self, code: str, message: str, key_id: str | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code
        self.key_id = key_id


class KeyUnusable(KeyRefusal, Unauthenticated):
    """No usable credential (401)."""


class KeyForbidden(KeyRefusal, Forbidden):
    """A usable credential that may not do this (403)."""


class KeyRateLimited(KeyRefusal, TooManyAttempts):
    """Over the key's rate (429): ``retryAfter`` says when to try again."""


class KeyCheck(KeyRecords):
    def authorize(
        self,
        presented: Presented | None,
        context: RequestContext,
        scope: Scope | None,
        collection: str | None,
    ) -> Caller:
        """The caller, or the refusal. ``scope`` None: any usable credential (``GET
        /api/v1/keys/self``); ``collection`` None: the operation names none."""
        if presented is None or not presented.secret:
            raise KeyUnusable(
                "missing_key",
                "a client key is required: 'Authorization: Bearer <key>', 'X-Client-Key', "
                "or 'clientKey' in a JSON body",
            )
        watch = self.revocations
        if watch is not None and not watch.fresh():
            raise self.unconfirmed()
        claims: BrowserClaims | None = None
        if looks_like_browser_token(presented.secret):
            if not context.browser_tokens:
                raise KeyForbidden(
                    "token_not_allowed",
                    "browser tokens are for search, refinements and SAYT only; "
                    "use a client key from a server",
                )
            claims, info = self._token_claims(presented.secret)
        else:
            found = self.verify(presented.secret)
            if found is None:
                raise KeyUnusable("invalid_key", "the client key is not valid")
            info = found
        self._check_usable(info, claims)
        _check_rights(info, claims, scope, collection, context)
        if claims is not None and self.token_rates is not None:
            self.token_rates.check(context.ip)
        rate = info.restrictions.rate_limit_per_minute
        if rate is not None:
            wait = self.limiter.acquire(info.id, rate)
            if wait > 0:
                after = self.limiter.retry_after(wait)
                raise KeyRateLimited(
                    "rate_limited",
                    f"client key {info.id} allows {rate} requests per minute; retry in {after} s",
                    info.id,
                    retryAfter=after,
                )
        return Caller(
            key=info,
            ip=context.ip,
            user_agent=context.user_agent,
            system=context.system,
            browser_token=claims,
        )

    def _token_claims(self, token: str) -> tuple[BrowserClaims, KeyInfo]:
        found: list[KeyInfo] = []

        def public_key_for(kid: str) -> bytes | None:
            parent = self.by_public_key_id(kid)
            if parent is None or parent.deleted:
                return None
            found.append(parent)
            return parent.public_key

        try:
            claims = verify_browser_token(token, public_key_for)
        except BrowserTokenError as exc:
            raise KeyUnusable(exc.code, exc.message) from None
        if not found:
            raise KeyUnusable("token_invalid", "the browser token's parent key is unknown")
        return claims, found[-1]

    def _check_usable(self, info: KeyInfo, claims: BrowserClaims | None) -> None:
        via = "the browser token's parent key" if claims is not None else "client key"
        if info.deleted:
            raise KeyUnusable("invalid_key", "the client key is not valid", info.id)
        if info.disabled:
            raise KeyUnusable("key_disabled", f"{via} {info.id} is disabled", info.id)
        if info.restrictions.expired(self.clock()):
            raise KeyUnusable("key_expired", f"{via} {info.id} has expired", info.id)


def check_collection(caller: Caller, collection: str) -> None:
    """The collection right of a caller whose key was checked before its request named
    the collection (a key in a header is checked before the body is read)."""
    if not caller.may_use(collection):
        token = caller.browser_token is not None
        holder = "browser token" if token else f"client key {caller.key.id}"
        raise KeyForbidden(
            "collection_forbidden",
            f"{holder} may not use the collection {collection!r}",
            caller.key.id,
            collection=collection,
        )


def _check_rights(
    info: KeyInfo,
    claims: BrowserClaims | None,
    scope: Scope | None,
    collection: str | None,
    context: RequestContext,
) -> None:
    holder = "browser token" if claims is not None else f"client key {info.id}"
    if scope is not None and (
        scope not in info.scopes or (claims is not None and scope.value not in claims.scopes)
    ):
        raise KeyForbidden(
            "scope_missing", f"{holder} lacks the scope {scope.value!r}", info.id, scope=scope.value
        )
    if collection is not None:
        allowed = info.restrictions.allows_collection(collection) and (
            claims is None or collection in claims.collections
        )
        if not allowed:
            raise KeyForbidden(
                "collection_forbidden",
                f"{holder} may not use the collection {collection!r}",
                info.id,
                collection=collection,
            )
    origin = context.origin
    if claims is None:
        if not info.restrictions.allows_ip(context.ip):
            raise KeyForbidden(
                "ip_forbidden",
                f"client key {info.id} may not be used from {context.ip or 'an unknown address'}",
                info.id,
            )
        if not info.restrictions.allows_origin(origin):
            raise KeyForbidden(
                "origin_forbidden", f"client key {info.id} may not be used from {origin}", info.id
            )
        return
    # A browser token is for pages of the origins it names (and its parent's, if any).
    if (
        origin is None
        or origin not in claims.origins
        or not info.restrictions.allows_origin(origin)
    ):
        raise KeyForbidden(
            "origin_forbidden",
            f"this browser token may not be used from {origin or 'a page without an Origin'}",
            info.id,
        )
