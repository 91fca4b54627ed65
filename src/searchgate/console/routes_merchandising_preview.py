"""Live and draft side by side: the same search, once with the area's published
merchandising and once with its draft, each with the search's own explanation (which
synonyms, stop words, rules and biasing profile applied, and why)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import Response

from searchgate.console.routes_merchandising import BASE, area_name, base_url, merch
from searchgate.console.web import Ctx, PageRoutes
from searchgate.errors import InvalidInput, SearchgateError
from searchgate.permissions import Permission
from searchgate.search.request import parse_search_request

routes = PageRoutes()

PAGE_SIZE = 10
MAX_PAIRS = 20
MAX_PAIRS_CHARS = 2_000


@dataclass(frozen=True)
class Side:
    label: str
    response: dict[str, Any] | None
    error: str | None

    @property
    def ids(self) -> list[str]:
        records = (self.response or {}).get("records") or []
        return [str(r.get("_id", "")) for r in records if isinstance(r, dict)]

    @property
    def debug(self) -> dict[str, Any]:
        found = (self.response or {}).get("debug")
        return found if isinstance(found, dict) else {}


def _pairs(ctx: Ctx, name: str) -> list[tuple[str, str]]:
    """``key=value&key=value`` as typed into one field of the preview form."""
    raw = ctx.query(name).strip()
    if len(raw) > MAX_PAIRS_CHARS:
        raise InvalidInput(f"{name}: at most {MAX_PAIRS_CHARS} characters", field=name)
    pairs = [(k.strip(), v) for k, v in parse_qsl(raw, keep_blank_values=True) if k.strip()]
    if len(pairs) > MAX_PAIRS:
        raise InvalidInput(f"{name}: at most {MAX_PAIRS} key=value pairs", field=name)
    return pairs


def _request(ctx: Ctx, area: str, collection: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "collection": collection,
        "area": area,
        "query": ctx.query("q"),
        "pageSize": PAGE_SIZE,
        "debug": True,
    }
    profile = ctx.query("profile").strip()
    if profile:
        body["biasingProfile"] = profile
    params = _pairs(ctx, "params")
    if params:
        body["customUrlParams"] = [{"key": k, "value": v} for k, v in params]
    refine = _pairs(ctx, "refine")
    if refine:
        body["refinements"] = [
            {"navigationName": k, "type": "Value", "value": v} for k, v in refine
        ]
    return body


def _side(ctx: Ctx, label: str, body: dict[str, Any], draft: bool) -> Side:
    try:
        return Side(label, ctx.rt.preview.search(parse_search_request(body), draft=draft), None)
    except SearchgateError as exc:
        return Side(label, None, exc.message)


@routes.page("GET", BASE + "/preview", Permission.AREAS_READ, name="merchandising_preview")
def preview(ctx: Ctx) -> Response:
    area = area_name(ctx)
    service, actor = merch(ctx), ctx.me.actor
    # As the API's preview: console:search:preview too, besides reading the draft.
    service.check_preview(actor, area, True)
    draft = service.draft(actor, area)
    collections = [c.name for c in ctx.rt.services.catalog.list_collections()]
    collection = ctx.query("collection") or (collections[0] if collections else "")
    state = {
        "q": ctx.query("q"),
        "collection": collection,
        "profile": ctx.query("profile"),
        "params": ctx.query("params"),
        "refine": ctx.query("refine"),
    }
    sides: list[Side] = []
    error: str | None = None
    if collection and "q" in ctx.request.query_params:
        try:
            body = _request(ctx, area, collection)
        except InvalidInput as exc:
            error = exc.message
        else:
            sides = [_side(ctx, "Live", body, False), _side(ctx, "Draft", body, True)]
    return ctx.render(
        "merchandising/preview.html",
        title=f"Live and draft · {area}",
        area=area,
        base=base_url(area),
        draft=draft,
        collections=collections,
        profiles=[p.name for p in draft.document.biasing_profiles],
        state=state,
        sides=sides,
        error=error,
    )
