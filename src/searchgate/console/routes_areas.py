"""Areas: named configurations (Production, Staging, ...) and their ``siteParams``."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from searchgate.catalog.areas import DEFAULT_AREA, Area
from searchgate.console.forms import Errors, errors_of
from searchgate.console.web import Ctx, PageRoutes, Refused
from searchgate.errors import NotFound, SearchgateError
from searchgate.permissions import Permission

routes = PageRoutes()

MAX_ROWS = 100


def _visible(ctx: Ctx) -> list[Area]:
    actor = ctx.me.actor
    return [a for a in ctx.rt.services.areas.list_areas() if actor.can_access_area(a.name)]


def _area(ctx: Ctx, name: str) -> Area:
    if not ctx.me.actor.can_access_area(name):
        raise Refused(403, "Not allowed", f"Your role does not give access to the area {name}.")
    for area in ctx.rt.services.areas.list_areas():
        if area.name == name:
            return area
    raise NotFound(f"area {name!r} does not exist")


def _list_page(ctx: Ctx, errors: Errors, new_name: str = "") -> Response:
    return ctx.render(
        "areas.html",
        400 if errors else 200,
        title="Areas",
        areas=_visible(ctx),
        errors=errors,
        new_name=new_name,
        default_area=DEFAULT_AREA,
    )


@routes.page("GET", "/areas", Permission.AREAS_READ, name="areas")
def areas(ctx: Ctx) -> Response:
    return _list_page(ctx, {})


@routes.page("POST", "/areas", Permission.AREAS_MANAGE, name="area_create")
def create(ctx: Ctx) -> Response:
    name = ctx.field("name").strip()
    if not name:
        return _list_page(ctx, {"name": "Give the area a name"}, name)
    try:
        ctx.rt.services.areas.create(ctx.me.actor, name)
    except SearchgateError as exc:
        return _list_page(ctx, errors_of(exc, {"name": "name"}, "name"), name)
    return ctx.redirect(f"/areas/{name}", f"Area {name} was created.")


def _detail_page(
    ctx: Ctx,
    area: Area,
    errors: Errors,
    rows: list[dict[str, Any]] | None = None,
    new_name: str = "",
) -> Response:
    return ctx.render(
        "area.html",
        400 if errors else 200,
        title=area.name,
        area=area,
        rows=rows if rows is not None else _rows(area.site_params),
        errors=errors,
        new_name=new_name or area.name,
        is_default=area.name == DEFAULT_AREA,
    )


def _rows(params: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"key": p["key"], "value": "" if p.get("value") is None else str(p["value"])}
        for p in params
    ]


@routes.page("GET", "/areas/{name}", Permission.AREAS_READ, name="area")
def area(ctx: Ctx) -> Response:
    return _detail_page(ctx, _area(ctx, ctx.param("name")), {})


@routes.page("POST", "/areas/{name}/params", Permission.AREAS_MANAGE, name="area_params")
def set_params(ctx: Ctx) -> Response:
    current = _area(ctx, ctx.param("name"))
    keys, values = ctx.fields("key"), ctx.fields("value")
    rows = [
        {"key": k.strip(), "value": v}
        for k, v in zip(keys, values, strict=False)
        if k.strip() or v.strip()
    ]
    errors: Errors = {}
    seen: set[str] = set()
    for i, row in enumerate(rows):
        if not row["key"]:
            errors[f"key-{i}"] = "Each value needs a key"
        elif row["key"] in seen:
            errors[f"key-{i}"] = f"The key {row['key']} appears twice"
        seen.add(row["key"])
    if len(rows) > MAX_ROWS:
        errors["params"] = f"At most {MAX_ROWS} site parameters"
    if errors:
        return _detail_page(ctx, current, errors, rows)
    try:
        ctx.rt.services.areas.set_params(ctx.me.actor, current.name, rows)
    except SearchgateError as exc:
        return _detail_page(ctx, current, {"params": exc.message}, rows)
    return ctx.redirect(f"/areas/{current.name}", "Site parameters saved.")


@routes.page("POST", "/areas/{name}/rename", Permission.AREAS_MANAGE, name="area_rename")
def rename(ctx: Ctx) -> Response:
    current = _area(ctx, ctx.param("name"))
    new_name = ctx.field("new_name").strip()
    if not new_name:
        return _detail_page(ctx, current, {"new_name": "Give the new name"}, new_name=new_name)
    try:
        renamed = ctx.rt.services.areas.rename(ctx.me.actor, current.name, new_name)
    except SearchgateError as exc:
        errors = errors_of(exc, {"new_name": "new_name", "name": "new_name"}, "new_name")
        return _detail_page(ctx, current, errors, new_name=new_name)
    return ctx.redirect(f"/areas/{renamed.name}", f"Area {current.name} is now {renamed.name}.")


@routes.page("POST", "/areas/{name}/delete", Permission.AREAS_MANAGE, name="area_delete")
def delete(ctx: Ctx) -> Response:
    current = _area(ctx, ctx.param("name"))
    try:
        ctx.rt.services.areas.delete(ctx.me.actor, current.name)
    except SearchgateError as exc:
        return _detail_page(ctx, current, {"delete": exc.message})
    return ctx.redirect("/areas", f"Area {current.name} was deleted.")
