"""Merchandising of an area: the draft and its objects, publishing, the history of
published versions with their diffs, and rollback.

The object forms are in ``routes_merchandising_objects``, the side-by-side preview in
``routes_merchandising_preview``. Reading needs ``console:areas:read`` (the preview
``console:search:preview`` as well); changing the draft ``console:merchandising:edit``;
publishing and rolling back ``console:merchandising:publish``. The service checks the
same permissions (and the person's area restriction) again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from starlette.responses import Response

from searchgate.console.forms import Errors, errors_of
from searchgate.console.merch_forms import LABELS, SLUG_OF
from searchgate.console.routes_areas import _area
from searchgate.console.web import Ctx, PageRoutes
from searchgate.error_status import status_of
from searchgate.errors import NotFound, SearchgateError
from searchgate.merchandising.diff import Change, diff
from searchgate.merchandising.document import EMPTY, KINDS, MerchandisingDocument, Rule
from searchgate.merchandising.service import Draft, MerchandisingService, Version
from searchgate.params import SQL_INT_MAX, read_whole_number
from searchgate.permissions import Permission

routes = PageRoutes()

BASE = "/areas/{name}/merchandising"
HISTORY_LIMIT = 50


def merch(ctx: Ctx) -> MerchandisingService:
    return ctx.rt.services.merchandising


def area_name(ctx: Ctx) -> str:
    """The area of the path, when it exists and the person may see it."""
    return _area(ctx, ctx.param("name")).name


def base_url(area: str) -> str:
    return f"/areas/{area}/merchandising"


def revision_of(ctx: Ctx) -> int | None:
    """The draft revision the form was made from (a stale one is refused)."""
    return read_whole_number(ctx.field("revision"), 0, SQL_INT_MAX)


def live_document(
    ctx: Ctx, area: str, draft: Draft
) -> tuple[Version | None, MerchandisingDocument]:
    if draft.live_number is None:
        return None, EMPTY
    live = merch(ctx).version(ctx.me.actor, area, draft.live_number)
    return live, live.document


def publish_refusal(ctx: Ctx) -> str | None:
    """Why the publish button is not offered, or None when it is."""
    if ctx.can(Permission.MERCH_PUBLISH):
        return None
    role = ctx.me.role or "your role"
    return (
        f"Publishing needs the permission {Permission.MERCH_PUBLISH.value}, which the role "
        f"{role} does not include. Ask an admin to publish this draft, or to grant it."
    )


# --- what the overview shows of each object --------------------------------------------


@dataclass(frozen=True)
class RuleView:
    rule: Rule
    status: str  # active, scheduled, ended, disabled
    triggers: list[str]
    actions: list[str]


def _trigger_text(t: Any) -> str:
    if t.type == "navigationSelected":
        return f"{t.navigation} = {t.value} is selected"
    if t.type == "customUrlParam":
        return f"customUrlParams {t.key} = {t.value}"
    verb = {"queryEquals": "equals", "queryContains": "contains", "queryStartsWith": "starts with"}
    return f"query {verb[t.type]} “{t.value}”"


def _actions_text(r: Rule) -> list[str]:
    out: list[str] = []
    if r.redirect:
        out.append(f"redirect to {r.redirect}")
    if r.pins:
        out.append("pin " + ", ".join(f"{p.id} at {p.position}" for p in r.pins))
    if r.hide:
        out.append(f"hide {len(r.hide)} record{'s' if len(r.hide) != 1 else ''}")
    for b in r.biases:
        out.append(f"{b.strength.replace('_', ' ').lower()}: {b.name} = {b.content}")
    if r.filter:
        out.append(f"filter {r.filter}")
    if r.navigations is not None:
        out.append("navigations: " + (", ".join(r.navigations) or "none"))
    if r.template is not None:
        zones = len(r.template.zones)
        out.append(f"template {r.template.name} ({zones} zone{'s' if zones != 1 else ''})")
    return out


def _status(r: Rule, now: datetime) -> str:
    if not r.enabled:
        return "disabled"
    if r.active_to is not None and now >= r.active_to:
        return "ended"
    if r.active_from is not None and now < r.active_from:
        return "scheduled"
    return "active"


def rule_views(doc: MerchandisingDocument, now: datetime) -> list[RuleView]:
    """The rules in the order they are taken: priority, then name."""
    ordered = sorted(doc.rules, key=lambda r: (r.priority, r.name))
    return [
        RuleView(r, _status(r, now), [_trigger_text(t) for t in r.triggers], _actions_text(r))
        for r in ordered
    ]


@dataclass(frozen=True)
class ChangeView:
    """A Change as a page shows it: each field's value as compact JSON."""

    kind: str
    name: str
    change: str
    # "changed": (field, before, after); "added" and "removed": (field, value, "").
    lines: list[tuple[str, str, str]]


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def change_views(changes: list[Change]) -> list[ChangeView]:
    out = []
    for c in changes:
        if c.change == "changed":
            before, after = c.before or {}, c.after or {}
            lines = [(f, _json(before.get(f)), _json(after.get(f))) for f in c.fields]
        else:
            shown = (c.after if c.change == "added" else c.before) or {}
            lines = [(k, _json(v), "") for k, v in shown.items() if v not in (None, [], "")]
        out.append(ChangeView(c.kind, c.name, c.change, lines))
    return out


# --- the overview ------------------------------------------------------------------------


@routes.page("GET", "/merchandising", Permission.AREAS_READ, name="merchandising_areas")
def areas(ctx: Ctx) -> Response:
    actor = ctx.me.actor
    rows = []
    for a in ctx.rt.services.areas.list_areas():
        if actor.can_access_area(a.name):
            draft = merch(ctx).draft(actor, a.name)
            rows.append({"area": a.name, "draft": draft})
    return ctx.render("merchandising/areas.html", title="Merchandising", rows=rows)


def overview_page(
    ctx: Ctx, area: str, errors: Errors, note: str = "", status: int = 400
) -> Response:
    actor = ctx.me.actor
    draft = merch(ctx).draft(actor, area)
    live, live_doc = live_document(ctx, area, draft)
    doc = draft.document
    return ctx.render(
        "merchandising/overview.html",
        status if errors else 200,
        title=f"Merchandising · {area}",
        area=area,
        base=base_url(area),
        draft=draft,
        live=live,
        pending=change_views(diff(live_doc, doc)),
        doc=doc,
        rules=rule_views(doc, merch(ctx).clock()),
        kinds=KINDS,
        labels=LABELS,
        slug_of=SLUG_OF,
        errors=errors,
        note=note,
        refusal=publish_refusal(ctx),
    )


@routes.page("GET", BASE, Permission.AREAS_READ, name="merchandising")
def overview(ctx: Ctx) -> Response:
    return overview_page(ctx, area_name(ctx), {})


@routes.page("POST", BASE + "/publish", Permission.MERCH_PUBLISH, name="merchandising_publish")
def publish(ctx: Ctx) -> Response:
    area = area_name(ctx)
    note = ctx.field("note").strip()
    try:
        version = merch(ctx).publish(ctx.me.actor, area, note, revision_of(ctx))
    except SearchgateError as exc:
        errors = errors_of(exc, {"note": "note"}, "publish")
        return overview_page(ctx, area, errors, note, status_of(exc))
    return ctx.redirect(
        f"{base_url(area)}/versions/{version.number}",
        f"Version {version.number} is live for shoppers of {area}.",
    )


@routes.page("POST", BASE + "/discard", Permission.MERCH_EDIT, name="merchandising_discard")
def discard(ctx: Ctx) -> Response:
    area = area_name(ctx)
    try:
        merch(ctx).discard_draft(ctx.me.actor, area)
    except SearchgateError as exc:
        return overview_page(ctx, area, errors_of(exc, {}, "discard"), status=status_of(exc))
    return ctx.redirect(base_url(area), "The draft was discarded: it is the live version again.")


@routes.page("POST", BASE + "/default-profile", Permission.MERCH_EDIT, name="merchandising_default")
def default_profile(ctx: Ctx) -> Response:
    area = area_name(ctx)
    chosen = ctx.field("profile").strip() or None
    try:
        merch(ctx).set_default_profile(ctx.me.actor, area, chosen, revision_of(ctx))
    except SearchgateError as exc:
        return overview_page(ctx, area, errors_of(exc, {}, "profile"), status=status_of(exc))
    said = f"The default biasing profile is {chosen}." if chosen else "No default biasing profile."
    return ctx.redirect(base_url(area) + "#biasingProfiles", said + " (in the draft)")


# --- history -------------------------------------------------------------------------------


@routes.page("GET", BASE + "/versions", Permission.AREAS_READ, name="merchandising_versions")
def versions(ctx: Ctx) -> Response:
    area = area_name(ctx)
    listed = merch(ctx).versions(ctx.me.actor, area, HISTORY_LIMIT)
    return ctx.render(
        "merchandising/versions.html",
        title=f"Merchandising history · {area}",
        area=area,
        base=base_url(area),
        versions=listed,
        limit=HISTORY_LIMIT,
    )


def _number(ctx: Ctx) -> int:
    number = read_whole_number(ctx.param("number"), 1, SQL_INT_MAX)
    if number is None:
        raise NotFound("there is no such version")
    return number


def version_page(
    ctx: Ctx, area: str, number: int, errors: Errors, note: str = "", status: int = 400
) -> Response:
    service, actor = merch(ctx), ctx.me.actor
    version = service.version(actor, area, number)
    before = service.version(actor, area, number - 1).document if number > 1 else EMPTY
    changes = change_views(diff(before, version.document))
    draft = service.draft(actor, area)
    return ctx.render(
        "merchandising/version.html",
        status if errors else 200,
        title=f"Version {number} · {area}",
        area=area,
        base=base_url(area),
        version=version,
        changes=changes,
        live_number=draft.live_number,
        labels=LABELS,
        errors=errors,
        note=note,
        refusal=publish_refusal(ctx),
    )


@routes.page(
    "GET", BASE + "/versions/{number}", Permission.AREAS_READ, name="merchandising_version"
)
def version(ctx: Ctx) -> Response:
    return version_page(ctx, area_name(ctx), _number(ctx), {})


@routes.page(
    "POST",
    BASE + "/versions/{number}/rollback",
    Permission.MERCH_PUBLISH,
    name="merchandising_rollback",
)
def rollback(ctx: Ctx) -> Response:
    area, number = area_name(ctx), _number(ctx)
    note = ctx.field("note").strip()
    try:
        made = merch(ctx).rollback(ctx.me.actor, area, number, note)
    except SearchgateError as exc:
        if isinstance(exc, NotFound):
            raise
        errors = errors_of(exc, {"note": "note"}, "rollback")
        return version_page(ctx, area, number, errors, note, status_of(exc))
    return ctx.redirect(
        f"{base_url(area)}/versions/{made.number}",
        f"Version {made.number} is live: the merchandising of version {number} again.",
    )
