"""Jinja2 environment and the values every page gets (who is signed in, navigation)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import orjson
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.responses import HTMLResponse

from searchgate import __version__
from searchgate.audit.tags import label_of
from searchgate.console import auth
from searchgate.permissions import Permission

if TYPE_CHECKING:
    from searchgate.console.web import Ctx

TEMPLATES = Path(__file__).parent / "templates"

# Security headers of every console page. No inline script or style is used, so the
# policy allows only this origin; htmx is told not to inject its indicator <style>.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _in_zone(value: datetime | None, zone: str) -> str:
    """``value`` in the merchant's time zone, with the zone's offset then."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(ZoneInfo(zone))
    offset = local.strftime("%z")
    return f"{local.strftime('%Y-%m-%d %H:%M')} {zone} (UTC{offset[:3]}:{offset[3:]})"


def _ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - value).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


def _pretty_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _detail_lines(details: dict[str, Any]) -> list[tuple[str, str]]:
    """An event's details as one ``name: value`` line each: a JSON blob squeezed into
    a table cell wraps into a column many times taller than the row needs."""
    return [(name, orjson.dumps(value).decode()) for name, value in details.items()]


def _number(value: int | float) -> str:
    return f"{value:,}"


ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"], default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["when"] = _when
ENV.filters["ago"] = _ago
ENV.filters["in_zone"] = _in_zone
ENV.filters["pretty_json"] = _pretty_json
ENV.filters["number"] = _number
ENV.filters["detail_lines"] = _detail_lines
ENV.filters["action_label"] = label_of
ENV.globals["P"] = Permission
ENV.globals["version"] = __version__


def render_page(ctx: Ctx, template: str, status: int, values: dict[str, Any]) -> HTMLResponse:
    flash = auth.flash_value(ctx.request)
    if flash:
        ctx.set_cookie(auth.FLASH_COOKIE, "", 0)
    principal = ctx.principal
    csrf = auth.csrf_for_page(ctx)
    page = {
        "me": principal,
        "can": ctx.can,
        "csrf_token": csrf,
        "csrf_field": Markup('<input type="hidden" name="csrf_token" value="{}">').format(csrf),
        "htmx_headers": orjson.dumps({"X-CSRF-Token": csrf}).decode(),
        "path": ctx.request.url.path,
        "flash": flash,
        "plain_http": not auth.is_secure(ctx.request),
        "recent": auth.recently_reauthenticated(ctx),
        "me_role": principal.role if principal else "",
        "merchant_zone": ctx.rt.services.settings.merchant_time_zone,
    }
    html = ENV.get_template(template).render(**page, **values)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
