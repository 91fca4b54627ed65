"""The change log: filter, page through and export what happened."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from starlette.responses import Response, StreamingResponse

from searchgate.audit.service import AuditEvent, AuditFilter
from searchgate.audit.tags import Action, Outcome
from searchgate.console.forms import Errors
from searchgate.console.web import Ctx, PageRoutes
from searchgate.params import SQL_INT_MAX, whole_number
from searchgate.permissions import Permission

routes = PageRoutes()

PAGE_SIZE = 50
_KEY_ID = re.compile(r"^key_[0-9a-f]{16}$")
FILTERS = ("user", "action", "target", "outcome", "since", "until")


def _day(raw: str, name: str, errors: Errors) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = "Give a date as YYYY-MM-DD"
        return None


def key_names(ctx: Ctx, events: Iterable[AuditEvent]) -> dict[str, str]:
    """Key ids among the events' targets -> the keys' names (tombstones too), for
    people who may see keys: the page shows the name, the id beside it."""
    if not ctx.can(Permission.KEYS_READ):
        return {}
    if not any(e.target and _KEY_ID.match(e.target) for e in events):
        return {}
    return {k.id: k.name for k in ctx.rt.services.keys.list(include_deleted=True)}


def parse_filters(ctx: Ctx) -> tuple[AuditFilter, dict[str, str], Errors]:
    values = {name: ctx.query(name).strip() for name in FILTERS}
    errors: Errors = {}
    since = _day(values["since"], "since", errors)
    until = _day(values["until"], "until", errors)
    if since and until and until < since:
        errors["until"] = "The end date is before the start date"
    outcome = values["outcome"]
    if outcome and outcome not in {o.value for o in Outcome}:
        errors["outcome"] = "Choose an outcome from the list"
    filters = AuditFilter(
        user=values["user"] or None,
        action=values["action"] or None,
        target=values["target"] or None,
        outcome=outcome if outcome and "outcome" not in errors else None,
        since=datetime.combine(since, time(), UTC) if since else None,
        # The end date is inclusive: everything before the next midnight.
        until=datetime.combine(until + timedelta(days=1), time(), UTC) if until else None,
    )
    return filters, values, errors


@routes.page("GET", "/admin/audit", Permission.AUDIT_READ, name="audit")
def audit(ctx: Ctx) -> Response:
    filters, values, errors = parse_filters(ctx)
    before = whole_number(ctx.query("before") or None, "before", low=1, high=SQL_INT_MAX)
    log = ctx.rt.services.audit
    if errors:
        filters = AuditFilter()
    result = log.query(ctx.me.actor, filters, before=before, limit=PAGE_SIZE)
    shown = {k: v for k, v in values.items() if v}
    return ctx.render(
        "audit.html",
        400 if errors else 200,
        title="Change log",
        events=result.events,
        key_names=key_names(ctx, result.events),
        total=log.count(ctx.me.actor, filters),
        values=values,
        errors=errors,
        actions=sorted(a.value for a in Action),
        outcomes=[o.value for o in Outcome],
        next_link=(
            "/admin/audit?" + urlencode({**shown, "before": result.next_before})
            if result.next_before
            else None
        ),
        first_link=("/admin/audit?" + urlencode(shown)) if before else None,
        export_link="/admin/audit/export.csv" + ("?" + urlencode(shown) if shown else ""),
    )


@routes.page("GET", "/admin/audit/export.csv", Permission.AUDIT_READ, name="audit_export")
def export(ctx: Ctx) -> Response:
    filters, _values, errors = parse_filters(ctx)
    if errors:
        field, message = next(iter(errors.items()))
        return ctx.error_page(400, "Cannot export", f"{field}: {message}")
    chunks = ctx.rt.services.audit.export_csv(ctx.me.actor, filters)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="searchgate-change-log-{stamp}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
