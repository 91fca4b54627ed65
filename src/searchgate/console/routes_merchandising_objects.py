"""The forms that add, change and delete the objects of an area's merchandising draft
(synonym sets, rules, biasing profiles, stop words, related queries).

Objects are named in the query string (``?object=``), not the path: a name may hold a
slash. The repeated rows of a rule or a profile (triggers, pins, biases, zones) grow
and shrink with plain submit buttons, so the form works without script.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from searchgate.console import merch_forms as mf
from searchgate.console.forms import Errors, errors_of
from searchgate.console.routes_merchandising import (
    BASE,
    area_name,
    base_url,
    merch,
    overview_page,
    revision_of,
)
from searchgate.console.web import Ctx, PageRoutes
from searchgate.error_status import status_of
from searchgate.errors import NotFound, SearchgateError
from searchgate.merchandising.document import MerchandisingDocument
from searchgate.permissions import Permission

routes = PageRoutes()

OBJECT = BASE + "/{kind}"


def _kind(ctx: Ctx) -> str:
    kind = mf.SLUGS.get(ctx.param("kind"))
    if kind is None:
        raise NotFound("there is no such kind of merchandising object")
    return kind


def _find(doc: MerchandisingDocument, kind: str, name: str) -> Any:
    for obj in doc.objects(kind):
        if obj.name == name:
            return obj
    return None


def _form_page(
    ctx: Ctx,
    area: str,
    kind: str,
    values: mf.FormValues,
    errors: Errors,
    *,
    replacing: str = "",
    revision: int | None = None,
    status: int | None = None,
) -> Response:
    draft = merch(ctx).draft(ctx.me.actor, area)
    one = mf.LABELS[kind][0]
    shown = dict(values)
    for rows in mf.ROWS_OF_KIND.get(kind, ()):
        if not shown[rows]:
            shown[rows] = [mf.blank_row(rows)]
    return ctx.render(
        f"merchandising/form_{mf.SLUG_OF[kind].replace('-', '_')}.html",
        status if status is not None else (400 if errors else 200),
        title=(f"Change {one} {replacing}" if replacing else f"New {one}") + f" · {area}",
        area=area,
        base=base_url(area),
        action=f"{base_url(area)}/{mf.SLUG_OF[kind]}/save",
        kind=kind,
        slug=mf.SLUG_OF[kind],
        one=one,
        values=shown,
        errors=errors,
        replacing=replacing,
        revision=draft.revision if revision is None else revision,
        strengths=mf.STRENGTHS,
        trigger_types=mf.TRIGGER_TYPES,
        zone_types=mf.ZONE_TYPES,
        profiles=[p.name for p in draft.document.biasing_profiles],
        can_edit=ctx.can(Permission.MERCH_EDIT),
    )


@routes.page("GET", OBJECT + "/new", Permission.MERCH_EDIT, name="merchandising_new")
def new(ctx: Ctx) -> Response:
    """A new object; ``?term=`` (a synonym set) or ``?query=`` (a rule, a related
    queries set) starts it from a query, as the analytics page links to it."""
    area, kind = area_name(ctx), _kind(ctx)
    term = ctx.query("term") or ctx.query("query")
    return _form_page(ctx, area, kind, mf.blank(kind, term), {})


@routes.page("GET", OBJECT + "/edit", Permission.MERCH_EDIT, name="merchandising_edit")
def edit(ctx: Ctx) -> Response:
    area, kind = area_name(ctx), _kind(ctx)
    name = ctx.query("object")
    draft = merch(ctx).draft(ctx.me.actor, area)
    obj = _find(draft.document, kind, name)
    if obj is None:
        raise NotFound(f"the draft has no {mf.LABELS[kind][0]} named {name!r}")
    values = mf.from_object(kind, obj, draft.document.default_biasing_profile)
    return _form_page(ctx, area, kind, values, {}, replacing=name, revision=draft.revision)


def _row_change(values: mf.FormValues, kind: str, add: str, remove: str) -> bool:
    """Adds or removes a row when the person pressed one of the row buttons."""
    if add in mf.ROWS_OF_KIND.get(kind, ()):
        if len(values[add]) < mf.MAX_ROWS:
            values[add].append(mf.blank_row(add))
        return True
    rows, _, index = remove.partition("-")
    if rows in mf.ROWS_OF_KIND.get(kind, ()):
        if index.isdigit() and int(index) < len(values[rows]):
            del values[rows][int(index)]
        return True
    return False


@routes.page("POST", OBJECT + "/save", Permission.MERCH_EDIT, name="merchandising_save")
def save(ctx: Ctx) -> Response:
    area, kind = area_name(ctx), _kind(ctx)
    replacing = ctx.field("replacing")
    revision = revision_of(ctx)
    values = mf.read(kind, ctx.field, ctx.fields)

    def page(shown: mf.FormValues, errors: Errors, status: int | None = None) -> Response:
        return _form_page(
            ctx, area, kind, shown, errors, replacing=replacing, revision=revision, status=status
        )

    if _row_change(values, kind, ctx.field("add"), ctx.field("remove")):
        return page(values, {})
    service, actor = merch(ctx), ctx.me.actor
    draft = service.draft(actor, area)
    before = _find(draft.document, kind, replacing) if replacing else None
    if replacing and before is None:
        errors = {"form": f"The draft no longer has the {mf.LABELS[kind][0]} {replacing}."}
        return page(values, errors, 409)
    obj, errors = mf.parse(kind, values, before)
    shown = mf.without_blank_rows(kind, values)
    if obj is not None and obj.name != replacing and _find(draft.document, kind, obj.name):
        errors = {"name": f"The draft already has a {mf.LABELS[kind][0]} named {obj.name}."}
    if errors:
        return page(shown, mf.known(kind, errors))
    try:
        saved = service.put_object(actor, area, kind, obj, revision, replacing=replacing or None)
        if kind == "biasingProfiles":
            _default(ctx, area, obj.name, replacing, values["make_default"], saved)
    except SearchgateError as exc:
        where = {exc.field or "": mf.service_field(exc.field)}
        errors = mf.known(kind, errors_of(exc, where, "form"))
        return page(shown, errors, status_of(exc))
    one = mf.LABELS[kind][0]
    verb = "changed" if replacing else "added"
    return ctx.redirect(
        f"{base_url(area)}#{kind}", f"The {one} {obj.name} was {verb} in the draft."
    )


def _default(ctx: Ctx, area: str, name: str, replacing: str, wanted: bool, draft: Any) -> None:
    """The profile form's "default" box: the area's default follows it."""
    current = draft.document.default_biasing_profile
    if wanted and current != name:
        merch(ctx).set_default_profile(ctx.me.actor, area, name, draft.revision)
    elif not wanted and current in (name, replacing) and current is not None:
        merch(ctx).set_default_profile(ctx.me.actor, area, None, draft.revision)


@routes.page("POST", OBJECT + "/delete", Permission.MERCH_EDIT, name="merchandising_delete")
def delete(ctx: Ctx) -> Response:
    area, kind = area_name(ctx), _kind(ctx)
    name = ctx.field("object")
    one = mf.LABELS[kind][0]
    try:
        merch(ctx).delete_object(ctx.me.actor, area, kind, name, revision_of(ctx))
    except SearchgateError as exc:
        if isinstance(exc, NotFound):
            raise
        errors = errors_of(exc, {}, f"delete-{kind}")
        return overview_page(ctx, area, errors, status=status_of(exc))
    return ctx.redirect(f"{base_url(area)}#{kind}", f"The {one} {name} was deleted from the draft.")
