"""Search analytics: searches per day, top queries, zero-result queries and the
merchandising rules that fired and redirected, of the last 7, 30 or 90 days, per area
and collection, with the same figures as a CSV download. A zero-result query links to
a new synonym or rule for it, for whoever may edit merchandising."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from starlette.responses import Response

from searchgate.console.analytics_chart import build_trend
from searchgate.console.web import Ctx, PageRoutes, Refused
from searchgate.errors import InvalidInput
from searchgate.params import size_choice
from searchgate.permissions import Permission
from searchgate.search.analytics import PERIODS, Report, report_csv

routes = PageRoutes()

DEFAULT_DAYS = 30
OVERVIEW_DAYS = 30


def _choices(ctx: Ctx) -> tuple[list[str], list[str]]:
    actor = ctx.me.actor
    areas = [a.name for a in ctx.rt.services.areas.list_areas() if actor.can_access_area(a.name)]
    collections = [c.name for c in ctx.rt.services.catalog.list_collections()]
    return areas, collections


def _report(ctx: Ctx, areas: list[str], collections: list[str]) -> Report:
    days = size_choice(ctx.query("days") or None, "days", PERIODS, DEFAULT_DAYS)
    area = ctx.query("area") or None
    collection = ctx.query("collection") or None
    actor = ctx.me.actor
    if area is not None and not actor.can_access_area(area):
        raise Refused(403, "Not allowed", "Your role does not give access to that area.")
    if area is not None and area not in areas:
        raise InvalidInput("area: not an area of this site", field="area")
    if collection is not None and collection not in collections:
        raise InvalidInput("collection: not a collection of this site", field="collection")
    return ctx.rt.services.analytics.report(
        days, area=area, collection=collection, areas=actor.areas
    )


def start_links(area: str, query: str) -> tuple[str, str]:
    """The merchandising pages that start a synonym set with ``query`` as its term and
    a rule that ``query`` triggers, in ``area``."""
    base = f"/areas/{quote(area, safe='')}/merchandising"
    return (
        f"{base}/synonyms/new?" + urlencode({"term": query}, quote_via=quote),
        f"{base}/rules/new?" + urlencode({"query": query}, quote_via=quote),
    )


@routes.page("GET", "/analytics", Permission.ANALYTICS_VIEW, name="analytics")
def analytics(ctx: Ctx) -> Response:
    areas, collections = _choices(ctx)
    report = _report(ctx, areas, collections)
    chosen = {
        "days": str(report.days),
        "area": report.area or "",
        "collection": report.collection or "",
    }
    # query -> (area, new synonym link, new rule link) for each area it found nothing in.
    starts: dict[str, list[tuple[str, str, str]]] = {}
    if ctx.can(Permission.MERCH_EDIT):
        starts = {
            q.query: [(a, *start_links(a, q.query)) for a in q.areas] for q in report.top_zero
        }
    return ctx.render(
        "analytics.html",
        title="Analytics",
        report=report,
        chart=build_trend(report.series),
        periods=PERIODS,
        areas=areas,
        collections=collections,
        chosen=chosen,
        period_links={d: "/analytics?" + urlencode({**chosen, "days": str(d)}) for d in PERIODS},
        export_link="/analytics/export.csv?" + urlencode(chosen),
        starts=starts,
        counting=ctx.rt.services.analytics.enabled,
    )


@routes.page("GET", "/analytics/export.csv", Permission.ANALYTICS_VIEW, name="analytics_export")
def export(ctx: Ctx) -> Response:
    areas, collections = _choices(ctx)
    report = _report(ctx, areas, collections)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Response(
        report_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="searchgate-analytics-{stamp}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def overview_trend(ctx: Ctx) -> Report | None:
    """The Overview's small trend: the last OVERVIEW_DAYS days of every area and
    collection the person may see, or None without the permission."""
    if not ctx.can(Permission.ANALYTICS_VIEW):
        return None
    return ctx.rt.services.analytics.report(OVERVIEW_DAYS, areas=ctx.me.actor.areas)
