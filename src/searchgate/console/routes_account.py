"""One's own account: password, MFA enrolment, personal API tokens, sessions."""

from __future__ import annotations

from datetime import timedelta

import segno
from markupsafe import Markup
from starlette.responses import Response

from searchgate.console.forms import Errors, errors_of, sentence
from searchgate.console.web import PASSWORD_PAGE, SIGNED_IN, Ctx, PageRoutes
from searchgate.errors import SearchgateError, TooManyAttempts
from searchgate.permissions import GRANTABLE_BY, CredentialKind

routes = PageRoutes()

TOKEN_LIFETIMES = (("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year"))
TOKEN_FIELDS = {"name": "name", "permissions": "permissions", "expires_in": "expires_in"}


def qr_svg(uri: str) -> Markup:
    """The provisioning URI as an inline SVG QR code, drawn on the server: the secret
    it holds never leaves for a third-party QR service."""
    svg = segno.make(uri, error="m").svg_inline(scale=1, border=2, omitsize=True, dark="#111")
    return Markup(svg)  # noqa: S704 - segno draws paths only; no text from input


def _token_perms(ctx: Ctx) -> list[str]:
    held = ctx.me.actor.permissions & GRANTABLE_BY[CredentialKind.PERSONAL_TOKEN]
    return sorted(p.value for p in held)


def _account_page(
    ctx: Ctx, errors: Errors, token_form: dict[str, object] | None = None
) -> Response:
    me = ctx.me
    services = ctx.rt.services
    user_id = me.actor.user_id or ""
    # Nothing is ticked for the person: a token should carry only what its script needs.
    form = token_form or {"name": "", "expires": "90", "permissions": set()}
    return ctx.render(
        "account.html",
        400 if errors else 200,
        title="Your account",
        mfa=services.mfa.status(user_id),
        tokens=services.tokens.list(me.actor),
        sessions=services.sessions.list_for_user(me.actor),
        token_perms=_token_perms(ctx),
        lifetimes=TOKEN_LIFETIMES,
        form=form,
        errors=errors,
    )


@routes.page("GET", "/account", SIGNED_IN, name="account")
def account(ctx: Ctx) -> Response:
    return _account_page(ctx, {})


@routes.page("POST", "/account/tokens", SIGNED_IN, name="token_create")
def create_token(ctx: Ctx) -> Response:
    name = ctx.field("name").strip()
    days = ctx.field("expires", "90")
    perms = set(ctx.fields("permission"))
    form: dict[str, object] = {"name": name, "expires": days, "permissions": perms}
    if days not in dict(TOKEN_LIFETIMES):
        return _account_page(ctx, {"expires": "Choose a lifetime from the list"}, form)
    if not perms:
        return _account_page(ctx, {"permissions": "Choose at least one permission"}, form)
    try:
        created = ctx.rt.services.tokens.create(
            ctx.me.actor, name, sorted(perms), timedelta(days=int(days))
        )
    except SearchgateError as exc:
        errors = errors_of(exc, TOKEN_FIELDS, "name", ctx.reauth_error)
        return _account_page(ctx, errors, form)
    return ctx.render("token_created.html", title="Token created", created=created)


@routes.page("POST", "/account/tokens/{token_id}/revoke", SIGNED_IN, name="token_revoke")
def revoke_token(ctx: Ctx) -> Response:
    info = ctx.rt.services.tokens.revoke(ctx.me.actor, ctx.param("token_id"))
    return ctx.redirect("/account", f"Token {info.name} was revoked.")


@routes.page("POST", "/account/sessions/{session_id}/end", SIGNED_IN, name="session_end")
def end_session(ctx: Ctx) -> Response:
    ctx.rt.services.sessions.end(ctx.me.actor, ctx.param("session_id"))
    return ctx.redirect("/account", "The session was ended.")


# --- password ---------------------------------------------------------------------------

PASSWORD_FIELDS = {"current_password": "current", "password": "new"}


def _password_page(ctx: Ctx, errors: Errors, status: int = 400) -> Response:
    return ctx.render(
        "account_password.html",
        status if errors else 200,
        title="Change your password",
        required=ctx.me.actor.password_change_required,
        errors=errors,
    )


@routes.page(
    "GET",
    PASSWORD_PAGE,
    SIGNED_IN,
    name="password",
    during_enrolment=True,
    during_password_change=True,
)
def password_form(ctx: Ctx) -> Response:
    return _password_page(ctx, {})


@routes.page(
    "POST",
    PASSWORD_PAGE,
    SIGNED_IN,
    name="password_change",
    during_enrolment=True,
    during_password_change=True,
)
def change_password(ctx: Ctx) -> Response:
    current, new, repeat = ctx.field("current"), ctx.field("new"), ctx.field("repeat")
    errors: Errors = {}
    if not current:
        errors["current"] = "Enter your current password"
    if not new:
        errors["new"] = "Choose a new password"
    elif new != repeat:
        errors["repeat"] = "The two new passwords differ"
    if errors:
        return _password_page(ctx, errors)
    try:
        ended = ctx.rt.services.auth.change_password(ctx.me.actor, current, new)
    except TooManyAttempts as exc:
        page = _password_page(ctx, {"current": sentence(exc.message)}, 429)
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    except SearchgateError as exc:
        return _password_page(ctx, errors_of(exc, PASSWORD_FIELDS, "new"))
    others = f" {ended} other session(s) ended." if ended else ""
    if ctx.me.actor.mfa_enrolment_required:
        return ctx.redirect(
            "/account/mfa", "Your password was changed. Now set up two-factor authentication."
        )
    return ctx.redirect("/account", f"Your password was changed.{others}")


# --- MFA ------------------------------------------------------------------------------


def _mfa_page(ctx: Ctx, errors: Errors) -> Response:
    return ctx.render(
        "mfa.html",
        400 if errors else 200,
        title="Two-factor authentication",
        mfa=ctx.rt.services.mfa.status(ctx.me.actor.user_id or ""),
        required=ctx.me.actor.mfa_enrolment_required,
        errors=errors,
    )


@routes.page("GET", "/account/mfa", SIGNED_IN, name="mfa", during_enrolment=True)
def mfa(ctx: Ctx) -> Response:
    return _mfa_page(ctx, {})


def _enrol_page(ctx: Ctx, secret: str, uri: str, errors: Errors) -> Response:
    return ctx.render(
        "mfa_enrol.html",
        400 if errors else 200,
        title="Set up two-factor authentication",
        secret=secret,
        uri=uri,
        qr=qr_svg(uri),
        errors=errors,
    )


@routes.page("POST", "/account/mfa/begin", SIGNED_IN, name="mfa_begin", during_enrolment=True)
def mfa_begin(ctx: Ctx) -> Response:
    try:
        enrolment = ctx.rt.services.mfa.begin_enrolment(ctx.me.actor)
    except SearchgateError as exc:
        return _mfa_page(ctx, {"mfa": exc.message})
    return _enrol_page(ctx, enrolment.secret, enrolment.provisioning_uri, {})


@routes.page("POST", "/account/mfa/confirm", SIGNED_IN, name="mfa_confirm", during_enrolment=True)
def mfa_confirm(ctx: Ctx) -> Response:
    code = ctx.field("code").strip()
    try:
        codes = ctx.rt.services.mfa.confirm_enrolment(ctx.me.actor, code)
    except SearchgateError as exc:
        # The pending secret came back in the form only to draw the same QR code again;
        # the service checks the code against the one it stored.
        secret, uri = ctx.field("secret"), ctx.field("uri")
        if not secret or not uri.startswith("otpauth://"):
            return _mfa_page(ctx, {"mfa": exc.message})
        return _enrol_page(ctx, secret, uri, {"code": errors_of(exc, {}, "code")["code"]})
    return ctx.render("recovery_codes.html", title="Recovery codes", codes=codes, fresh=True)


@routes.page("POST", "/account/mfa/recovery-codes", SIGNED_IN, name="mfa_recovery_codes")
def mfa_recovery_codes(ctx: Ctx) -> Response:
    try:
        codes = ctx.rt.services.mfa.regenerate_recovery_codes(ctx.me.actor)
    except SearchgateError as exc:
        return _mfa_page(ctx, errors_of(exc, {}, "mfa", ctx.reauth_error, reauth_field="codes"))
    return ctx.render("recovery_codes.html", title="Recovery codes", codes=codes, fresh=False)


@routes.page("POST", "/account/mfa/disable", SIGNED_IN, name="mfa_disable")
def mfa_disable(ctx: Ctx) -> Response:
    try:
        ctx.rt.services.mfa.disable_own(ctx.me.actor)
    except SearchgateError as exc:
        return _mfa_page(ctx, errors_of(exc, {}, "mfa", ctx.reauth_error, reauth_field="disable"))
    return ctx.redirect("/account/mfa", "Two-factor authentication is off.")
