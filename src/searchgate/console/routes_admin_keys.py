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
from datetime import datetime, timedelta
from urllib.parse import quote

from starlette.responses import Response

from searchgate.console.forms import Errors, errors_of
from searchgate.console.key_chart import CHART_DAYS, Chart, build_chart
from searchgate.console.web import Ctx, PageRoutes
from searchgate.errors import InvalidInput, ReauthenticationRequired, SearchgateError
from searchgate.keys.info import CreatedKey, KeyInfo, KeyState
from searchgate.keys.restrictions import Restrictions
from searchgate.keys.scopes import SCOPE_HELP, Scope
from searchgate.keys.service import MAX_ROLL_DELAY, KeyInUse
from searchgate.keys.usage import UsageQueries
from searchgate.params import SQL_INT_MAX, whole_number
from searchgate.permissions import Permission

routes = PageRoutes()

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
    return ctx.rt.services.usage


def _view(info: KeyInfo, usage: UsageQueries, now: datetime) -> KeyView:
    chart = None
    if not info.deleted:
        chart = build_chart(usage.daily_by_system(info.id, CHART_DAYS), now.date())
    return KeyView(info, info.state(now), int(info.age_days(now)), chart)


def _seen_marker(info: KeyInfo) -> str:
    """What a replacing form saw of its key: a second submission of the same form
    (a reload, a double click) finds it changed and creates nothing."""
    return info.retiring_since.isoformat() if info.retiring_since else "current"


@routes.page("GET", "/admin/keys", Permission.KEYS_READ, name="keys")
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
        "collections": set(),
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
        # Picked from the collections that exist: a mistyped name would find nothing.
        known_collections=sorted(ctx.rt.services.catalog.collection_names()),
        has_primary=ctx.rt.services.keys.primary() is not None,
    )


def _whole(text: str) -> int | None:
    """A whole number typed in ASCII digits, or None: the form's own message says what
    it expects."""
    try:
        return whole_number(text, "number", low=0, high=SQL_INT_MAX)
    except InvalidInput:
        return None


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
    chosen = form["collections"]
    collections = sorted(chosen) if isinstance(chosen, set) else []
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


@routes.page("GET", "/admin/keys/new", Permission.KEYS_MANAGE, name="key_new")
def new_key(ctx: Ctx) -> Response:
    return _new_page(ctx, _blank_form(), {})


@routes.page("POST", "/admin/keys", Permission.KEYS_MANAGE, name="key_create")
def create_key(ctx: Ctx) -> Response:
    lists = ("scopes", "collections")
    form = {name: ctx.field(name).strip() for name in _blank_form() if name not in lists}
    chosen = set(ctx.fields("scope"))
    form_values: dict[str, object] = {
        **form,
        "scopes": chosen,
        "collections": {c.strip() for c in ctx.fields("collection") if c.strip()},
        "primary": bool(form["primary"]),
    }
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


def _confirm_page(ctx: Ctx, kind: str, info: KeyInfo, errors: Errors, **values: object) -> Response:
    """What a new primary key or a roll will do, confirmed with a button (and the
    password or a code when the last proof is older than the re-authentication window)."""
    now = _now(ctx)
    quiet = ctx.rt.services.keys.delete_quiet
    return ctx.render(
        "admin_keys_confirm.html",
        400 if errors else 200,
        title=("Create a new primary key" if kind == "new-primary" else f"Roll {info.name}"),
        kind=kind,
        key=info,
        live=bool(info.last_used_at and info.last_used_at >= now - quiet),
        quiet_minutes=int(quiet.total_seconds() // 60),
        errors=errors,
        seen=_seen_marker(info),
        **values,
    )


@routes.page("GET", "/admin/keys/new-primary", Permission.KEYS_MANAGE, name="key_new_primary_form")
def new_primary_form(ctx: Ctx) -> Response:
    current = ctx.rt.services.keys.primary()
    if current is None:
        return ctx.redirect("/admin/keys/new", "There is no key yet: create the first one.")
    return _confirm_page(ctx, "new-primary", current, {})


@routes.page("POST", "/admin/keys/new-primary", Permission.KEYS_MANAGE, name="key_new_primary")
def new_primary(ctx: Ctx) -> Response:
    service = ctx.rt.services.keys
    current = service.primary()
    if current is None or ctx.field("replaces") != current.id:
        return _stale(ctx)
    try:
        created = service.new_primary(ctx.me.actor)
    except ReauthenticationRequired as exc:
        errors = errors_of(exc, {}, "reauth", ctx.reauth_error)
        return _confirm_page(ctx, "new-primary", current, errors)
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
        form={**_blank_detail_form(info), **(form or {})},
        seen=_seen_marker(info),
        max_roll_hours=MAX_ROLL_HOURS,
        leak_reason=LEAK_REASON,
        max_age=ctx.rt.services.settings.key_max_age_days,
    )


def _blank_detail_form(info: KeyInfo) -> dict[str, str]:
    at = info.restrictions.expires_at
    return {
        "hours": str(DEFAULT_ROLL_HOURS),
        "roll_name": "",
        "reason": "",
        # As a datetime-local field shows it (UTC, to the minute).
        "expires_at": at.strftime("%Y-%m-%dT%H:%M") if at else "",
    }


@routes.page("GET", "/admin/keys/{key_id}", Permission.KEYS_READ, name="key")
def key(ctx: Ctx) -> Response:
    info = ctx.rt.services.keys.get(ctx.param("key_id"), include_deleted=True)
    return _detail_page(ctx, info, {})


def _roll_hours(form: dict[str, str]) -> tuple[int | None, Errors]:
    hours = _whole(form["hours"])
    if hours is None or hours > MAX_ROLL_HOURS:
        message = f"Enter whole hours from 0 to {MAX_ROLL_HOURS} ({MAX_ROLL_DELAY.days} days)"
        return None, {"hours": message}
    return hours, {}


def _roll_confirm(ctx: Ctx, info: KeyInfo, hours: int, name: str, errors: Errors) -> Response:
    at = _now(ctx) + timedelta(hours=hours)
    current = info.restrictions.expires_at
    return _confirm_page(
        ctx,
        "roll",
        info,
        errors,
        hours=hours,
        roll_name=name,
        stops_at=current if current is not None and current < at else at,
    )


@routes.page("GET", "/admin/keys/{key_id}/roll", Permission.KEYS_MANAGE, name="key_roll_form")
def roll_form(ctx: Ctx) -> Response:
    info = ctx.rt.services.keys.get(ctx.param("key_id"))
    form = {"hours": ctx.query("hours").strip(), "roll_name": ctx.query("roll_name").strip()}
    hours, errors = _roll_hours(form)
    if hours is None:
        return _detail_page(ctx, info, errors, form)
    return _roll_confirm(ctx, info, hours, form["roll_name"], {})


@routes.page("POST", "/admin/keys/{key_id}/roll", Permission.KEYS_MANAGE, name="key_roll")
def roll(ctx: Ctx) -> Response:
    service = ctx.rt.services.keys
    info = service.get(ctx.param("key_id"))
    form = {"hours": ctx.field("hours").strip(), "roll_name": ctx.field("roll_name").strip()}
    if ctx.field("seen") != _seen_marker(info):
        return _stale(ctx)
    hours, errors = _roll_hours(form)
    if hours is None:
        return _detail_page(ctx, info, errors, form)
    try:
        created = service.roll(
            ctx.me.actor, info.id, timedelta(hours=hours), form["roll_name"] or None
        )
    except ReauthenticationRequired as exc:
        errors = errors_of(exc, {}, "reauth", ctx.reauth_error)
        return _roll_confirm(ctx, info, hours, form["roll_name"], errors)
    except SearchgateError as exc:
        fields = {"expiresInSeconds": "hours", "name": "roll_name"}
        return _detail_page(ctx, info, errors_of(exc, fields, "hours", ctx.reauth_error), form)
    return _secret_page(ctx, created, "Key rolled")


@routes.page("POST", "/admin/keys/{key_id}/expiry", Permission.KEYS_MANAGE, name="key_expiry")
def expiry(ctx: Ctx) -> Response:
    """Moves the time a key stops working (a roll set one), or cancels it."""
    service = ctx.rt.services.keys
    info = service.get(ctx.param("key_id"))
    typed = ctx.field("expires_at").strip()
    never = ctx.field("never") == "yes"
    form = {"expires_at": typed}
    try:
        if not never and not typed:
            raise InvalidInput("Enter the new expiry, or choose “Never expire”", field="expiresAt")
        at = None if never else Restrictions.build(expires_at=typed).expires_at
        changed = service.set_expiry(ctx.me.actor, info.id, at)
    except SearchgateError as exc:
        fields = {"expiresAt": "expires_at"}
        return _detail_page(ctx, info, errors_of(exc, fields, "expires_at", ctx.reauth_error), form)
    when = changed.restrictions.expires_at
    said = f"stops working at {when:%Y-%m-%d %H:%M} UTC" if when else "never expires now"
    return ctx.redirect(f"/admin/keys/{info.id}", f"Key {info.name} {said}.")


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
    except ReauthenticationRequired:
        # These buttons have no password field: the confirmation page, then back here.
        raise
    except SearchgateError as exc:
        errors = errors_of(exc, {"reason": "reason"}, "actions", ctx.reauth_error, "actions")
        return _detail_page(ctx, info, errors, {"reason": reason})
    return ctx.redirect(f"/admin/keys/{info.id}", message)


@routes.page("POST", "/admin/keys/{key_id}/disable", Permission.KEYS_MANAGE, name="key_disable")
def disable(ctx: Ctx) -> Response:
    return _change(ctx, "disable")


@routes.page("POST", "/admin/keys/{key_id}/enable", Permission.KEYS_MANAGE, name="key_enable")
def enable(ctx: Ctx) -> Response:
    return _change(ctx, "enable")


@routes.page(
    "POST", "/admin/keys/{key_id}/primary", Permission.KEYS_MANAGE, name="key_make_primary"
)
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


@routes.page("GET", "/admin/keys/{key_id}/delete", Permission.KEYS_MANAGE, name="key_delete")
def delete_form(ctx: Ctx) -> Response:
    info = ctx.rt.services.keys.get(ctx.param("key_id"))
    if not ctx.rt.services.authorizer.reauthenticated(ctx.me.actor):
        return _reauth_first(ctx, info)
    return _delete_page(ctx, info, {})


@routes.page("POST", "/admin/keys/{key_id}/delete", Permission.KEYS_MANAGE, name="key_delete_post")
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
        if info.state(now) is not KeyState.ACTIVE:
            continue
        age = info.age_days(now)
        if age >= max_age:
            too_old.append((info, int(age)))
        elif age >= max_age - AGE_WARNING_DAYS:
            ageing.append((info, math.ceil(max_age - age)))
    return KeyNotices(max_age, tuple(too_old), tuple(ageing), tuple(leaked))
