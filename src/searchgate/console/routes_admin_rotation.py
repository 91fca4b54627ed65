"""The rotation wizard: the six steps of a client-key rotation, run in this server
through the in-process backend, against the secret store the server is configured with
(``SEARCHGATE_ROTATION_STORE_KIND`` and ``_PATH``).

Starting, continuing and aborting need a recent re-authentication; the run then goes on
in a background thread (``searchgate.rotation.jobs``, held by the runtime), and the
page follows it by polling a fragment every two seconds. The new key's secret goes
from the key service straight to the store: no page, URL, flash message or log ever
holds it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from searchgate.console.auth import recently_reauthenticated
from searchgate.console.forms import Errors, errors_of
from searchgate.console.rotation_view import (
    Check,
    StoreState,
    configured_store,
    drain_left,
    preconditions,
    step_rows,
    system_rows,
)
from searchgate.console.web import Ctx, PageRoutes
from searchgate.durations import format_duration, parse_duration
from searchgate.errors import Conflict, ReauthenticationRequired, SearchgateError
from searchgate.permissions import Permission
from searchgate.rotation.common import UNFINISHED, Timing
from searchgate.rotation.jobs import (
    LEASE_SECONDS,
    POLL_SECONDS,
    JobMode,
    PersonBackend,
    RotationJobs,
)
from searchgate.rotation.runner import RunOptions
from searchgate.rotation.service import Overview, RotationInfo, RotationService
from searchgate.rotation.store_repair import restore_stored_primary, write_primary_to_store
from searchgate.secretstores import SecretStore

routes = PageRoutes()

PAGE = "/admin/rotation"
POLL = "2s"

# The waits of a rotation as the start form takes them: (default, shortest, longest).
# Zero quiet or probation is allowed (a test set-up, a store no system reads yet); the
# move timeout leaves systems at least a few refreshes of the key.
WAITS: dict[str, tuple[str, timedelta, timedelta]] = {
    "quiet": ("15m", timedelta(0), timedelta(hours=24)),
    "probation": ("5m", timedelta(0), timedelta(hours=24)),
    "move_timeout": ("30m", timedelta(seconds=10), timedelta(hours=24)),
}
WAIT_LABELS = {"quiet": "quiet period", "probation": "probation", "move_timeout": "move timeout"}
NO_STORE = "No secret store is configured for this server (see above)."

# --- reading the state ----------------------------------------------------------------


def _jobs(ctx: Ctx) -> RotationJobs:
    return ctx.rt.rotation_jobs


def _rotations(ctx: Ctx) -> RotationService:
    return ctx.rt.services.rotations


def _store(ctx: Ctx) -> StoreState:
    return configured_store(ctx.rt.services.settings)


def _wizard(ctx: Ctx) -> dict[str, Any]:
    """Everything the live part of the page shows, read afresh on every poll. It holds
    buttons but no input field: a poll replaces it while someone may be typing."""
    rotations, actor = _rotations(ctx), ctx.me.actor
    # The run first: once it has ended, all it changed is committed, so the state read
    # next agrees with it (read the other way round, a run ending in between would show
    # as ended on a rotation that looks unfinished).
    job = _jobs(ctx).view()
    overview = rotations.overview(actor)
    rot = overview.rotation
    if rot is None and job is not None and job.rotation_id:
        rot = rotations.get(actor, job.rotation_id)
    now = ctx.rt.services.keys.clock()
    unfinished = rot is not None and rot.status in UNFINISHED
    running_here = job is not None and job.active
    # A run holds the rotation while its lease is fresh: one elsewhere (the CLI, another
    # server process), or the run of this process that just stopped.
    held = (
        unfinished
        and rot is not None
        and rot.lease_expires_at is not None
        and rot.lease_expires_at > now
    )
    traffic = rotations.traffic(actor, rot.id) if rot is not None else None
    abortable = (
        unfinished
        and rot is not None
        and rot.step < 5
        and not (rot.old_key is not None and rot.old_key.deleted)
        and not (
            running_here and job is not None and (job.abort_requested or job.mode is JobMode.ABORT)
        )
    )
    return {
        "rot": rot,
        "overview": overview,
        "job": job,
        "running_here": running_here,
        "unfinished": unfinished,
        "live": running_here or held,
        "held": held and not running_here,
        # While a run holds it, continuing would only wait for that run's lease: the
        # button comes with the poll that finds the lease lapsed.
        "can_continue": unfinished and not running_here and not held,
        "abortable": abortable,
        "steps": step_rows(rot, running_here),
        "systems": system_rows(traffic) if traffic is not None else [],
        "drain": drain_left(rot, traffic) if rot is not None and traffic is not None else None,
        "lease_left": (
            format_duration(rot.lease_expires_at - now)
            if held and rot is not None and rot.lease_expires_at is not None
            else None
        ),
        "format_duration": format_duration,
        "poll": POLL,
        "fragment": False,
    }


def _checks(ctx: Ctx, store: SecretStore, overview: Overview) -> list[Check]:
    keys = ctx.rt.services.keys
    return preconditions(keys, ctx.me.actor, store, overview, keys.clock())


def _page(
    ctx: Ctx,
    form: dict[str, str] | None = None,
    errors: Errors | None = None,
    status: int | None = None,
) -> Response:
    errors = errors or {}
    store = _store(ctx)
    values = _wizard(ctx)
    checks: list[Check] = []
    show_start = not values["unfinished"] and not values["running_here"]
    if show_start and store.store is not None:
        checks = _checks(ctx, store.store, values["overview"])
    return ctx.render(
        "admin_rotation.html",
        status or (400 if errors else 200),
        title="Rotate the client key",
        store=store,
        checks=checks,
        ready=bool(checks) and all(c.ok for c in checks),
        show_start=show_start,
        form=form or {name: default for name, (default, _, _) in WAITS.items()},
        limits={
            name: (format_duration(low), format_duration(high))
            for name, (_, low, high) in WAITS.items()
        },
        errors=errors,
        **values,
    )


@routes.page("GET", PAGE, Permission.KEYS_MANAGE, name="rotation")
def rotation(ctx: Ctx) -> Response:
    return _page(ctx)


@routes.page("GET", PAGE + "/progress", Permission.KEYS_MANAGE, name="rotation_progress")
def progress(ctx: Ctx) -> Response:
    return ctx.render("admin_rotation_live.html", **{**_wizard(ctx), "fragment": True})


# --- changing it ----------------------------------------------------------------------


def _reauth_first(ctx: Ctx, back: str = PAGE) -> Response:
    return ctx.redirect(
        "/reauth?next=" + quote(back, safe="/"),
        "Key rotation changes the client key: confirm it is you first.",
    )


def _confirmed(ctx: Ctx) -> bool:
    return recently_reauthenticated(ctx)


def _timing(form: dict[str, str]) -> tuple[Timing | None, Errors]:
    errors: Errors = {}
    values: dict[str, timedelta] = {}
    for name, (_, low, high) in WAITS.items():
        try:
            value = parse_duration(form[name], name)
        except SearchgateError as exc:
            errors[name] = exc.message[:1].upper() + exc.message[1:]
            continue
        if not low <= value <= high:
            errors[name] = (
                f"The {WAIT_LABELS[name]} is {format_duration(low)} to {format_duration(high)}"
            )
            continue
        values[name] = value
    if errors:
        return None, errors
    return Timing(**values), {}


def _options(timing: Timing) -> RunOptions:
    # A click on "start" asks for a new rotation even when the last one finished.
    return RunOptions(
        timing=timing, new=True, lease_seconds=LEASE_SECONDS, poll_seconds=POLL_SECONDS
    )


def _backend(ctx: Ctx) -> PersonBackend:
    return PersonBackend(ctx.rt.services, ctx.rt.search, ctx.me.actor)


def _refused(ctx: Ctx, message: str, form: dict[str, str] | None = None) -> Response:
    return _page(ctx, form, {"action": message}, 409)


def _same_store(rot: RotationInfo, store: SecretStore) -> str | None:
    if (rot.store_kind, rot.store_location) == (store.kind, store.location):
        return None
    return (
        f"Rotation {rot.id} writes to {rot.store_location}, but this server is configured "
        f"with {store.location}: finish or abort it with `searchgate rotate --store "
        f"{rot.store_kind} --path …` (add --abort to roll it back), or configure that store"
    )


@routes.page("POST", PAGE + "/start", Permission.KEYS_MANAGE, name="rotation_start")
def start(ctx: Ctx) -> Response:
    form = {name: ctx.field(name).strip() for name in WAITS}
    if not _confirmed(ctx):
        if ctx.reauth_error:
            return _page(ctx, form, {"reauth": ctx.reauth_error})
        return _reauth_first(ctx)
    timing, errors = _timing(form)
    if timing is None:
        return _page(ctx, form, errors)
    store = _store(ctx)
    if store.store is None:
        return _refused(ctx, store.problem or NO_STORE, form)
    overview = _rotations(ctx).overview(ctx.me.actor)
    failed = [c for c in _checks(ctx, store.store, overview) if not c.ok]
    if failed:
        return _refused(
            ctx,
            "Nothing was started: " + "; ".join(f"{c.label.lower()}: {c.detail}" for c in failed),
            form,
        )
    try:
        _jobs(ctx).launch(JobMode.RUN, ctx.me.actor, _backend(ctx), store.store, _options(timing))
    except Conflict as exc:
        return _refused(ctx, exc.message, form)
    return ctx.redirect(
        PAGE,
        "Rotation started. It runs in the server: this page follows it, and you may leave it.",
    )


@routes.page("POST", PAGE + "/continue", Permission.KEYS_MANAGE, name="rotation_continue")
def resume(ctx: Ctx) -> Response:
    # The button has no password field of its own: confirming is the /reauth page's.
    if not _confirmed(ctx):
        return _reauth_first(ctx)
    rot = _rotations(ctx).overview(ctx.me.actor).rotation
    store = _store(ctx)
    if rot is None:
        return _refused(ctx, "No rotation is unfinished: there is nothing to continue.")
    if store.store is None:
        return _refused(ctx, store.problem or NO_STORE)
    other = _same_store(rot, store.store)
    if other:
        return _refused(ctx, other)
    try:
        _jobs(ctx).launch(
            JobMode.RUN, ctx.me.actor, _backend(ctx), store.store, _options(rot.timing)
        )
    except Conflict as exc:
        return _refused(ctx, exc.message)
    return ctx.redirect(PAGE, f"Continuing rotation {rot.id} after step {rot.step}.")


@routes.page("POST", PAGE + "/store/write", Permission.KEYS_MANAGE, name="rotation_store_write")
def store_write(ctx: Ctx) -> Response:
    """The primary key (pasted: its secret was shown once) written to the store."""
    store = _store(ctx)
    if store.store is None:
        return _refused(ctx, store.problem or NO_STORE)
    try:
        done = write_primary_to_store(
            _rotations(ctx), ctx.me.actor, store.store, ctx.field("secret")
        )
    except ReauthenticationRequired as exc:
        return _page(ctx, errors=errors_of(exc, {}, "reauth", ctx.reauth_error))
    except SearchgateError as exc:
        return _page(ctx, errors=errors_of(exc, {"secret": "secret"}, "secret"))
    return ctx.redirect(
        PAGE,
        f"The store holds the primary key {done.key_name} now (version {done.version_after}).",
    )


@routes.page(
    "POST", PAGE + "/store/make-primary", Permission.KEYS_MANAGE, name="rotation_store_primary"
)
def store_primary(ctx: Ctx) -> Response:
    """The key the store holds made the primary key again. Without a recent proof the
    pipeline sends the person to confirm it is them, then back to this page."""
    store = _store(ctx)
    if store.store is None:
        return _refused(ctx, store.problem or NO_STORE)
    try:
        name = restore_stored_primary(
            _rotations(ctx), ctx.me.actor, store.store, ctx.field("key_id")
        )
    except ReauthenticationRequired:
        raise
    except SearchgateError as exc:
        return _refused(ctx, exc.message[:1].upper() + exc.message[1:])
    return ctx.redirect(
        PAGE,
        f"{name} is the primary key again, as in the store. The key made by hand keeps "
        "working and is marked to retire: delete it in Key Management once nothing uses it.",
    )


@routes.page("GET", PAGE + "/abort", Permission.KEYS_MANAGE, name="rotation_abort_form")
def abort_form(ctx: Ctx) -> Response:
    return _abort_page(ctx, {}, "")


def _abort_page(ctx: Ctx, errors: Errors, reason: str, status: int | None = None) -> Response:
    values = _wizard(ctx)
    return ctx.render(
        "admin_rotation_abort.html",
        status or (400 if errors else 200),
        title="Abort the rotation",
        errors=errors,
        reason=reason,
        **values,
    )


@routes.page("POST", PAGE + "/abort", Permission.KEYS_MANAGE, name="rotation_abort")
def abort(ctx: Ctx) -> Response:
    reason = ctx.field("reason").strip()[:200]
    if not _confirmed(ctx):
        if ctx.reauth_error:
            return _abort_page(ctx, {"reauth": ctx.reauth_error}, reason)
        return _reauth_first(ctx, PAGE + "/abort")
    rot = _rotations(ctx).overview(ctx.me.actor).rotation
    if rot is None:
        nothing = "No rotation is unfinished: there is nothing to abort."
        return _abort_page(ctx, {"abort": nothing}, reason, 409)
    if rot.step >= 5 or (rot.old_key is not None and rot.old_key.deleted):
        message = (
            f"Rotation {rot.id} deleted the old key: it can no longer be rolled back. The new "
            "key is in the store and works; continue the rotation to finish it."
        )
        return _abort_page(ctx, {"abort": message}, reason, 409)
    jobs = _jobs(ctx)
    why = reason or f"aborted in the console by {ctx.me.actor.label}"
    if jobs.request_abort(why):
        return ctx.redirect(PAGE, "Aborting: the run stops at its next pause and rolls back.")
    store = _store(ctx)
    if store.store is None:
        problem = store.problem or NO_STORE
        return _abort_page(ctx, {"abort": problem}, reason, 409)
    other = _same_store(rot, store.store)
    if other:
        return _abort_page(ctx, {"abort": other}, reason, 409)
    try:
        jobs.launch(
            JobMode.ABORT, ctx.me.actor, _backend(ctx), store.store, _options(rot.timing), why
        )
    except Conflict as exc:
        return _abort_page(ctx, {"abort": exc.message}, reason, 409)
    return ctx.redirect(PAGE, f"Aborting rotation {rot.id}: rolling back.")
