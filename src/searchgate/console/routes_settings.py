"""Security settings in force. They come from the server's configuration (environment
variables ``SEARCHGATE_*``), so that a stolen session cannot switch MFA off: the page
shows each value and the variable that sets it."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response

from searchgate.console.web import Ctx, PageRoutes
from searchgate.permissions import Permission

routes = PageRoutes()


@dataclass(frozen=True)
class SettingRow:
    group: str
    label: str
    value: str
    variable: str
    help: str


def _minutes(value: float) -> str:
    return f"{value:g} min"


@routes.page("GET", "/admin/settings", Permission.SETTINGS_MANAGE, name="settings")
def settings(ctx: Ctx) -> Response:
    s = ctx.rt.services.settings
    throttle = ctx.rt.services.auth.throttle.policy
    yes_no = {True: "on", False: "off"}
    rows = [
        SettingRow(
            "Two-factor authentication",
            "Required for admins",
            yes_no[s.mfa_required_for_admins],
            "SEARCHGATE_MFA_REQUIRED_FOR_ADMINS",
            "Anyone holding an admin:* permission must enrol before doing anything else.",
        ),
        SettingRow(
            "Two-factor authentication",
            "Required for everyone",
            yes_no[s.mfa_required_for_all],
            "SEARCHGATE_MFA_REQUIRED_FOR_ALL",
            "Every person must enrol at their next sign-in.",
        ),
        SettingRow(
            "Sessions",
            "Idle timeout",
            _minutes(s.session_idle_minutes),
            "SEARCHGATE_SESSION_IDLE_MINUTES",
            "A session ends after this long without a request.",
        ),
        SettingRow(
            "Sessions",
            "Absolute timeout",
            f"{s.session_absolute_hours:g} h",
            "SEARCHGATE_SESSION_ABSOLUTE_HOURS",
            "A session ends this long after sign-in, active or not.",
        ),
        SettingRow(
            "Sessions",
            "Re-authentication window",
            _minutes(s.reauth_window_minutes),
            "SEARCHGATE_REAUTH_WINDOW_MINUTES",
            "Sensitive changes need the password or a code again after this long.",
        ),
        SettingRow(
            "People",
            "Recommended maximum of admins",
            str(s.max_admins),
            "SEARCHGATE_MAX_ADMINS",
            "The Users page warns above this number.",
        ),
        SettingRow(
            "People",
            "Longest personal token lifetime",
            f"{s.token_max_days} days",
            "SEARCHGATE_TOKEN_MAX_DAYS",
            "Tokens expire at the latest after this long.",
        ),
        SettingRow(
            "Passwords",
            "argon2id memory",
            f"{s.password_memory_kib // 1024} MiB",
            "SEARCHGATE_PASSWORD_MEMORY_KIB",
            "Never below the OWASP minimum of 19 MiB.",
        ),
        SettingRow(
            "Passwords",
            "argon2id iterations",
            str(s.password_iterations),
            "SEARCHGATE_PASSWORD_ITERATIONS",
            "Stored hashes are upgraded at the next sign-in.",
        ),
    ]
    groups: dict[str, list[SettingRow]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    return ctx.render("settings.html", title="Settings", groups=groups, throttle=throttle)
