"""``searchgate users ...``: create the first admin and manage accounts from a shell.

The operator at the CLI holds the database and its secrets, so acts as the system
actor (recorded as ``cli:<os user>`` in the change log). There is never a default
account or password: the password comes from a prompt or from stdin.
"""

from __future__ import annotations

import getpass
import sys
from datetime import timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from searchgate.accounts.invitations import DEFAULT_LIFETIME, invitation_url
from searchgate.cli.common import DataDir, JsonOut, console, emit_json, fail, settings_for
from searchgate.errors import SearchgateError
from searchgate.permissions import Actor
from searchgate.runtime import build_services

DEFAULT_HOURS = int(DEFAULT_LIFETIME.total_seconds() // 3600)

app = typer.Typer(help="Manage Command Center users (there is no default account).")


def cli_actor() -> Actor:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Actor.system(name=f"cli:{who}")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    first = typer.prompt("Password", hide_input=True)
    second = typer.prompt("Repeat the password", hide_input=True)
    if first != second:
        console.print("[red]error:[/red] the two passwords differ")
        raise typer.Exit(2)
    return str(first)


@app.command("create")
def create(
    email: str = typer.Option(..., "--email", help="The person's email address (their login)"),
    role: str = typer.Option(..., "--role", help="admin, merchandiser, viewer or a custom role"),
    name: str | None = typer.Option(None, "--name", help="Display name (default: from email)"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin"
    ),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Create a user; the first admin is created this way."""
    services = build_services(settings_for(data_dir))
    password = _read_password(password_stdin)
    try:
        info = services.users.create(cli_actor(), email, password, role, name)
    except SearchgateError as exc:
        fail(exc, as_json)
        return
    finally:
        services.db.dispose()
    if as_json:
        emit_json(info.to_dict())
        return
    console.print(f"Created {info.email} ({info.id}) with the role {info.role}.")
    if info.is_admin and services.settings.mfa_required_for_admins:
        console.print("They must enrol in MFA at their first sign-in.")


@app.command("list")
def list_users(data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """List users with role, state and MFA enrolment."""
    services = build_services(settings_for(data_dir))
    try:
        infos = services.users.list(cli_actor())
        summary = services.users.admin_summary(cli_actor())
    finally:
        services.db.dispose()
    if as_json:
        emit_json([i.to_dict() for i in infos])
        return
    table = Table("id", "email", "name", "role", "state", "mfa", "last sign-in")
    for i in infos:
        table.add_row(
            i.id,
            i.email,
            i.display_name,
            i.role,
            i.state,
            "yes" if i.mfa_enrolled else "no",
            i.last_sign_in_at.isoformat()[:19] if i.last_sign_in_at else "never",
        )
    Console().print(table)
    note = f"{summary.active_admins} active admin(s)"
    if summary.too_many:
        note += f": more than the {summary.max_admins} configured (SEARCHGATE_MAX_ADMINS)"
    if summary.admins_without_mfa:
        note += f"; {summary.admins_without_mfa} without MFA"
    console.print(note)


def _simple(action: str, user: str, data_dir: Path | None, as_json: bool) -> None:
    services = build_services(settings_for(data_dir))
    actor = cli_actor()
    try:
        if action == "disable":
            info = services.users.disable(actor, user)
        elif action == "enable":
            info = services.users.enable(actor, user)
        else:
            services.users.reset_mfa(actor, user)
            info = services.users.get(actor, user)
    except SearchgateError as exc:
        fail(exc, as_json)
        return
    finally:
        services.db.dispose()
    if as_json:
        emit_json(info.to_dict())
    else:
        console.print(f"{info.email}: {info.state}, MFA {'on' if info.mfa_enrolled else 'off'}")


@app.command("disable")
def disable(
    user: str = typer.Argument(..., help="User id or email"),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Disable a user: their sessions and tokens stop working at once."""
    _simple("disable", user, data_dir, as_json)


@app.command("enable")
def enable(
    user: str = typer.Argument(..., help="User id or email"),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Enable a disabled user (their old tokens stay revoked)."""
    _simple("enable", user, data_dir, as_json)


@app.command("reset-mfa")
def reset_mfa(
    user: str = typer.Argument(..., help="User id or email"),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Remove a user's MFA (lost device and recovery codes); they enrol again."""
    _simple("reset-mfa", user, data_dir, as_json)


@app.command("set-password")
def set_password(
    user: str = typer.Argument(..., help="User id or email"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin"
    ),
    keep: bool = typer.Option(
        False,
        "--keep",
        help="Do not ask for a change at the next sign-in (for one's own account)",
    ),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Set someone's password (a forgotten one): their sessions end, and they must
    change it at their next sign-in unless --keep."""
    services = build_services(settings_for(data_dir))
    password = _read_password(password_stdin)
    actor = cli_actor()
    try:
        services.users.reset_password(actor, user, password, temporary=not keep)
        info = services.users.get(actor, user)
    except SearchgateError as exc:
        fail(exc, as_json)
        return
    finally:
        services.db.dispose()
    if as_json:
        emit_json(info.to_dict())
        return
    then = "" if keep else "; they must change it at their next sign-in"
    console.print(f"Password of {info.email} set: their sessions ended{then}.")


@app.command("invite")
def invite(
    email: str = typer.Option(..., "--email", help="The person's email address (their login)"),
    role: str = typer.Option(..., "--role", help="admin, merchandiser, viewer or a custom role"),
    name: str | None = typer.Option(None, "--name", help="Display name (they may change it)"),
    hours: int = typer.Option(
        DEFAULT_HOURS, "--hours", help="How long the link works (1 hour to 30 days)"
    ),
    base_url: str = typer.Option(
        "", "--base-url", help="The Command Center's address, e.g. https://search.example.com"
    ),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Invite a person by a one-time link: they choose their own password. The link is
    printed once; send it to them by a channel you trust."""
    services = build_services(settings_for(data_dir))
    try:
        created = services.invitations.create(
            cli_actor(), email, role, name, timedelta(hours=hours)
        )
    except SearchgateError as exc:
        fail(exc, as_json)
        return
    finally:
        services.db.dispose()
    url = invitation_url(base_url, created.secret)
    now = services.invitations.clock()
    if as_json:
        emit_json({"url": url, "invitation": created.info.to_dict(now)})
        return
    expires = created.info.expires_at.isoformat()[:16].replace("T", " ")
    console.print(
        f"Invitation for {created.info.email} ({created.info.role}), valid until "
        f"{expires} UTC. The link, shown this once:"
    )
    typer.echo(url)


@app.command("invitations")
def invitations(
    show_all: bool = typer.Option(False, "--all", help="Also used, withdrawn and expired ones"),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """List invitations still waiting to be accepted."""
    services = build_services(settings_for(data_dir))
    try:
        infos = services.invitations.list(cli_actor(), include_inactive=show_all)
    finally:
        services.db.dispose()
    now = services.invitations.clock()
    if as_json:
        emit_json([i.to_dict(now) for i in infos])
        return
    table = Table("id", "email", "role", "invited by", "expires", "state")
    for i in infos:
        table.add_row(
            i.id, i.email, i.role, i.invited_by, i.expires_at.isoformat()[:16], i.state(now)
        )
    Console().print(table)


@app.command("withdraw-invitation")
def withdraw_invitation(
    invitation: str = typer.Argument(..., help="Invitation id (inv_...)"),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Withdraw a pending invitation: its link stops working at once."""
    services = build_services(settings_for(data_dir))
    try:
        info = services.invitations.revoke(cli_actor(), invitation)
    except SearchgateError as exc:
        fail(exc, as_json)
        return
    finally:
        services.db.dispose()
    if as_json:
        emit_json(info.to_dict(services.invitations.clock()))
        return
    console.print(f"The invitation for {info.email} was withdrawn.")


@app.command("token")
def token(
    user: str = typer.Option(..., "--user", help="Owner: user id or email"),
    name: str = typer.Option(..., "--name", help="What the token is for"),
    days: int = typer.Option(90, "--days", help="Lifetime in days"),
    permission: list[str] = typer.Option(
        None, "--permission", help="Repeat per permission (default: all the owner's role has)"
    ),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Create a personal API token for the admin API and print it once."""
    services = build_services(settings_for(data_dir))
    actor = cli_actor()
    try:
        owner = services.users.get(actor, user)
        created = services.tokens.create(
            actor, name, permission or None, timedelta(days=days), user_id=owner.id
        )
    except SearchgateError as exc:
        fail(exc, as_json)
        return
    finally:
        services.db.dispose()
    now = services.tokens.clock()
    if as_json:
        emit_json({**created.info.to_dict(now), "token": created.secret})
        return
    console.print(f"Created token {created.info.id} for {owner.email}, shown this once:")
    typer.echo(created.secret)
