"""Cookies, sessions and CSRF tokens of the console, on top of the account services.

The session cookie is ``__Host-sg_session``: HttpOnly, SameSite=Lax, Path=/, no
Domain, and Secure. Browsers accept a ``__Host-`` cookie only with Secure, which
they honour over HTTPS and on loopback addresses; on plain HTTP to any other host the
cookie is named ``sg_session`` instead (and the sign-in page warns that the
connection is not encrypted).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import Response

from searchgate.audit import Action, Outcome
from searchgate.errors import SearchgateError, TooManyAttempts, Unauthenticated
from searchgate.permissions import Actor, Permission
from searchgate.runtime import Runtime

if TYPE_CHECKING:
    from searchgate.console.web import Ctx

SESSION_COOKIE = "sg_session"
FLASH_COOKIE = "sg_flash"
# Before sign-in there is no session to bind a CSRF token to: a random value in this
# cookie is (double-submit style) the anchor for the sign-in form's token.
PRE_COOKIE = "sg_pre"
PASSWORD_MIN = 12
AUDIT_DENIED = Action.PAGE_DENY


@dataclass(frozen=True)
class ClientInfo:
    ip: str | None
    user_agent: str | None


def client_info(request: Request) -> ClientInfo:
    ua = request.headers.get("user-agent")
    return ClientInfo(request.client.host if request.client else None, ua[:512] if ua else None)


def _loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]")[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_secure(request: Request) -> bool:
    """Whether browsers will store a Secure cookie from this request's origin."""
    return request.url.scheme == "https" or _loopback(request.headers.get("host", ""))


def cookie_name(request: Request, base: str) -> str:
    return f"__Host-{base}" if is_secure(request) else base


def tokens_match(sent: str, expected: str) -> bool:
    return hmac.compare_digest(sent.encode(), expected.encode())


@dataclass(frozen=True)
class Principal:
    """The signed-in person, as the console sees them."""

    actor: Actor
    role: str
    csrf_token: str

    @property
    def name(self) -> str:
        return self.actor.name

    @property
    def email(self) -> str:
        return self.actor.email or ""

    @property
    def permissions(self) -> frozenset[Permission]:
        return self.actor.effective_permissions


@dataclass
class SessionState:
    principal: Principal | None = None
    # The secret behind the request's cookie, when it is a live (or MFA-pending)
    # session: the CSRF token of this request is checked against it.
    secret: str | None = None
    # A rotated or new session id to send back as the cookie.
    new_secret: str | None = None
    pending: bool = False
    clear_cookie: bool = False
    ended_reason: str | None = None
    pre_value: str | None = None


def load_session(rt: Runtime, request: Request) -> SessionState:
    secret = request.cookies.get(cookie_name(request, SESSION_COOKIE))
    if not secret:
        return SessionState()
    info = client_info(request)
    sessions = rt.services.sessions
    try:
        result = sessions.authenticate(secret, ip=info.ip, user_agent=info.user_agent)
    except Unauthenticated as exc:
        reason = str(exc.details.get("reason", "ended"))
        if reason == "mfa_pending":
            return SessionState(secret=secret, pending=True)
        return SessionState(clear_cookie=True, ended_reason=reason)
    current = result.new_secret or secret
    role = rt.services.users.get(result.actor, result.actor.user_id or "").role
    principal = Principal(result.actor, role, sessions.csrf_token(current))
    return SessionState(principal, secret, result.new_secret)


def _pre_token(value: str) -> str:
    return hashlib.sha256(b"sg-console-pre:" + value.encode()).hexdigest()


def csrf_for_check(rt: Runtime, request: Request, state: SessionState) -> str | None:
    """The token a state-changing request must carry, from the cookie it came with."""
    if state.secret:
        return rt.services.sessions.csrf_token(state.secret)
    pre = request.cookies.get(cookie_name(request, PRE_COOKIE))
    return _pre_token(pre) if pre else None


def csrf_for_page(ctx: Ctx) -> str:
    """The token forms on this page carry; a visitor without a session gets one."""
    state = ctx.session
    if state.principal is not None:
        return state.principal.csrf_token
    if state.secret:
        return ctx.rt.services.sessions.csrf_token(state.secret)
    if state.pre_value is None:
        current = ctx.request.cookies.get(cookie_name(ctx.request, PRE_COOKIE))
        state.pre_value = current or secrets.token_urlsafe(32)
        if not current:
            ctx.set_cookie(PRE_COOKIE, state.pre_value, None)
    return _pre_token(state.pre_value)


def record_denied(rt: Runtime, principal: Principal | None, need: str, path: str) -> None:
    if principal is None:
        return
    rt.services.audit.record_now(
        principal.actor,
        AUDIT_DENIED,
        target=path[:320],
        outcome=Outcome.DENIED,
        details={"permission": need},
    )


def reauthenticate(ctx: Ctx, value: str) -> None:
    """Proves the password (or a TOTP / recovery code) again before a sensitive action;
    the view's service call then sees a freshly re-authenticated actor."""
    principal = ctx.principal
    if principal is None or not value:
        return
    # Passwords have at least 12 characters; anything shorter is an MFA code.
    as_password = len(value) >= PASSWORD_MIN
    try:
        ctx.rt.services.auth.reauthenticate(
            principal.actor,
            password=value if as_password else None,
            code=None if as_password else value,
        )
    except SearchgateError as exc:
        if isinstance(exc, TooManyAttempts):
            ctx.reauth_retry_after = exc.retry_after
        ctx.reauth_error = (
            "That password or code is not correct" if exc.field else exc.message.capitalize()
        )
        return
    # The services' clock, the one the authorizer judges the window by.
    now = ctx.rt.services.authorizer.clock()
    actor = dataclasses.replace(principal.actor, reauthenticated_at=now)
    ctx.principal = dataclasses.replace(principal, actor=actor)


def recently_reauthenticated(ctx: Ctx) -> bool:
    principal = ctx.principal
    if principal is None:
        return False
    return ctx.rt.services.authorizer.reauthenticated(principal.actor)


def flash_value(request: Request) -> str | None:
    raw = request.cookies.get(cookie_name(request, FLASH_COOKIE))
    return unquote(raw)[:300] if raw else None


def finish(ctx: Ctx, response: Response) -> None:
    """Writes the cookies the request decided on."""
    secure = is_secure(ctx.request)
    state = ctx.session
    if state.new_secret:
        ctx.set_cookie(SESSION_COOKIE, state.new_secret, None)
    for base, value, max_age in ctx.cookies_out:
        name = cookie_name(ctx.request, base)
        if max_age == 0:
            response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
            continue
        response.set_cookie(
            name,
            quote(value, safe="") if base == FLASH_COOKIE else value,
            max_age=max_age,
            path="/",
            secure=secure,
            httponly=True,
            samesite="lax",
        )
