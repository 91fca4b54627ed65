"""The records and navigations of a search response, in the protocol's wire shapes."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from searchgate.catalog.settings import CollectionSettings, NavigationSetting
from searchgate.engines.base import FacetResult, Hit
from searchgate.search.request import SearchRequest


def record_out(
    collection: str, settings: CollectionSettings, wanted: set[str] | None, hit: Hit
) -> dict[str, Any]:
    """``{_id, _u, _t, allMeta, collection}``; ``allMeta`` keeps the ``wanted`` fields
    (all when None) and always the id field. Without a URL or title field, ``_u`` is a
    stable path and ``_t`` the id."""
    meta: dict[str, Any] = orjson.loads(hit.source)
    title = meta.get(settings.title_field) if settings.title_field else None
    url = meta.get(settings.url_field) if settings.url_field else None
    if wanted is not None:
        keep = wanted | {settings.id_field}
        meta = {k: v for k, v in meta.items() if k in keep}
    if not isinstance(url, str):
        url = f"/{quote(collection, safe='')}/{quote(hit.record_id, safe='')}"
    return {
        "_id": hit.record_id,
        "_u": url,
        "_t": title if isinstance(title, str) else hit.record_id,
        "allMeta": meta,
        "collection": collection,
    }


def navigation_out(
    nav: NavigationSetting,
    fr: FacetResult,
    total: int,
    prune: bool,
    size: int,
    multi: bool,
    asked: int = 0,
) -> dict[str, Any]:
    """One navigation with at most ``size`` refinements. ``prune`` drops refinements
    every result has (they would not narrow anything); an OR navigation's counts
    ignore its own selection, so it is never pruned. ``asked`` is how many values the
    engine was asked for: getting that many means there may be more."""
    prune = prune and total > 0 and not multi
    refinements: list[dict[str, Any]] = []
    more = False
    if nav.type == "Range":
        for low, high, count in fr.ranges:
            if count == 0 or (prune and count == total):
                continue
            refinements.append({"type": "Range", "low": low, "high": high, "count": count})
    else:
        values = [(v, c) for v, c in fr.values if not (prune and c == total)]
        more = len(values) > size or 0 < asked <= len(fr.values)
        values = values[:size]
        refinements = [{"type": "Value", "value": v, "count": c} for v, c in values]
    return {
        "name": nav.name,
        "displayName": nav.display_name or nav.name,
        "type": nav.type,
        "range": nav.type == "Range",
        "or": multi,
        "refinements": refinements,
        "metadata": [],
        "moreRefinements": more,
        "sort": None,
    }


def selected_out(req: SearchRequest, settings: CollectionSettings) -> list[dict[str, Any]]:
    """The applied refinements (breadcrumbs), grouped by navigation in request order."""
    out: dict[str, dict[str, Any]] = {}
    for r in req.refinements:
        nav = settings.navigation(r.navigation_name)
        if nav is None:
            continue
        entry = out.setdefault(
            nav.name,
            {
                "name": nav.name,
                "displayName": nav.display_name or nav.name,
                "type": nav.type,
                "range": nav.type == "Range",
                "or": nav.multi_select or nav.name in req.or_fields,
                "refinements": [],
            },
        )
        ref: dict[str, Any] = {"type": r.type, "exclude": r.exclude}
        if r.type == "Value":
            ref["value"] = r.value
        else:
            ref["low"], ref["high"] = r.low, r.high
        entry["refinements"].append(ref)
    return list(out.values())
