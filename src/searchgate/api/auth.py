"""Client key authentication for the data plane."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from searchgate.api.errors import AuthError
from searchgate.keys.scopes import Scope
from searchgate.keys.service import KeyInfo, KeyService


@dataclass(frozen=True)
class Caller:
    key: KeyInfo


def presented_key(request: Request, body_key: str | None = None) -> str | None:
    """The key from ``Authorization: Bearer``, ``X-Client-Key`` or the body's
    ``clientKey``; a key in the URL is refused so that it never lands in access logs."""
    if "clientKey" in request.query_params or "client_key" in request.query_params:
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
    return Caller(key=info)
