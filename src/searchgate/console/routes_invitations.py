"""Invitations: an admin invites a person by a one-time link; the person opens it,
chooses their own password, and is signed in (then enrols in MFA where required)."""

from __future__ import annotations

from datetime import timedelta

from starlette.responses import Response

from searchgate.accounts.invitations import DEFAULT_LIFETIME, INVITATION_PATH, invitation_url
from searchgate.console import auth
from searchgate.console.forms import Errors, errors_of, sentence
from searchgate.console.routes_admin_users import USER_FIELDS, roles_of
from searchgate.console.web import PUBLIC, Ctx, PageRoutes
from searchgate.errors import Conflict, NotFound, SearchgateError
from searchgate.permissions import Permission

routes = PageRoutes()

LIFETIMES = (("24", "1 day"), ("72", "3 days"), ("168", "7 days"))
DEFAULT_HOURS = str(int(DEFAULT_LIFETIME.total_seconds() // 3600))
INVITE_FIELDS = {**USER_FIELDS, "expires_in_hours": "expires"}
ACCEPT_FIELDS = {"password": "password", "display_name": "display_name"}


# --- admins -----------------------------------------------------------------------------


def _invite_page(ctx: Ctx, form: dict[str, str], errors: Errors) -> Response:
    return ctx.render(
        "invitation_new.html",
        400 if errors else 200,
        title="Invite someone",
        form=form,
        errors=errors,
        roles=roles_of(ctx),
        lifetimes=LIFETIMES,
    )


@routes.page("GET", "/admin/invitations/new", Permission.USERS_MANAGE, name="invitation_new")
def invite_form(ctx: Ctx) -> Response:
    form = {"email": "", "display_name": "", "role": "viewer", "expires": DEFAULT_HOURS}
    return _invite_page(ctx, form, {})


@routes.page("POST", "/admin/invitations", Permission.USERS_MANAGE, name="invitation_create")
def invite(ctx: Ctx) -> Response:
    names = ("email", "display_name", "role", "expires")
    form = {name: ctx.field(name).strip() for name in names}
    if not form["email"]:
        return _invite_page(ctx, form, {"email": "Enter the person's email address"})
    if form["expires"] not in dict(LIFETIMES):
        return _invite_page(ctx, form, {"expires": "Choose how long the link works"})
    try:
        created = ctx.rt.services.invitations.create(
            ctx.me.actor,
            form["email"],
            form["role"],
            form["display_name"] or None,
            timedelta(hours=int(form["expires"])),
        )
    except SearchgateError as exc:
        errors = errors_of(exc, INVITE_FIELDS, "email", ctx.reauth_error)
        return _invite_page(ctx, form, errors)
    origin = f"{ctx.request.url.scheme}://{ctx.request.headers.get('host', 'localhost')}"
    return ctx.render(
        "invitation_created.html",
        title="Invitation created",
        invitation=created.info,
        link=invitation_url(origin, created.secret),
    )


@routes.page(
    "POST",
    "/admin/invitations/{invitation_id}/withdraw",
    Permission.USERS_MANAGE,
    name="invitation_withdraw",
)
def withdraw(ctx: Ctx) -> Response:
    try:
        info = ctx.rt.services.invitations.revoke(ctx.me.actor, ctx.param("invitation_id"))
    except Conflict as exc:  # used or expired meanwhile
        return ctx.redirect("/admin/users", sentence(exc.message) + ".")
    return ctx.redirect("/admin/users", f"The invitation for {info.email} was withdrawn.")


# --- the invited person -------------------------------------------------------------------


def _open_page(ctx: Ctx, errors: Errors, status: int = 404) -> Response:
    return ctx.render(
        "invitation.html", status if errors else 200, title="Accept an invitation", errors=errors
    )


def _accept_page(
    ctx: Ctx, token: str, email: str, role: str, name: str, errors: Errors
) -> Response:
    return ctx.render(
        "invitation_accept.html",
        400 if errors else 200,
        title="Create your account",
        token=token,
        email=email,
        role=role,
        display_name=name,
        errors=errors,
    )


@routes.page("GET", INVITATION_PATH, PUBLIC, name="invitation")
def open_form(ctx: Ctx) -> Response:
    return _open_page(ctx, {})


@routes.page("POST", INVITATION_PATH, PUBLIC, name="invitation_open")
def open_invitation(ctx: Ctx) -> Response:
    token = ctx.field("token").strip()
    if not token:
        return _open_page(ctx, {"token": "Paste the code from your invitation link"}, 400)
    try:
        info = ctx.rt.services.invitations.find(token)
    except SearchgateError as exc:
        return _open_page(ctx, {"token": sentence(exc.message) + "."})
    return _accept_page(ctx, token, info.email, info.role, info.display_name or "", {})


@routes.page("POST", INVITATION_PATH + "/accept", PUBLIC, name="invitation_accept")
def accept(ctx: Ctx) -> Response:
    token = ctx.field("token").strip()
    name, password, repeat = (
        ctx.field("display_name").strip(),
        ctx.field("password"),
        ctx.field("repeat"),
    )
    services = ctx.rt.services
    try:
        info = services.invitations.find(token)
    except SearchgateError as exc:
        return _open_page(ctx, {"token": sentence(exc.message) + "."})
    errors: Errors = {}
    if not password:
        errors["password"] = "Choose a password"  # noqa: S105
    elif password != repeat:
        errors["repeat"] = "The two passwords differ"
    if errors:
        return _accept_page(ctx, token, info.email, info.role, name, errors)
    client = ctx.client()
    try:
        user = services.invitations.accept(
            token, password, name or None, ip=client.ip, user_agent=client.user_agent
        )
    except NotFound as exc:
        return _open_page(ctx, {"token": sentence(exc.message) + "."})
    except SearchgateError as exc:
        errors = errors_of(exc, ACCEPT_FIELDS, "password")
        return _accept_page(ctx, token, info.email, info.role, name, errors)
    result = services.auth.sign_in(user.email, password, ip=client.ip, user_agent=client.user_agent)
    ctx.set_cookie(auth.SESSION_COOKIE, result.secret, None)
    if result.mfa_enrolment_required:
        return ctx.redirect(
            "/account/mfa", "Welcome. Set up two-factor authentication to continue."
        )
    return ctx.redirect("/", f"Welcome. You sign in with {user.email}.")
