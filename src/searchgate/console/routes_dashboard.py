"""The overview: collections, recent changes, the searches of the last days and
security notices, as far as the person's role lets them see each."""

from __future__ import annotations

from starlette.responses import Response

from searchgate.console.analytics_chart import build_trend
from searchgate.console.routes_admin_keys import key_notices
from searchgate.console.routes_analytics import overview_trend
from searchgate.console.routes_audit import key_names
from searchgate.console.web import SIGNED_IN, Ctx, PageRoutes
from searchgate.permissions import Permission

routes = PageRoutes()

RECENT_CHANGES = 8


@routes.page("GET", "/", SIGNED_IN, name="dashboard")
def dashboard(ctx: Ctx) -> Response:
    actor = ctx.me.actor
    services = ctx.rt.services
    collections = services.collections.list(actor) if ctx.can(Permission.COLLECTIONS_READ) else None
    changes = (
        services.audit.query(actor, limit=RECENT_CHANGES).events
        if ctx.can(Permission.AUDIT_READ)
        else None
    )
    summary = services.users.admin_summary(actor) if ctx.can(Permission.USERS_READ) else None
    trend = overview_trend(ctx)
    return ctx.render(
        "dashboard.html",
        title="Overview",
        collections=collections,
        changes=changes,
        key_names=key_names(ctx, changes or []),
        summary=summary,
        my_mfa=services.mfa.status(actor.user_id or ""),
        key_notices=key_notices(ctx),
        trend=trend,
        trend_chart=build_trend(trend.series) if trend is not None else None,
    )
