"""Key Management: every client key with its restrictions, use and traffic; creating,
replacing, rolling, disabling, enabling and deleting keys.

A key's secret is in exactly one response, the one that created it: never in the
session, a URL, a flash message, a log or any later page. That page is sent with
``Cache-Control: no-store`` and its script turns the history entry into a GET of the
key list, so reloading or going back does not send the form again.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import quote

from starlette.responses import Response

from searchgate.console.forms import Errors, errors_of
from searchgate.console.web import Ctx, page
from searchgate.errors import InvalidInput, ReauthenticationRequired, SearchgateError
from searchgate.keys.info import CreatedKey, KeyInfo
from searchgate.keys.restrictions import Restrictions
from searchgate.keys.scopes import SCOPE_HELP, Scope
from searchgate.keys.service import MAX_ROLL_DELAY, KeyInUse
from searchgate.keys.usage import DayCount, UsageQueries
from searchgate.permissions import Permission

CHART_DAYS = 14
# The dashboard warns this long before a key reaches settings.key_max_age_days.
AGE_WARNING_DAYS = 14
# The reason KeyService.report_leak gives a key it disables.
LEAK_REASON = "leak reported"
MAX_ROLL_HOURS = int(MAX_ROLL_DELAY.total_seconds() // 3600)
DEFAULT_ROLL_HOURS = 24

# Service field names (JSON, camelCase) -> this console's form field names.
KEY_FIELDS = {
    "name": "name",
    "scopes": "scopes",
    "collections": "collections",
    "expiresAt": "expires_at",
    "ipRanges": "ip_ranges",
    "origins": "origins",
    "rateLimitPerMinute": "rate_limit",
}
_LIST_SPLIT = re.compile(r"[\s,]+")
_WHOLE = re.compile(r"[0-9]{1,12}")

# --- the traffic chart ---------------------------------------------------------------

# Colour-blind-friendly hues (Okabe-Ito) for the busiest systems, grey for the rest.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9")
OTHERS = "other systems"
OTHERS_COLOUR = "#8c96a3"
BAR_WIDTH, BAR_GAP, CHART_HEIGHT = 14, 4, 56


@dataclass(frozen=True)
class Segment:
    system: str
    colour: str
    count: int
    y: float
    height: float


@dataclass(frozen=True)
class Bar:
    day: date
    x: int
    total: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Chart:
    """Requests per day over the last CHART_DAYS days, stacked by system: drawn as an
    SVG, and given as a table for screen readers and for exact figures."""

    bars: tuple[Bar, ...]
    legend: tuple[tuple[str, str, int], ...]  # (system, colour, requests)
    total: int
    peak: int
    width: int = CHART_DAYS * (BAR_WIDTH + BAR_GAP)
    height: int = CHART_HEIGHT
    bar_width: int = BAR_WIDTH

    def count(self, bar: Bar, system: str) -> int:
        return sum(s.count for s in bar.segments if s.system == system)


def build_chart(counts: list[DayCount], today: date, days: int = CHART_DAYS) -> Chart:
    per_system: dict[str, int] = {}
    for c in counts:
        per_system[c.system] = per_system.get(c.system, 0) + c.requests
    ranked = sorted(per_system, key=lambda s: (-per_system[s], s))
    # With more systems than colours, the busiest keep a colour and the rest share grey.
    named = ranked if len(ranked) <= len(PALETTE) else ranked[: len(PALETTE) - 1]
    colours = {s: PALETTE[i] for i, s in enumerate(named)}
    legend = [(s, colours[s], per_system[s]) for s in named]
    if len(named) < len(ranked):
        legend.append((OTHERS, OTHERS_COLOUR, sum(per_system[s] for s in ranked[len(named) :])))
    by_day: dict[date, dict[str, int]] = {}
    for c in counts:
        label = c.system if c.system in colours else OTHERS
        of_day = by_day.setdefault(c.day, {})
        of_day[label] = of_day.get(label, 0) + c.requests
    first = today - timedelta(days=days - 1)
    totals = [sum(by_day.get(first + timedelta(days=i), {}).values()) for i in range(days)]
    peak = max(totals, default=0)
    bars = []
    for i in range(days):
        day = first + timedelta(days=i)
        bottom = float(CHART_HEIGHT)
        segments = []
        for system, colour, _total in legend:
            n = by_day.get(day, {}).get(system, 0)
            if not n:
                continue
            # A day with a single request still shows as a sliver.
            height = max(1.0, round(n / peak * CHART_HEIGHT, 2))
            bottom -= height
            segments.append(Segment(system, colour, n, round(bottom, 2), height))
        bars.append(Bar(day, i * (BAR_WIDTH + BAR_GAP), totals[i], tuple(segments)))
    return Chart(tuple(bars), tuple(legend), sum(totals), peak)


# --- reading -------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyView:
    info: KeyInfo
    state: str
    age_days: int
    chart: Chart | None


def _now(ctx: Ctx) -> datetime:
    return ctx.rt.services.keys.clock()


def _usage(ctx: Ctx) -> UsageQueries:
    return UsageQueries(ctx.rt.services.db, ctx.rt.services.keys.clock)


def _view(info: KeyInfo, usage: UsageQueries, now: datetime) -> KeyView:
    chart = None
    if not info.deleted:
        chart = build_chart(usage.daily_by_system(info.id, CHART_DAYS), now.date())
    return KeyView(info, info.state(now), int(info.age_days(now)), chart)


def _seen_marker(info: KeyInfo) -> str:
    """What a replacing form saw of its key: a second submission of the same form
    (a reload, a double click) finds it changed and creates nothing."""
    return info.retiring_since.isoformat() if info.retiring_since else "current"


@page("GET", "/admin/keys", Permission.KEYS_READ, name="keys")
def keys(ctx: Ctx) -> Response:
    service, usage, now = ctx.rt.services.keys, _usage(ctx), _now(ctx)
    everything = service.list(include_deleted=True)
    live = [_view(k, usage, now) for k in everything if not k.deleted]
    live.sort(key=lambda v: (not v.info.primary, v.info.retiring_since is not None))
    tombstones = sorted(
        (k for k in everything if k.deleted),
        key=lambda k: k.deleted_at or k.created_at,
        reverse=True,
    )
    primary = next((v.info for v in live if v.info.primary), None)
    return ctx.render(
        "admin_keys.html",
        title="Key Management",
        keys=live,
        tombstones=tombstones,
        primary=primary,
        max_age=ctx.rt.services.settings.key_max_age_days,
    )


# --- creating ------------------------------------------------------------------------


def _secret_page(ctx: Ctx, created: CreatedKey, heading: str) -> Response:
    response = ctx.render(
        "admin_keys_secret.html",
        title=heading,
        heading=heading,
        created=created,
        after=f"/admin/keys/{created.info.id}",
    )
    # Said here as well as in every page's headers: this page must never be stored.
    response.headers["Cache-Control"] = "no-store"
    return response


def _blank_form() -> dict[str, object]:
    return {
        "name": "",
        "scopes": set(),
        "collections": "",
        "expires_at": "",
        "ip_ranges": "",
        "origins": "",
        "rate_limit": "",
        "primary": False,
    }


def _new_page(ctx: Ctx, form: dict[str, object], errors: Errors) -> Response:
    return ctx.render(
        "admin_keys_new.html",
        400 if errors else 200,
        title="New client key",
        form=form,
        errors=errors,
        scopes=[(s.value, SCOPE_HELP[s]) for s in Scope],
        has_primary=ctx.rt.services.keys.primary() is not None,
    )


def _whole(text: str) -> int | None:
    """A whole number typed in ASCII digits (``str.isdigit`` also accepts "²")."""
    return int(text) if _WHOLE.fullmatch(text) else None


def _items(text: str) -> list[str]:
    return [v for v in _LIST_SPLIT.split(text.strip()) if v]


def _restrictions(form: dict[str, object], now: datetime) -> Restrictions:
    """The restriction fields as typed; InvalidInput names the service's field."""
    rate_text = str(form["rate_limit"])
    rate = _whole(rate_text)
    if rate_text and rate is None:
        raise InvalidInput(
            "the rate limit is a whole number of requests per minute", field="rateLimitPerMinute"
        )
    collections = _items(str(form["collections"]))
    restrictions = Restrictions.build(
        collections=collections or None,
        expires_at=str(form["expires_at"]) or None,
        ip_ranges=_items(str(form["ip_ranges"])),
        origins=_items(str(form["origins"])),
        rate_limit_per_minute=rate,
    )
    if restrictions.expires_at is not None and restrictions.expires_at <= now:
        raise InvalidInput("the expiry must be in the future (UTC)", field="expiresAt")
    return restrictions


@page("GET", "/admin/keys/new", Permission.KEYS_MANAGE, name="key_new")
def new_key(ctx: Ctx) -> Response:
    return _new_page(ctx, _blank_form(), {})


@page("POST", "/admin/keys", Permission.KEYS_MANAGE, name="key_create")
def create_key(ctx: Ctx) -> Response:
    form = {name: ctx.field(name).strip() for name in _blank_form() if name != "scopes"}
    chosen = set(ctx.fields("scope"))
    form_values: dict[str, object] = {**form, "scopes": chosen, "primary": bool(form["primary"])}
    known = {s.value for s in Scope}
    if not chosen or not chosen <= known:
        message = (
            "Choose at least one scope: the narrowest set the system using this key needs"
            if not chosen
            else f"Unknown scope {sorted(chosen - known)[0]!r}"
        )
        return _new_page(ctx, form_values, {"scopes": message})
    try:
        created = ctx.rt.services.keys.create(
            ctx.me.actor,
            form["name"],
            frozenset(Scope(s) for s in chosen),
            _restrictions(form_values, _now(ctx)),
            primary=bool(form["primary"]),
        )
    except SearchgateError as exc:
        return _new_page(ctx, form_values, errors_of(exc, KEY_FIELDS, "name", ctx.reauth_error))
    return _secret_page(ctx, created, "Key created")


def _stale(ctx: Ctx) -> Response:
    return ctx.error_page(
        409,
        "Nothing was created",
        "The key was replaced since that page was shown (was the form sent twice, by a "
        "reload or a double click?). No new key was made. Check Key Management.",
    )


@page("POST", "/admin/keys/new-primary", Permission.KEYS_MANAGE, name="key_new_primary")
def new_primary(ctx: Ctx) -> Response:
    service = ctx.rt.services.keys
    current = service.primary()
    if current is None or ctx.field("replaces") != current.id:
        return _stale(ctx)
    created = service.new_primary(ctx.me.actor)
    return _secret_page(ctx, created, "New primary key")


# --- one key -------------------------------------------------------------------------


def _detail_page(
    ctx: Ctx, info: KeyInfo, errors: Errors, form: dict[str, str] | None = None
) -> Response:
    usage, now = _usage(ctx), _now(ctx)
    return ctx.render(
        "admin_keys_detail.html",
        400 if errors else 200,
        title=info.name,
        key=_view(info, usage, now),
        systems=usage.systems(info.id),
        errors=errors,
        form=form or {"hours": str(DEFAULT_ROLL_HOURS), "roll_name": "", "reason": ""},
        seen=_seen_marker(info),
        max_roll_hours=MAX_ROLL_HOURS,
        leak_reason=LEAK_REASON,
        max_age=ctx.rt.services.settings.key_max_age_days,
    )


@page("GET", "/admin/keys/{key_id}", Permission.KEYS_READ, name="key")
def key(ctx: Ctx) -> Response:
    info = ctx.rt.services.keys.get(ctx.param("key_id"), include_deleted=True)
    return _detail_page(ctx, info, {})


@page("POST", "/admin/keys/{key_id}/roll", Permission.KEYS_MANAGE, name="key_roll")
def roll(ctx: Ctx) -> Response:
    service = ctx.rt.services.keys
    info = service.get(ctx.param("key_id"))
    form = {"hours": ctx.field("hours").strip(), "roll_name": ctx.field("roll_name").strip()}
    form["reason"] = ""
    if ctx.field("seen") != _seen_marker(info):
        return _stale(ctx)
    hours = _whole(form["hours"])
    if hours is None or hours > MAX_ROLL_HOURS:
        message = f"Enter whole hours from 0 to {MAX_ROLL_HOURS} ({MAX_ROLL_DELAY.days} days)"
        return _detail_page(ctx, info, {"hours": message}, form)
    try:
        created = service.roll(
            ctx.me.actor, info.id, timedelta(hours=hours), form["roll_name"] or None
        )
    except SearchgateError as exc:
        fields = {"expiresInSeconds": "hours", "name": "roll_name"}
        return _detail_page(ctx, info, errors_of(exc, fields, "hours", ctx.reauth_error), form)
    return _secret_page(ctx, created, "Key rolled")


def _change(ctx: Ctx, verb: str) -> Response:
    """One button, one service call; the outcome is a flash message on the key's page."""
    service = ctx.rt.services.keys
    info = service.get(ctx.param("key_id"))
    actor = ctx.me.actor
    reason = ctx.field("reason").strip()
    try:
        if verb == "disable":
            service.disable(actor, info.id, reason or None)
            message = f"Key {info.name} is disabled: every server refuses it within seconds."
        elif verb == "enable":
            service.enable(actor, info.id)
            message = f"Key {info.name} works again."
        else:
            service.make_primary(actor, info.id)
            message = f"Key {info.name} is the primary key now."
    except SearchgateError as exc:
        errors = errors_of(exc, {"reason": "reason"}, "actions", ctx.reauth_error, "actions")
        form = {"hours": str(DEFAULT_ROLL_HOURS), "roll_name": "", "reason": reason}
        return _detail_page(ctx, info, errors, form)
    return ctx.redirect(f"/admin/keys/{info.id}", message)


@page("POST", "/admin/keys/{key_id}/disable", Permission.KEYS_MANAGE, name="key_disable")
def disable(ctx: Ctx) -> Response:
    return _change(ctx, "disable")


@page("POST", "/admin/keys/{key_id}/enable", Permission.KEYS_MANAGE, name="key_enable")
def enable(ctx: Ctx) -> Response:
    return _change(ctx, "enable")


@page("POST", "/admin/keys/{key_id}/primary", Permission.KEYS_MANAGE, name="key_make_primary")
def make_primary(ctx: Ctx) -> Response:
    return _change(ctx, "primary")


# --- deleting ------------------------------------------------------------------------


def _reauth_first(ctx: Ctx, info: KeyInfo) -> Response:
    target = f"/admin/keys/{info.id}/delete"
    return ctx.redirect(
        "/reauth?next=" + quote(target, safe="/"),
        "Deleting a key cannot be undone: confirm it is you first.",
    )


def _delete_page(
    ctx: Ctx, info: KeyInfo, errors: Errors, typed: str = "", force: bool = False
) -> Response:
    service, now = ctx.rt.services.keys, _now(ctx)
    quiet = service.delete_quiet
    recent = _usage(ctx).systems(info.id, since=now - quiet)
    # The service decides whether the key is in use; the usage tables name every
    # system behind that, where the key row knows only the last one.
    in_use = service.in_use(info)
    if in_use:
        in_use = list(dict.fromkeys([u.system for u in recent] + in_use))
    others = [k for k in service.list() if k.id != info.id]
    return ctx.render(
        "admin_keys_delete.html",
        400 if errors else 200,
        title=f"Delete {info.name}",
        key=info,
        state=info.state(now),
        in_use=in_use,
        recent_systems=recent,
        quiet_minutes=int(quiet.total_seconds() // 60),
        blocked=info.primary and bool(others),
        errors=errors,
        typed=typed,
        force=force,
    )


@page("GET", "/admin/keys/{key_id}/delete", Permission.KEYS_MANAGE, name="key_delete")
def delete_form(ctx: Ctx) -> Response:
    info = ctx.rt.services.keys.get(ctx.param("key_id"))
    if not ctx.me.actor.reauthenticated_within(ctx.rt.services.audit.reauth_window):
        return _reauth_first(ctx, info)
    return _delete_page(ctx, info, {})


@page("POST", "/admin/keys/{key_id}/delete", Permission.KEYS_MANAGE, name="key_delete_post")
def delete(ctx: Ctx) -> Response:
    service = ctx.rt.services.keys
    info = service.get(ctx.param("key_id"))
    typed = ctx.field("confirm_name").strip()
    force = ctx.field("force") == "yes"
    try:
        deleted = service.delete(ctx.me.actor, info.id, typed, force=force)
    except ReauthenticationRequired as exc:
        if ctx.reauth_error:  # a wrong password typed on this page: say so there
            return _delete_page(ctx, info, errors_of(exc, {}, "", ctx.reauth_error), typed)
        return _reauth_first(ctx, info)
    except KeyInUse as exc:
        return _delete_page(ctx, info, {"force": errors_of(exc, {}, "force")["force"]}, typed)
    except SearchgateError as exc:
        errors = errors_of(exc, {"confirmName": "confirm_name"}, "delete", ctx.reauth_error)
        return _delete_page(ctx, info, errors, typed, force)
    return ctx.redirect(
        "/admin/keys",
        f"Key {deleted.name} was deleted: it never authenticates again. Its tombstone "
        "stays under Deleted keys for the change log.",
    )


# --- the dashboard's notices ----------------------------------------------------------


@dataclass(frozen=True)
class KeyNotices:
    max_age: int
    too_old: tuple[tuple[KeyInfo, int], ...]  # (key, age in days)
    ageing: tuple[tuple[KeyInfo, int], ...]  # (key, days until it is too old)
    leaked: tuple[KeyInfo, ...]

    def __bool__(self) -> bool:
        return bool(self.too_old or self.ageing or self.leaked)


def key_notices(ctx: Ctx) -> KeyNotices | None:
    """Keys to rotate (older than the maximum age, or within AGE_WARNING_DAYS of it)
    and keys disabled by a leak report; None for people who may not see keys."""
    if not ctx.can(Permission.KEYS_READ):
        return None
    max_age = ctx.rt.services.settings.key_max_age_days
    now = _now(ctx)
    too_old: list[tuple[KeyInfo, int]] = []
    ageing: list[tuple[KeyInfo, int]] = []
    leaked: list[KeyInfo] = []
    for info in ctx.rt.services.keys.list():
        if info.disabled_reason == LEAK_REASON:
            leaked.append(info)
        if info.state(now) != "active":
            continue
        age = info.age_days(now)
        if age >= max_age:
            too_old.append((info, int(age)))
        elif age >= max_age - AGE_WARNING_DAYS:
            ageing.append((info, math.ceil(max_age - age)))
    return KeyNotices(max_age, tuple(too_old), tuple(ageing), tuple(leaked))
