"""Roles: the built-in ones (read-only) and custom roles composed from permissions."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.responses import Response

from searchgate.accounts.roles import RoleInfo
from searchgate.console.forms import Errors, errors_of
from searchgate.console.web import Ctx, PageRoutes
from searchgate.errors import SearchgateError
from searchgate.permissions import PERMISSION_HELP, Permission

routes = PageRoutes()

ROLE_FIELDS = {
    "name": "name",
    "description": "description",
    "permissions": "permissions",
    "areas": "areas",
    "role": "permissions",
}


@dataclass
class RoleForm:
    name: str = ""
    description: str = ""
    permissions: set[str] = field(default_factory=set)
    all_areas: bool = True
    areas: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, role: RoleInfo) -> RoleForm:
        return cls(
            role.name,
            role.description,
            {p.value for p in role.permissions},
            role.areas is None,
            set(role.areas or ()),
        )

    @classmethod
    def parse(cls, ctx: Ctx) -> RoleForm:
        return cls(
            ctx.field("name").strip(),
            ctx.field("description").strip(),
            set(ctx.fields("permission")),
            ctx.field("area_scope", "all") == "all",
            set(ctx.fields("area")),
        )


def permission_groups() -> list[tuple[str, list[tuple[str, str]]]]:
    """Permissions grouped by their first part, each with what it allows."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for perm in Permission:
        groups.setdefault(perm.value.split(":")[0], []).append((perm.value, PERMISSION_HELP[perm]))
    titles = {"console": "Catalog and search", "admin": "Administration"}
    return [(titles.get(k, k), v) for k, v in groups.items()]


@routes.page("GET", "/admin/roles", Permission.USERS_READ, name="roles")
def roles(ctx: Ctx) -> Response:
    return ctx.render("roles.html", title="Roles", roles=ctx.rt.services.roles.list(ctx.me.actor))


def _form_page(ctx: Ctx, form: RoleForm, errors: Errors, role: RoleInfo | None = None) -> Response:
    return ctx.render(
        "role_form.html",
        400 if errors else 200,
        title=role.name if role else "New role",
        role=role,
        form=form,
        errors=errors,
        groups=permission_groups(),
        all_areas=[a.name for a in ctx.rt.services.areas.list_areas()],
        editable=role is None or (not role.builtin and ctx.can(Permission.ROLES_MANAGE)),
    )


@routes.page("GET", "/admin/roles/new", Permission.ROLES_MANAGE, name="role_new")
def new_role(ctx: Ctx) -> Response:
    return _form_page(ctx, RoleForm(), {})


@routes.page("POST", "/admin/roles", Permission.ROLES_MANAGE, name="role_create")
def create_role(ctx: Ctx) -> Response:
    form = RoleForm.parse(ctx)
    try:
        ctx.rt.services.roles.create(
            ctx.me.actor,
            form.name,
            sorted(form.permissions),
            None if form.all_areas else sorted(form.areas),
            form.description,
        )
    except SearchgateError as exc:
        return _form_page(ctx, form, errors_of(exc, ROLE_FIELDS, "name", ctx.reauth_error))
    return ctx.redirect("/admin/roles", f"Role {form.name} was created.")


@routes.page("GET", "/admin/roles/{name}", Permission.USERS_READ, name="role")
def role(ctx: Ctx) -> Response:
    info = ctx.rt.services.roles.get(ctx.me.actor, ctx.param("name"))
    return _form_page(ctx, RoleForm.of(info), {}, info)


@routes.page("POST", "/admin/roles/{name}", Permission.ROLES_MANAGE, name="role_update")
def update_role(ctx: Ctx) -> Response:
    service = ctx.rt.services.roles
    info = service.get(ctx.me.actor, ctx.param("name"))
    form = RoleForm.parse(ctx)
    try:
        updated = service.update(
            ctx.me.actor,
            info.name,
            new_name=form.name,
            permissions=sorted(form.permissions),
            areas=None if form.all_areas else sorted(form.areas),
            all_areas=form.all_areas,
            description=form.description,
        )
    except SearchgateError as exc:
        return _form_page(ctx, form, errors_of(exc, ROLE_FIELDS, "name", ctx.reauth_error), info)
    return ctx.redirect(f"/admin/roles/{updated.name}", f"Role {updated.name} was saved.")


@routes.page("POST", "/admin/roles/{name}/delete", Permission.ROLES_MANAGE, name="role_delete")
def delete_role(ctx: Ctx) -> Response:
    service = ctx.rt.services.roles
    info = service.get(ctx.me.actor, ctx.param("name"))
    try:
        service.delete(ctx.me.actor, info.name)
    except SearchgateError as exc:
        errors = errors_of(exc, {}, "delete", ctx.reauth_error, reauth_field="delete")
        return _form_page(ctx, RoleForm.of(info), errors, info)
    return ctx.redirect("/admin/roles", f"Role {info.name} was deleted.")
