"""``searchgate keys ...``: create, list, delete and check client keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from searchgate.cli.common import DataDir, JsonOut, console, emit_json, fail, settings_for
from searchgate.errors import SearchgateError
from searchgate.keys.format import check_key_format
from searchgate.keys.scopes import Scope
from searchgate.keys.service import KeyInfo
from searchgate.runtime import build_services

app = typer.Typer(help="Manage client keys (the secret is shown once, at creation).")


def _as_dict(info: KeyInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "prefix": info.display_prefix,
        "scopes": sorted(s.value for s in info.scopes),
        "createdAt": info.created_at.isoformat(),
        "state": "deleted" if info.deleted else "disabled" if info.disabled else "active",
    }


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
    """Create a client key and print its secret once."""
    services = build_services(settings_for(data_dir))
    try:
        scopes = frozenset(Scope(s) for s in scope) if scope else frozenset(Scope)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    try:
        created = services.keys.create(name, scopes)
    except SearchgateError as exc:
        fail(exc, as_json)
        return
    if as_json:
        emit_json({**_as_dict(created.info), "key": created.secret})
        return
    console.print(f"Created key [bold]{created.info.name}[/bold] ({created.info.id}).")
    console.print("The key is shown this once; store it in your secret manager now:")
    typer.echo(created.secret)


@app.command("list")
def list_keys(
    all_keys: bool = typer.Option(False, "--all", help="Include deleted keys (tombstones)"),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """List keys: ids, names, prefixes and states; never a secret."""
    services = build_services(settings_for(data_dir))
    infos = services.keys.list(include_deleted=all_keys)
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
    Console().print(table)


@app.command("delete")
def delete(
    key: str = typer.Argument(..., help="Key id or name"),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation"),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Delete a key. Irreversible: it never authenticates again."""
    services = build_services(settings_for(data_dir))
    if not yes and not as_json:
        typer.confirm(f"Delete key {key!r}? This cannot be undone", abort=True)
    try:
        info = services.keys.delete(key)
    except SearchgateError as exc:
        fail(exc, as_json)
        return
    if as_json:
        emit_json(_as_dict(info))
    else:
        console.print(f"Deleted key {info.name} ({info.id}).")


@app.command("check")
def check(
    key: str = typer.Argument(..., help="A string that may be a Searchgate client key"),
    as_json: bool = JsonOut,
) -> None:
    """Say whether a string is a well-formed Searchgate key (offline, no server)."""
    problem = check_key_format(key.strip())
    if as_json:
        emit_json({"wellFormed": problem is None, "reason": problem})
    elif problem is None:
        console.print("well-formed Searchgate client key (checksum matches)")
    else:
        console.print(f"not a Searchgate client key: {problem}")
    raise typer.Exit(0 if problem is None else 1)
