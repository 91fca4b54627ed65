"""``searchgate keys ...``: client keys from a shell, on the data directory's database.

The operator at the CLI holds the database and its secrets, so acts as the system
actor (``cli:<os user>`` in the change log). A key is addressed by its id
(``key_...``) or its name. The secret is printed once, by ``create``, ``new-primary``
and ``roll``: alone on stdout (``KEY=$(searchgate keys create ...)``), or as
``"secret"`` with ``--json``. ``derive`` and ``check`` work offline, without any
database; ``derive`` reads the client key from ``--key-file``, the environment
variable ``SEARCHGATE_CLIENT_KEY`` or stdin, never from an argument (arguments end up
in shell history and the process list).

With ``--json`` stdout carries only JSON (the shapes of the admin API: ``{"key": ...}``,
``{"keys": [...]}``), and prompts and messages go to stderr.

Exit codes: 0 done; 1 the answer is no (no such key, the key is still in use or is the
primary key, the confirmation was refused, not a valid key); 2 bad input or usage
(unknown scope, malformed time, duration or CIDR, a name that is taken, a confirmation
that does not match the key's name).
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table

from searchgate.cli.common import (
    EXIT_NO,
    EXIT_USAGE,
    DataDir,
    JsonOut,
    console,
    emit_json,
    print_error,
    services_for,
)
from searchgate.cli.keys_input import (
    CLIENT_KEY_ENV,
    parse_expiry,
    parse_rate,
    parse_scopes,
    read_client_key,
)
from searchgate.cli.users import cli_actor
from searchgate.durations import parse_duration
from searchgate.errors import Conflict, Forbidden, InvalidInput, NotFound, SearchgateError
from searchgate.keys.info import CreatedKey, KeyInfo
from searchgate.keys.restrictions import Restrictions
from searchgate.keys.scopes import ALL_SCOPES, SCOPE_HELP
from searchgate.keys.service import KeyInUse, UnknownCollection, unknown_collection_warnings
from searchgate.keys.usage import RETENTION_DAYS
from searchgate.runtime import Services
from searchgate_client.browser_tokens import (
    MAX_TTL_TEXT,
    derive_browser_token,
    derive_keypair,
    verify_browser_token,
)
from searchgate_client.keyformat import check_key_format

app = typer.Typer(
    help="Manage client keys (the secret is shown once, at creation).", no_args_is_help=True
)


KeyArg = typer.Argument(..., help="Key id (key_...) or name")


# --- helpers ---------------------------------------------------------------------------


def _exit_code(exc: SearchgateError) -> int:
    if isinstance(exc, NotFound | Forbidden | KeyInUse):
        return EXIT_NO
    # A taken name is bad input; other conflicts (deleting the primary key) are a no.
    if isinstance(exc, Conflict) and exc.field is None:
        return EXIT_NO
    return EXIT_USAGE


def _fail(exc: SearchgateError, as_json: bool) -> NoReturn:
    if as_json:
        emit_json({"error": exc.to_dict()})
    else:
        print_error(exc.message)
        systems = exc.details.get("systems") if isinstance(exc, KeyInUse) else None
        for system in systems or ():
            console.print(f"  still used by: {system}")
        if isinstance(exc, UnknownCollection):
            console.print("  for a collection that does not exist yet, add --allow-unknown")
    raise typer.Exit(_exit_code(exc))


def _services(data_dir: Path | None, as_json: bool) -> AbstractContextManager[Services]:
    return services_for(data_dir, as_json, _fail)


def _iso(at: datetime | None) -> str:
    return at.isoformat()[:19].replace("T", " ") if at is not None else "-"


def _age(info: KeyInfo, now: datetime) -> str:
    days = info.age_days(now)
    return f"{days:.0f} d" if days >= 1 else f"{days * 24:.0f} h"


def _created_output(
    created: CreatedKey,
    now: datetime,
    as_json: bool,
    what: str,
    warnings: list[str] | None = None,
) -> None:
    if as_json:
        body = {
            "key": created.info.to_dict(now),
            "secret": created.secret,
            "replaced": created.replaced.to_dict(now) if created.replaced else None,
        }
        emit_json(body if warnings is None else {**body, "warnings": warnings})
        return
    for warning in warnings or ():
        console.print(f"[yellow]warning:[/yellow] {warning}")
    info = created.info
    console.print(f"{what} [bold]{info.name}[/bold] ({info.id}), scopes: {_scopes_text(info)}.")
    if info.primary:
        console.print("It is the primary key.")
    if created.replaced is not None:
        old = created.replaced
        expiry = old.restrictions.expires_at
        console.print(
            f"The previous key {old.name} ({old.id}) keeps working"
            + (f" until {_iso(expiry)} UTC" if expiry else "")
            + " and is marked as the one to retire."
        )
    console.print("The key is shown this once; store it in your secret manager now:")
    # The secret alone on stdout, so that `KEY=$(searchgate keys create ...)` works.
    typer.echo(created.secret)


def _scopes_text(info: KeyInfo) -> str:
    return " ".join(sorted(s.value for s in info.scopes))


def _info_output(info: KeyInfo, now: datetime, as_json: bool, message: str) -> None:
    if as_json:
        emit_json({"key": info.to_dict(now)})
    else:
        console.print(message)


def _flags(info: KeyInfo) -> str:
    if info.primary:
        return "primary"
    return "retiring" if info.retiring_since is not None else ""


# --- creating ------------------------------------------------------------------------


@app.command("create")
def create(
    name: str = typer.Option(..., "--name", help="A name that says which system uses the key"),
    scope: list[str] = typer.Option(
        None,
        "--scope",
        help="Repeat per scope (required unless --all-scopes): "
        + "; ".join(f"{s.value}: {h}" for s, h in SCOPE_HELP.items()),
    ),
    all_scopes: bool = typer.Option(
        False, "--all-scopes", help="Every scope: the protocol's classic all-powerful key"
    ),
    collection: list[str] = typer.Option(
        None, "--collection", help="Only this collection (repeatable; default: every one)"
    ),
    expires: str | None = typer.Option(
        None, "--expires", help="ISO time (2027-01-31T00:00:00Z) or duration from now (90d)"
    ),
    ip: list[str] = typer.Option(None, "--ip", help="Allowed client IP range, CIDR (repeatable)"),
    origin: list[str] = typer.Option(
        None, "--origin", help="Allowed browser origin, https://shop.example (repeatable)"
    ),
    rate: str | None = typer.Option(None, "--rate", help="Request limit, N/min (or N/s)"),
    primary: bool = typer.Option(False, "--primary", help="Make it the primary key"),
    allow_unknown: bool = typer.Option(
        False,
        "--allow-unknown",
        help="Accept --collection names that no collection has yet (warns about each)",
    ),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Create a client key and print its secret once (only a digest is stored)."""
    with _services(data_dir, as_json) as services:
        if all_scopes and scope:
            raise InvalidInput("give --scope or --all-scopes, not both", field="scope")
        if not all_scopes and not scope:
            raise InvalidInput(
                "name the scopes the key needs (--scope search --scope sayt ...), or "
                "--all-scopes for the classic all-powerful key",
                field="scope",
            )
        scopes = ALL_SCOPES if all_scopes else parse_scopes(scope)
        now = services.keys.clock()
        restrictions = Restrictions.build(
            collections=collection or None,
            expires_at=parse_expiry(expires, now) if expires else None,
            ip_ranges=ip or (),
            origins=origin or (),
            rate_limit_per_minute=parse_rate(rate) if rate else None,
        )
        created = services.keys.create(
            cli_actor(), name, scopes, restrictions, primary, allow_unknown
        )
        unknown = services.keys.unknown_collections(restrictions.collections)
    warnings = unknown_collection_warnings(unknown)
    _created_output(created, now, as_json, "Created key", warnings)


@app.command("new-primary")
def new_primary(
    name: str | None = typer.Option(None, "--name", help="Name (default: the old one + date)"),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Create a new primary key with the scopes and restrictions of the current one;
    the old key keeps working and is marked as the one to retire."""
    with _services(data_dir, as_json) as services:
        created = services.keys.new_primary(cli_actor(), name)
        now = services.keys.clock()
    _created_output(created, now, as_json, "Created the new primary key")


@app.command("roll")
def roll(
    key: str = KeyArg,
    expires_in: str = typer.Option(
        "24h", "--expires-in", help="When the old key stops working: 0s to 30d (24h)"
    ),
    name: str | None = typer.Option(None, "--name", help="Name (default: the old one + date)"),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Replace a key by a new copy and let the old one expire after --expires-in."""
    with _services(data_dir, as_json) as services:
        delay = parse_duration(expires_in, "expiresIn")
        created = services.keys.roll(cli_actor(), key, delay, name)
        now = services.keys.clock()
    _created_output(created, now, as_json, "Rolled into key")


# --- reading -------------------------------------------------------------------------


@app.command("list")
def list_keys(
    all_keys: bool = typer.Option(False, "--all", help="Include deleted keys (tombstones)"),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """List keys with scopes, state, age and last use; never a secret."""
    with _services(data_dir, as_json) as services:
        infos = services.keys.list(include_deleted=all_keys)
        now = services.keys.clock()
    if as_json:
        emit_json({"keys": [i.to_dict(now) for i in infos]})
        return
    table = Table("id", "name", "prefix", "scopes", "", "state", "age", "last used", "by")
    for i in infos:
        table.add_row(
            i.id,
            i.name,
            i.display_prefix + "…",
            _scopes_text(i),
            _flags(i),
            i.state(now),
            _age(i, now),
            _iso(i.last_used_at),
            i.last_system or "-",
        )
    Console(width=200).print(table)


@app.command("peppers")
def peppers(data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Live keys per pepper id: a retiring pepper may be dropped once none use it."""
    with _services(data_dir, as_json) as services:
        counts = services.keys.pepper_counts()
        current = services.keys.pepper.id
        retiring = [p.id for p in services.keys.previous_peppers]
    rows = [
        {
            "pepperId": pid,
            "keys": counts.get(pid, 0),
            "role": "current" if pid == current else "retiring" if pid in retiring else "unknown",
        }
        for pid in sorted(set(counts) | {current} | set(retiring))
    ]
    if as_json:
        emit_json({"peppers": rows})
        return
    table = Table("pepper id", "live keys", "")
    for r in rows:
        table.add_row(str(r["pepperId"]), str(r["keys"]), str(r["role"]))
    Console(width=120).print(table)


@app.command("show")
def show(key: str = KeyArg, data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """One key (tombstones too): scopes, restrictions, state and the systems that used
    it within the last 30 days."""
    with _services(data_dir, as_json) as services:
        info = services.keys.get(key, include_deleted=True)
        now = services.keys.clock()
        usage = services.usage
        systems = usage.systems(info.id, now - timedelta(days=RETENTION_DAYS))
    if as_json:
        emit_json({"key": info.to_dict(now), "systems": [u.to_dict() for u in systems]})
        return
    d = info.to_dict(now)
    rows = [
        ("id", info.id),
        ("name", info.name),
        ("prefix", info.display_prefix + "…"),
        ("scopes", _scopes_text(info)),
        ("state", info.state(now) + (f" ({info.disabled_reason})" if info.disabled else "")),
        ("primary", "yes" if info.primary else "no" + (", retiring" if d["retiring"] else "")),
        ("created", f"{_iso(info.created_at)} UTC by {info.created_by} ({_age(info, now)} ago)"),
        ("collections", ", ".join(d["collections"]) if d["collections"] else "all"),
        ("expires", _iso(info.restrictions.expires_at)),
        ("client IPs", ", ".join(d["ipRanges"]) or "any"),
        ("origins", ", ".join(d["origins"]) or "any"),
        ("rate limit", f"{d['rateLimitPerMinute']}/min" if d["rateLimitPerMinute"] else "none"),
        ("last used", f"{_iso(info.last_used_at)} from {info.last_ip or '-'}"),
        ("browser key id", info.public_key_id or "-"),
    ]
    for label, value in rows:
        typer.echo(f"{label:>15}: {value}")
    typer.echo(f"{'systems':>15}: " + ("none in 30 days" if not systems else ""))
    for u in systems:
        typer.echo(f"{'':>17}{u.system}: {u.requests} requests, last {_iso(u.last_seen_at)} UTC")


@app.command("usage")
def usage(
    key: str = KeyArg,
    days: int = typer.Option(RETENTION_DAYS, "--days", help=f"1 to {RETENTION_DAYS}"),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Requests of a key per day and system (--json: per hour, system and outcome)."""
    with _services(data_dir, as_json) as services:
        if not 1 <= days <= RETENTION_DAYS:
            raise InvalidInput(f"--days is 1 to {RETENTION_DAYS}", field="days")
        info = services.keys.get(key, include_deleted=True)
        now = services.keys.clock()
        since = now - timedelta(days=days)
        queries = services.usage
        systems = queries.systems(info.id, since)
        hourly = queries.hourly(info.id, since)
        daily = queries.daily_by_system(info.id, days)
    if as_json:
        emit_json(
            {
                "key": info.to_dict(now),
                "since": since.isoformat(),
                "systems": [u.to_dict() for u in systems],
                "hourly": [h.to_dict() for h in hourly],
            }
        )
        return
    console.print(f"{info.name} ({info.id}): {sum(u.requests for u in systems)} requests")
    table = Table("day (UTC)", "system", "requests")
    for row in daily:
        table.add_row(row.day.isoformat(), row.system, str(row.requests))
    Console(width=200).print(table)


# --- changing ------------------------------------------------------------------------


@app.command("expiry")
def expiry(
    key: str = KeyArg,
    at: str | None = typer.Option(
        None, "--at", help="New expiry: ISO time (2027-01-31T00:00:00Z) or duration from now (48h)"
    ),
    never: bool = typer.Option(False, "--never", help="Cancel the expiry: the key never expires"),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Move or cancel the time a key stops working (after a roll: the old key's)."""
    with _services(data_dir, as_json) as services:
        if (at is None) == (not never):
            raise InvalidInput("give --at TIME or --never (one of them)", field="expiresAt")
        now = services.keys.clock()
        new_at = parse_expiry(at, now) if at is not None else None
        info = services.keys.set_expiry(cli_actor(), key, new_at)
    when = info.restrictions.expires_at
    said = f"expires {_iso(when)} UTC" if when else "never expires"
    _info_output(info, now, as_json, f"{info.name} ({info.id}) {said}.")


@app.command("make-primary")
def make_primary(
    key: str = KeyArg, data_dir: Path | None = DataDir, as_json: bool = JsonOut
) -> None:
    """Make an existing key the primary one (the previous primary starts retiring)."""
    with _services(data_dir, as_json) as services:
        info = services.keys.make_primary(cli_actor(), key)
        now = services.keys.clock()
    _info_output(info, now, as_json, f"{info.name} ({info.id}) is the primary key.")


@app.command("disable")
def disable(
    key: str = KeyArg,
    reason: str | None = typer.Option(None, "--reason", help="Why (kept with the key)"),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Switch a key off now (reversible): it and its browser tokens are refused by
    every server within SEARCHGATE_KEY_CACHE_SECONDS."""
    with _services(data_dir, as_json) as services:
        info = services.keys.disable(cli_actor(), key, reason)
        now = services.keys.clock()
    _info_output(info, now, as_json, f"Disabled {info.name} ({info.id}); enable it to undo.")


@app.command("enable")
def enable(key: str = KeyArg, data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Switch a disabled key on again."""
    with _services(data_dir, as_json) as services:
        info = services.keys.enable(cli_actor(), key)
        now = services.keys.clock()
    _info_output(info, now, as_json, f"Enabled {info.name} ({info.id}): {info.state(now)}.")


@app.command("delete")
def delete(
    key: str = KeyArg,
    confirm: str | None = typer.Option(
        None, "--confirm", help="The key's name, typed out (otherwise you are asked for it)"
    ),
    force: bool = typer.Option(
        False, "--force", help="Delete even though a system used the key within the quiet period"
    ),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Delete a key. Irreversible: it and its browser tokens never work again; a
    tombstone stays for the change log. Refused while a system used the key within
    SEARCHGATE_KEY_DELETE_QUIET_MINUTES (it names them) unless --force."""
    with _services(data_dir, as_json) as services:
        target = services.keys.get(key)
        if confirm is None:
            console.print(
                f"Deleting {target.name} ({target.id}) cannot be undone. "
                "Type the key's name to confirm:"
            )
            confirm = str(typer.prompt("Name", default="", show_default=False, err=True))
            if not confirm.strip():
                console.print("not deleted")
                raise typer.Exit(EXIT_NO)
        info = services.keys.delete(cli_actor(), target.id, confirm, force)
        now = services.keys.clock()
    _info_output(info, now, as_json, f"Deleted key {info.name} ({info.id}).")


# --- offline -------------------------------------------------------------------------


@app.command("check")
def check(
    key: str = typer.Argument(
        ..., help="The string to check, or - to read it from stdin (keeps it out of history)"
    ),
    known: bool = typer.Option(
        False, "--known", help="Also require an active key of this deployment (reads the database)"
    ),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Say whether a string is a well-formed Searchgate client key: offline (prefix,
    length, checksum), or with --known also active here. Exit 0 if so, 1 if not."""
    candidate = (sys.stdin.readline() if key == "-" else key).strip()
    problem = check_key_format(candidate)
    info: KeyInfo | None = None
    if problem is None and known:
        with _services(data_dir, as_json) as services:
            info = services.keys.verify(candidate)
            now = services.keys.clock()
        if info is None:
            problem = "well formed, but not a key of this deployment"
        elif not info.usable(now):
            problem = f"key {info.id} is {info.state(now)}"
    if as_json:
        emit_json(
            {
                "valid": problem is None,
                "reason": problem,
                "id": info.id if info is not None else None,
            }
        )
    elif problem is None:
        suffix = f": key {info.name} ({info.id}), active" if info is not None else ""
        console.print(f"a well-formed Searchgate client key (checksum matches){suffix}")
    else:
        console.print(f"not a valid Searchgate client key: {problem}")
    raise typer.Exit(0 if problem is None else EXIT_NO)


@app.command("derive")
def derive(
    collection: list[str] = typer.Option(
        ..., "--collection", help="A collection the token may search (repeatable)"
    ),
    origin: list[str] = typer.Option(
        ..., "--origin", help="A page origin allowed to use it, https://shop.example (repeatable)"
    ),
    ttl: str = typer.Option("1h", "--ttl", help=f"Lifetime, at most {MAX_TTL_TEXT} (default 1h)"),
    filter_: str | None = typer.Option(
        None, "--filter", help="A pre-filter ANDed into every search (the browser cannot drop it)"
    ),
    scope: list[str] = typer.Option(
        None, "--scope", help="search and/or sayt (repeatable; default both)"
    ),
    key_file: Path | None = typer.Option(
        None, "--key-file", help="Read the client key from this file's first line"
    ),
    as_json: bool = JsonOut,
) -> None:
    """Derive a browser token from a client key, offline (no server, no database).

    The client key comes from --key-file, else SEARCHGATE_CLIENT_KEY, else stdin:
    never from an argument. The token is printed on stdout."""
    try:
        client_key = read_client_key(key_file)
        if not client_key:
            raise InvalidInput(
                f"no client key: pipe it on stdin, or use --key-file or {CLIENT_KEY_ENV}",
                field="key",
            )
        lifetime = parse_duration(ttl, "ttl")
        try:
            token = derive_browser_token(
                client_key,
                collections=collection,
                origins=origin,
                ttl=lifetime,
                scopes=scope or ("search", "sayt"),
                filter=filter_,
            )
        except ValueError as exc:
            # The messages name the offending restriction, never the client key.
            raise InvalidInput(str(exc)) from None
    except SearchgateError as exc:
        _fail(exc, as_json)
    if as_json:
        _private, public = derive_keypair(client_key)
        claims = verify_browser_token(token, lambda _kid: public)
        emit_json(
            {
                "token": token,
                "keyId": claims.kid,
                "expiresAt": claims.expires_at.isoformat(),
                "scopes": sorted(claims.scopes),
                "collections": sorted(claims.collections),
                "origins": sorted(claims.origins),
                "filter": claims.filter,
            }
        )
        return
    typer.echo(token)
