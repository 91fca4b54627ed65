"""Signing in (password, then a TOTP code when enrolled), re-authenticating, signing out."""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import Response

from searchgate.accounts.signin import SignInResult
from searchgate.console import auth
from searchgate.console.forms import Errors
from searchgate.console.web import PASSWORD_PAGE, PUBLIC, SIGNED_IN, Ctx, PageRoutes, safe_next
from searchgate.errors import SearchgateError, TooManyAttempts

routes = PageRoutes()

ENDED = {
    "user_disabled": "This account is disabled. Ask an admin if you think it should not be.",
    "idle_timeout": "You were signed out after a period without activity.",
    "absolute_timeout": "Your session reached its maximum length. Sign in again.",
    "mfa_timeout": "Signing in took too long. Start again.",
    "rotated": "Your session was renewed elsewhere. Sign in again.",
    "ended": "Your session was ended. Sign in again.",
    "password_changed": "Your password was changed. Sign in with the new one.",
    "signed_out": "You are signed out.",
}


def _sign_in_page(ctx: Ctx, errors: Errors, email: str = "", status: int = 401) -> Response:
    return ctx.render(
        "sign_in.html",
        status if errors else 200,
        title="Sign in",
        errors=errors,
        email=email,
        next=safe_next(ctx.query("next", "/")),
        ended=ENDED.get(ctx.query("reason")),
    )


@routes.page("GET", "/sign-in", PUBLIC, name="sign_in")
def sign_in_form(ctx: Ctx) -> Response:
    if ctx.principal is not None:
        return ctx.redirect(safe_next(ctx.query("next", "/")))
    return _sign_in_page(ctx, {})


def _after(ctx: Ctx, result: SignInResult, target: str) -> Response:
    # Always a brand-new session id: whatever cookie the browser brought is replaced.
    ctx.set_cookie(auth.SESSION_COOKIE, result.secret, None)
    if result.mfa_required:
        return ctx.redirect("/sign-in/mfa?next=" + quote(target, safe="/"))
    if result.password_change_required:
        return ctx.redirect(PASSWORD_PAGE, "Choose your own password to continue.")
    if result.mfa_enrolment_required:
        return ctx.redirect("/account/mfa", "Set up two-factor authentication to continue.")
    return ctx.redirect(target)


def _throttled(page: Response, exc: TooManyAttempts) -> Response:
    """The form again with the wait next to the field: 429 with Retry-After, as the
    admin API answers a throttled request (docs/security.md)."""
    page.headers["Retry-After"] = str(exc.retry_after)
    return page


def _wait_message(exc: TooManyAttempts) -> str:
    return exc.message[:1].upper() + exc.message[1:] + "."


@routes.page("POST", "/sign-in", PUBLIC, name="sign_in_post")
def sign_in(ctx: Ctx) -> Response:
    email, password = ctx.field("email").strip(), ctx.field("password")
    errors: Errors = {}
    if not email:
        errors["email"] = "Enter your email address"
    if not password:
        errors["password"] = "Enter your password"  # noqa: S105
    if errors:
        return _sign_in_page(ctx, errors, email)
    client = ctx.client()
    try:
        result = ctx.rt.services.auth.sign_in(
            email, password, ip=client.ip, user_agent=client.user_agent
        )
    except TooManyAttempts as exc:
        return _throttled(_sign_in_page(ctx, {"password": _wait_message(exc)}, email, 429), exc)
    except SearchgateError:
        # One message for an unknown email, a wrong password and a disabled account.
        return _sign_in_page(ctx, {"password": "The email or password is not correct."}, email)
    return _after(ctx, result, safe_next(ctx.field("next", "/")))


def _mfa_page(ctx: Ctx, errors: Errors, status: int = 401) -> Response:
    return ctx.render(
        "sign_in_mfa.html",
        status if errors else 200,
        title="Enter your code",
        errors=errors,
        next=safe_next(ctx.query("next", ctx.field("next", "/"))),
    )


@routes.page("GET", "/sign-in/mfa", PUBLIC, name="sign_in_mfa")
def mfa_form(ctx: Ctx) -> Response:
    if not ctx.session.pending:
        return ctx.redirect("/sign-in")
    return _mfa_page(ctx, {})


@routes.page("POST", "/sign-in/mfa", PUBLIC, name="sign_in_mfa_post")
def mfa(ctx: Ctx) -> Response:
    code = ctx.field("code").strip()
    if not ctx.session.pending or ctx.session.secret is None:
        return ctx.redirect("/sign-in?reason=mfa_timeout")
    if not code:
        return _mfa_page(ctx, {"code": "Enter the code from your authenticator app"})
    client = ctx.client()
    try:
        result = ctx.rt.services.auth.verify_mfa(
            ctx.session.secret, code, ip=client.ip, user_agent=client.user_agent
        )
    except TooManyAttempts as exc:
        return _throttled(_mfa_page(ctx, {"code": _wait_message(exc)}, 429), exc)
    except SearchgateError as exc:
        if exc.field != "code":
            return ctx.redirect("/sign-in?reason=mfa_timeout")
        return _mfa_page(ctx, {"code": "That code is not correct, or was used already."})
    return _after(ctx, result, safe_next(ctx.field("next", "/")))


@routes.page(
    "POST",
    "/sign-out",
    SIGNED_IN,
    name="sign_out",
    during_enrolment=True,
    during_password_change=True,
)
def sign_out(ctx: Ctx) -> Response:
    client = ctx.client()
    # After a rotation in this very request the live session is the new one.
    secret = ctx.session.new_secret or ctx.session.secret
    if secret:
        ctx.rt.services.sessions.sign_out(secret, ip=client.ip, user_agent=client.user_agent)
    ctx.session.new_secret = None
    ctx.set_cookie(auth.SESSION_COOKIE, "", 0)
    return ctx.redirect("/sign-in?reason=signed_out")


@routes.page("GET", "/reauth", SIGNED_IN, name="reauth")
def reauth_form(ctx: Ctx) -> Response:
    return ctx.render(
        "reauth.html", title="Confirm it is you", errors={}, next=safe_next(ctx.query("next"))
    )


@routes.page("POST", "/reauth", SIGNED_IN, name="reauth_post")
def reauth(ctx: Ctx) -> Response:
    # The pipeline has re-authenticated with the "reauth" field already.
    target = safe_next(ctx.field("next", "/"))
    if not ctx.field("reauth"):
        errors = {"reauth": "Enter your password or a code from your authenticator"}
    elif ctx.reauth_error:
        errors = {"reauth": ctx.reauth_error}
    else:
        return ctx.redirect(target, "Confirmed. You can make sensitive changes for a few minutes.")
    status = 401 if ctx.reauth_retry_after is None else 429
    page = ctx.render("reauth.html", status, title="Confirm it is you", errors=errors, next=target)
    if ctx.reauth_retry_after is not None:
        page.headers["Retry-After"] = str(ctx.reauth_retry_after)
    return page
