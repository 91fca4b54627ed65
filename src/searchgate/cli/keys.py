"""``searchgate keys ...``: create, list, delete and check client keys.

Exit codes: 0 done; 1 the answer is no (no such key to delete, not a valid key);
2 bad input or usage. With ``--json`` stdout carries only JSON and prompts go to stderr.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from searchgate.cli.common import (
    EXIT_NO,
    DataDir,
    JsonOut,
    console,
    emit_json,
    fail,
    settings_for,
)
from searchgate.errors import InvalidInput, SearchgateError
from searchgate.keys.format import check_key_format
from searchgate.keys.scopes import Scope
from searchgate.keys.info import KeyInfo
from searchgate.permissions import Actor
from searchgate.runtime import build_services

app = typer.Typer(
    help="Manage client keys (the secret is shown once, at creation).", no_args_is_help=True
)


def _as_dict(info: KeyInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "prefix": info.display_prefix,
        "scopes": sorted(s.value for s in info.scopes),
        # SQLite hands back naive datetimes; every stored time is UTC.
        "createdAt": (
            info.created_at
            if info.created_at.tzinfo is not None
            else info.created_at.replace(tzinfo=UTC)
        ).isoformat(),
        "state": "deleted" if info.deleted else "disabled" if info.disabled else "active",
    }


def _scopes(names: list[str] | None) -> frozenset[Scope]:
    if not names:
        return frozenset(Scope)
    known = {s.value: s for s in Scope}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidInput(
            f"unknown scope {unknown[0]!r} (scopes: {', '.join(known)})", field="scope"
        )
    return frozenset(known[n] for n in names)


@app.command("create")
def create(
    name: str = typer.Option(..., "--name", help="A name that says which system uses the key"),
    scope: list[str] = typer.Option(
        None,
        "--scope",
        help="Repeat for each scope (default: all; " + ", ".join(s.value for s in Scope) + ")",
    ),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Create a client key and print its secret once (only a digest is stored)."""
    try:
        scopes = _scopes(scope)
        created = build_services(settings_for(data_dir)).keys.create(Actor.system(), name, scopes)
    except SearchgateError as exc:
        fail(exc, as_json)
    if as_json:
        emit_json({**_as_dict(created.info), "key": created.secret})
        return
    console.print(f"Created key [bold]{created.info.name}[/bold] ({created.info.id}).")
    console.print("The key is shown this once; store it in your secret manager now:")
    # The secret alone on stdout, so that `KEY=$(searchgate keys create ...)` works.
    typer.echo(created.secret)


@app.command("list")
def list_keys(
    all_keys: bool = typer.Option(False, "--all", help="Include deleted keys (tombstones)"),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """List keys: ids, names, prefixes, scopes, creation times and states; never a secret."""
    infos = build_services(settings_for(data_dir)).keys.list(include_deleted=all_keys)
    if as_json:
        emit_json([_as_dict(i) for i in infos])
        return
    table = Table("id", "name", "prefix", "scopes", "created", "state")
    for i in infos:
        d = _as_dict(i)
        table.add_row(
            d["id"],
            d["name"],
            d["prefix"] + "…",
            " ".join(d["scopes"]),
            d["createdAt"][:19],
            d["state"],
        )
    Console(width=200).print(table)


@app.command("delete")
def delete(
    key: str = typer.Argument(..., help="Key id or name"),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation"),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Delete a key. Irreversible: it never authenticates again (servers notice within
    SEARCHGATE_KEY_CACHE_SECONDS)."""
    services = build_services(settings_for(data_dir))
    try:
        target = services.keys.get(key)
    except SearchgateError as exc:
        fail(exc, as_json)
    if not yes and not typer.confirm(
        f"Delete key {target.name!r} ({target.id})? This cannot be undone", err=True
    ):
        console.print("not deleted")
        raise typer.Exit(EXIT_NO)
    try:
        info = services.keys.delete(Actor.system(), target.id, target.name, force=True)
    except SearchgateError as exc:
        fail(exc, as_json)
    if as_json:
        emit_json(_as_dict(info))
    else:
        console.print(f"Deleted key {info.name} ({info.id}).")


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
        info = build_services(settings_for(data_dir)).keys.verify(candidate)
        if info is None:
            problem = "well formed, but not a key of this deployment"
        elif not info.usable(datetime.now(UTC)):
            problem = f"key {info.id} is {'deleted' if info.deleted else 'disabled'}"
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
