"""Search preview: the search API's own answer, shown as a person would browse it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from searchgate.console.web import Ctx, PageRoutes, Refused
from searchgate.errors import SearchgateError
from searchgate.params import SQL_INT_MAX, size_choice, whole_number
from searchgate.permissions import Permission
from searchgate.search.request import parse_search_request

routes = PageRoutes()

PAGE_SIZES = (10, 25, 50)
SEP = "|"


def encode_refinement(ref: dict[str, Any], nav: str) -> str:
    if ref.get("type") == "Range":
        low = "" if ref.get("low") is None else _plain(ref["low"])
        high = "" if ref.get("high") is None else _plain(ref["high"])
        return SEP.join(("Range", nav, low, high))
    return SEP.join(("Value", nav, _plain(ref.get("value"))))


def _plain(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).lower() if isinstance(v, bool) else str(v)


def decode_refinement(raw: str) -> dict[str, Any] | None:
    kind, _, rest = raw.partition(SEP)
    if kind == "Value":
        nav, sep, value = rest.partition(SEP)
        if nav and sep:
            return {"navigationName": nav, "type": "Value", "value": value}
    elif kind == "Range":
        parts = rest.split(SEP)
        if len(parts) == 3 and parts[0]:
            return {
                "navigationName": parts[0],
                "type": "Range",
                "low": parts[1] or None,
                "high": parts[2] or None,
            }
    return None


@routes.page("GET", "/search", Permission.SEARCH_PREVIEW, name="search_preview")
def search_preview(ctx: Ctx) -> Response:
    me = ctx.me
    collections = [c.name for c in ctx.rt.services.catalog.list_collections()]
    areas = [a.name for a in ctx.rt.services.areas.list_areas() if me.actor.can_access_area(a.name)]
    collection = ctx.query("collection") or (collections[0] if collections else "")
    area = ctx.query("area") or ("Production" if "Production" in areas else (areas or [""])[0])
    if area and not me.actor.can_access_area(area):
        raise Refused(403, "Not allowed", f"Your role does not give access to the area {area}.")
    query = ctx.query("q")
    size = size_choice(ctx.query("size") or None, "size", PAGE_SIZES, 10)
    page_no = whole_number(ctx.query("page") or None, "page", low=1, high=SQL_INT_MAX, default=1)
    sort = ctx.query("sort")
    refine = [r for r in ctx.request.query_params.getlist("refine") if decode_refinement(r)]
    state = {"collection": collection, "area": area, "q": query, "size": str(size), "sort": sort}
    body: dict[str, Any] = {
        "collection": collection,
        "area": area,
        "query": query,
        "refinements": [decode_refinement(r) for r in refine],
        "skip": (page_no - 1) * size,
        "pageSize": size,
    }
    if sort:
        field, _, order = sort.partition(":")
        body["sort"] = {"field": field, "order": "Descending" if order == "desc" else "Ascending"}
    response: dict[str, Any] | None = None
    error: str | None = None
    sortable: list[str] = []
    if collection:
        try:
            settings = ctx.rt.services.catalog.settings_of(collection)
            sortable = list(settings.sortable) if settings else []
            response = ctx.rt.preview.search(parse_search_request(body))
        except SearchgateError as exc:
            error = exc.message
    return ctx.render(
        "search.html",
        title="Search preview",
        collections=collections,
        areas=areas,
        state=state,
        refine=refine,
        response=response,
        error=error,
        page_no=page_no,
        size=size,
        sizes=PAGE_SIZES,
        sortable=sortable,
        link=lambda **change: _link(state, refine, **change),
        encode=encode_refinement,
    )


def _link(
    state: dict[str, str],
    refine: list[str],
    add: str | None = None,
    remove: str | None = None,
    page: int | None = None,
) -> str:
    chosen = [r for r in refine if r != remove]
    if add is not None and add not in chosen:
        chosen.append(add)
    params: list[tuple[str, str]] = [(k, v) for k, v in state.items() if v]
    params.extend(("refine", r) for r in chosen)
    if page is not None and page > 1:
        params.append(("page", str(page)))
    return "/search?" + urlencode(params)
