"""Client key authentication for the data plane."""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.requests import Request

from searchgate.api.errors import AuthError
from searchgate.keys.scopes import Scope
from searchgate.keys.service import KeyInfo, KeyService
from searchgate.permissions import Actor, CredentialKind

# Query parameters that carry a key in other products' conventions, and the shape of one
# of ours wherever it is in the query string (base62 survives URL encoding unchanged).
_KEY_PARAMS = frozenset({"clientkey", "client_key", "apikey", "api_key", "key"})
_KEY_IN_URL = re.compile(r"sgk_[0-9A-Za-z]{30,}")


@dataclass(frozen=True)
class Caller:
    key: KeyInfo
    ip: str | None = None
    user_agent: str | None = None

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


def presented_key(request: Request, body_key: str | None = None) -> str | None:
    """The key from ``Authorization: Bearer``, ``X-Client-Key`` or the body's
    ``clientKey``; a key in the URL is refused so that it never lands in access logs."""
    names = {name.lower() for name in request.query_params}
    if names & _KEY_PARAMS or _KEY_IN_URL.search(request.url.query):
        raise AuthError(
            400,
            "key_in_url",
            "client keys are not accepted in URLs (they end up in logs); send "
            "'Authorization: Bearer <key>' or 'X-Client-Key' instead, and rotate the key",
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


def authenticate(
    keys: KeyService, request: Request, scope: Scope, body_key: str | None = None
) -> Caller:
    presented = presented_key(request, body_key)
    if not presented:
        raise AuthError(
            401,
            "missing_key",
            "a client key is required: 'Authorization: Bearer <key>', 'X-Client-Key', "
            "or 'clientKey' in a JSON body",
        )
    info = keys.verify(presented)
    if info is None:
        raise AuthError(401, "invalid_key", "the client key is not valid")
    if info.deleted:
        raise AuthError(401, "invalid_key", "the client key is not valid")
    if info.disabled:
        raise AuthError(401, "key_disabled", f"client key {info.id} is disabled")
    if scope not in info.scopes:
        raise AuthError(
            403,
            "scope_missing",
            f"client key {info.id} lacks the scope {scope.value!r}",
            scope=scope.value,
        )
    request.state.key_id = info.id
    return Caller(
        key=info,
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )
