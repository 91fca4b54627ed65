"""Users: who has an account, with which role, MFA state, and what an admin can change."""

from __future__ import annotations

from starlette.responses import Response

from searchgate.accounts.users import UserInfo
from searchgate.console.forms import Errors, errors_of
from searchgate.console.web import Ctx, PageRoutes
from searchgate.errors import SearchgateError
from searchgate.permissions import Permission

routes = PageRoutes()

USER_FIELDS = {
    "email": "email",
    "display_name": "display_name",
    "password": "password",
    "role": "role",
    "areas": "role",
}


def roles_of(ctx: Ctx) -> list[tuple[str, str]]:
    return [
        (r.name, f"{r.name} (built-in)" if r.builtin else r.name)
        for r in ctx.rt.services.roles.list(ctx.me.actor)
    ]


@routes.page("GET", "/admin/users", Permission.USERS_READ, name="users")
def users(ctx: Ctx) -> Response:
    service = ctx.rt.services.users
    return ctx.render(
        "users.html",
        title="Users",
        users=service.list(ctx.me.actor),
        summary=service.admin_summary(ctx.me.actor),
        invitations=ctx.rt.services.invitations.list(ctx.me.actor),
    )


def _new_page(ctx: Ctx, form: dict[str, str], errors: Errors) -> Response:
    return ctx.render(
        "user_new.html",
        400 if errors else 200,
        title="New user",
        form=form,
        errors=errors,
        roles=roles_of(ctx),
    )


@routes.page("GET", "/admin/users/new", Permission.USERS_MANAGE, name="user_new")
def new_user(ctx: Ctx) -> Response:
    return _new_page(ctx, {"email": "", "display_name": "", "role": "viewer"}, {})


@routes.page("POST", "/admin/users", Permission.USERS_MANAGE, name="user_create")
def create_user(ctx: Ctx) -> Response:
    form = {name: ctx.field(name).strip() for name in ("email", "display_name", "role")}
    password = ctx.field("password")
    errors: Errors = {}
    if not form["email"]:
        errors["email"] = "Enter the person's email address"
    if not password:
        errors["password"] = "Set a first password; they change it after signing in"  # noqa: S105
    if errors:
        return _new_page(ctx, form, errors)
    try:
        created = ctx.rt.services.users.create(
            ctx.me.actor, form["email"], password, form["role"], form["display_name"] or None
        )
    except SearchgateError as exc:
        return _new_page(ctx, form, errors_of(exc, USER_FIELDS, "email", ctx.reauth_error))
    return ctx.redirect(
        f"/admin/users/{created.id}",
        f"{created.email} can sign in now, and must then choose their own password.",
    )


def _user_page(
    ctx: Ctx, user: UserInfo, errors: Errors, form: dict[str, str] | None = None
) -> Response:
    manage = ctx.can(Permission.USERS_MANAGE)
    return ctx.render(
        "user.html",
        400 if errors else 200,
        title=user.display_name,
        user=user,
        form=form or {"display_name": user.display_name, "role": user.role},
        errors=errors,
        roles=roles_of(ctx) if manage else [],
        sessions=ctx.rt.services.sessions.list_for_user(ctx.me.actor, user.id) if manage else [],
        tokens=ctx.rt.services.tokens.list(ctx.me.actor, user.id) if manage else [],
        is_me=user.id == ctx.me.actor.user_id,
    )


@routes.page("GET", "/admin/users/{user_id}", Permission.USERS_READ, name="user")
def user(ctx: Ctx) -> Response:
    return _user_page(ctx, ctx.rt.services.users.get(ctx.me.actor, ctx.param("user_id")), {})


@routes.page("POST", "/admin/users/{user_id}", Permission.USERS_MANAGE, name="user_update")
def update_user(ctx: Ctx) -> Response:
    service = ctx.rt.services.users
    current = service.get(ctx.me.actor, ctx.param("user_id"))
    form = {"display_name": ctx.field("display_name").strip(), "role": ctx.field("role").strip()}
    try:
        updated = service.update(
            ctx.me.actor, current.id, role=form["role"] or None, display_name=form["display_name"]
        )
    except SearchgateError as exc:
        errors = errors_of(exc, USER_FIELDS, "role", ctx.reauth_error)
        return _user_page(ctx, current, errors, form)
    return ctx.redirect(f"/admin/users/{updated.id}", f"{updated.email} was saved.")


def _action(ctx: Ctx, verb: str) -> Response:
    """One button, one service call; errors show above the buttons."""
    service = ctx.rt.services.users
    current = service.get(ctx.me.actor, ctx.param("user_id"))
    actor = ctx.me.actor
    try:
        if verb == "disable":
            service.disable(actor, current.id)
            message = f"{current.email} is disabled: their sessions and tokens stopped working."
        elif verb == "enable":
            service.enable(actor, current.id)
            message = f"{current.email} can sign in again."
        elif verb == "reset-mfa":
            service.reset_mfa(actor, current.id)
            message = f"{current.email} enrols in MFA again at their next sign-in."
        elif verb == "end-sessions":
            ended = ctx.rt.services.sessions.end_all(actor, current.id)
            message = f"{ended} session(s) of {current.email} ended."
        else:
            service.delete(actor, current.id)
            return ctx.redirect("/admin/users", f"{current.email} was deleted.")
    except SearchgateError as exc:
        errors = errors_of(exc, {}, "actions", ctx.reauth_error, reauth_field="actions")
        return _user_page(ctx, current, errors)
    return ctx.redirect(f"/admin/users/{current.id}", message)


@routes.page("POST", "/admin/users/{user_id}/disable", Permission.USERS_MANAGE, name="user_disable")
def disable_user(ctx: Ctx) -> Response:
    return _action(ctx, "disable")


@routes.page("POST", "/admin/users/{user_id}/enable", Permission.USERS_MANAGE, name="user_enable")
def enable_user(ctx: Ctx) -> Response:
    return _action(ctx, "enable")


@routes.page(
    "POST", "/admin/users/{user_id}/reset-mfa", Permission.USERS_MANAGE, name="user_reset_mfa"
)
def reset_mfa(ctx: Ctx) -> Response:
    return _action(ctx, "reset-mfa")


@routes.page(
    "POST", "/admin/users/{user_id}/end-sessions", Permission.USERS_MANAGE, name="user_end_sessions"
)
def end_sessions(ctx: Ctx) -> Response:
    return _action(ctx, "end-sessions")


@routes.page("POST", "/admin/users/{user_id}/delete", Permission.USERS_MANAGE, name="user_delete")
def delete_user(ctx: Ctx) -> Response:
    return _action(ctx, "delete")
