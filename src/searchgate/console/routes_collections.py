"""Collections: the list, one collection's settings and records, and deleting one."""

from __future__ import annotations

from starlette.responses import Response

from searchgate.console.forms import Errors, errors_of
from searchgate.console.web import Ctx, PageRoutes
from searchgate.errors import SearchgateError
from searchgate.params import SQL_INT_MAX, size_choice, whole_number
from searchgate.permissions import Permission

routes = PageRoutes()

PAGE_SIZES = (10, 25, 50, 100)


@routes.page("GET", "/collections", Permission.COLLECTIONS_READ, name="collections")
def collections(ctx: Ctx) -> Response:
    collections = ctx.rt.services.collections.list(ctx.me.actor)
    return ctx.render("collections.html", title="Collections", collections=collections)


@routes.page("GET", "/collections/{name}", Permission.COLLECTIONS_READ, name="collection")
def collection(ctx: Ctx) -> Response:
    info = ctx.rt.services.collections.get(ctx.me.actor, ctx.param("name"))
    size = size_choice(ctx.query("size") or None, "size", PAGE_SIZES, 25)
    after = ctx.query("after") or None
    start = whole_number(ctx.query("start") or None, "start", low=1, high=SQL_INT_MAX, default=1)
    # One extra row tells whether there is a next page without counting.
    rows = ctx.rt.services.catalog.browse_records(info.name, after, size + 1)
    more = len(rows) > size
    rows = rows[:size]
    id_field = info.settings.id_field
    columns = _columns(info.settings.title_field, id_field, rows)
    last_id = str(rows[-1].get(id_field)) if rows else None
    return ctx.render(
        "collection.html",
        title=info.name,
        info=info,
        settings=info.settings,
        rows=rows,
        columns=columns,
        id_field=id_field,
        size=size,
        sizes=PAGE_SIZES,
        start=start if after else 1,
        more=more,
        last_id=last_id,
        paged=after is not None,
    )


def _columns(title: str | None, id_field: str, rows: list[dict[str, object]]) -> list[str]:
    """The id, the title, then the fields most records have, at most six in all."""
    first = [id_field] + ([title] if title and title != id_field else [])
    seen: dict[str, int] = {}
    for row in rows:
        for key, value in row.items():
            if key not in first and not isinstance(value, dict | list):
                seen[key] = seen.get(key, 0) + 1
    rest = sorted(seen, key=lambda k: (-seen[k], k))
    return first + rest[: 6 - len(first)]


@routes.page(
    "GET", "/collections/{name}/delete", Permission.COLLECTIONS_DELETE, name="collection_delete"
)
def delete_form(ctx: Ctx) -> Response:
    info = ctx.rt.services.collections.get(ctx.me.actor, ctx.param("name"))
    return _delete_page(ctx, info.name, info.record_count, {}, "")


def _delete_page(ctx: Ctx, name: str, count: int, errors: Errors, typed: str) -> Response:
    return ctx.render(
        "collection_delete.html",
        400 if errors else 200,
        title=f"Delete {name}",
        name=name,
        record_count=count,
        errors=errors,
        typed=typed,
    )


@routes.page(
    "POST",
    "/collections/{name}/delete",
    Permission.COLLECTIONS_DELETE,
    name="collection_delete_post",
)
def delete(ctx: Ctx) -> Response:
    service = ctx.rt.services.collections
    info = service.get(ctx.me.actor, ctx.param("name"))
    typed = ctx.field("confirm_name").strip()
    try:
        removed = service.delete(ctx.me.actor, info.name, confirm=typed)
    except SearchgateError as exc:
        errors = errors_of(exc, {"confirm": "confirm_name"}, "confirm_name", ctx.reauth_error)
        return _delete_page(ctx, info.name, info.record_count, errors, typed)
    return ctx.redirect(
        "/collections", f"Collection {info.name} was deleted with its {removed:,} records."
    )
