"""``searchgate store ...``: the client key in its secret store, for systems and scripts.

Systems that need the key read it from the store instead of keeping a copy, so a
rotation reaches them without a deployment: ``read`` prints it for a shell
(``KEY=$(searchgate store read ...)``), ``render`` writes config files (upload jobs,
SAYT snippets for server-side rendering) from a template and can keep them current.

Exit codes: 0 done; 1 the store holds no key yet; 2 bad input or a store failure; 3
``render --exec``'s command failed (without ``--watch``).
"""

from __future__ import annotations

import math
import shlex
import sys
from pathlib import Path

import typer
from rich.markup import escape

from searchgate.cli.common import EXIT_NO, console, emit_json
from searchgate.cli.render import (
    ERROR_BACKOFF_CAP_SECONDS,
    EXEC_TIMEOUT_SECONDS,
    WATCH_FLOOR_SECONDS,
    WATCH_MAX_SECONDS,
    RenderFailed,
    render_template,
    run_command,
    watch_store,
)
from searchgate.secretstores import KINDS, SecretStore, StoreError, StoreNotFound, open_store
from searchgate_client.keyformat import check_key_format

app = typer.Typer(
    help="Read the client key from its secret store, or render config files with it.",
    no_args_is_help=True,
)

StoreKind = typer.Option(..., "--store", help=f"The store: {', '.join(KINDS)}")
StorePath = typer.Option(
    ...,
    "--path",
    help="Vault: mount/path (secret/searchgate/client-key); AWS: secret name or ARN; "
    "file: a file path; env: a variable name",
)


def _open(kind: str, path: str) -> SecretStore:
    try:
        return open_store(kind, path)
    except StoreError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None


def _read_value(store: SecretStore) -> tuple[str, str]:
    try:
        current = store.read()
    except StoreNotFound as exc:
        console.print(f"[yellow]{escape(str(exc))}[/yellow]")
        raise typer.Exit(EXIT_NO) from None
    except StoreError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    return current.value, current.version


@app.command("read")
def read(kind: str = StoreKind, path: str = StorePath) -> None:
    """Print the current client key (alone on stdout, for `KEY=$(...)`)."""
    value, _version = _read_value(_open(kind, path))
    typer.echo(value)


@app.command("version")
def version(
    kind: str = StoreKind,
    path: str = StorePath,
    as_json: bool = typer.Option(False, "--json", help="JSON on stdout"),
) -> None:
    """Print which version of the key the store holds (never the key)."""
    store = _open(kind, path)
    _value, ver = _read_value(store)
    if as_json:
        emit_json({"store": store.location, "version": ver})
    else:
        console.print(f"{store.location}: version {ver}")


@app.command("write")
def write(
    kind: str = StoreKind,
    path: str = StorePath,
    expected_version: str | None = typer.Option(
        None,
        "--expected-version",
        help="Check-and-set: write only if the store is still at this version "
        "(default: the version read just before)",
    ),
) -> None:
    """Store a key read from stdin (never from an argument: shell history keeps those)."""
    value = sys.stdin.readline().strip()
    if not value:
        console.print("[red]no key on stdin[/red]")
        raise typer.Exit(2)
    problem = check_key_format(value)
    if problem is not None:
        # Every system reads what is stored here: a typo would take them all down.
        console.print(f"[red]not a Searchgate client key ({problem}); nothing stored[/red]")
        raise typer.Exit(2)
    store = _open(kind, path)
    try:
        if expected_version is None:
            try:
                expected_version = store.read().version
            except StoreNotFound:
                expected_version = None
        written = store.write(value, expected_version)
    except StoreError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    console.print(f"{store.location}: stored as version {written.version}")


def _watch_interval(value: float | None) -> float | None:
    if value is not None and not (
        math.isfinite(value) and WATCH_FLOOR_SECONDS <= value <= WATCH_MAX_SECONDS
    ):
        raise typer.BadParameter(
            f"--watch is {WATCH_FLOOR_SECONDS:g} to {WATCH_MAX_SECONDS:g} seconds, not {value:g}"
        )
    return value


def _command(value: str | None) -> list[str] | None:
    if value is None:
        return None
    try:
        argv = shlex.split(value)
    except ValueError as exc:
        raise typer.BadParameter(f"--exec: {exc}") from None
    if not argv:
        raise typer.BadParameter("--exec needs a command")
    return argv


@app.command("render")
def render(
    kind: str = StoreKind,
    path: str = StorePath,
    template: Path = typer.Option(
        ...,
        "--template",
        exists=True,
        dir_okay=False,
        help="A Jinja2 template using {{ client_key }}, or {{ browser_token(collection=..., "
        "origin=..., ttl='30m', scope='sayt') }} for a page",
    ),
    out: Path = typer.Option(..., "--out", help="The config file to write (mode 0600)"),
    watch: float | None = typer.Option(
        None,
        "--watch",
        callback=_watch_interval,
        help=f"Keep running and re-render when the key changes: read the store every N "
        f"seconds ({WATCH_FLOOR_SECONDS:g} to {WATCH_MAX_SECONDS:g}); failed reads are "
        f"retried with backoff, up to {ERROR_BACKOFF_CAP_SECONDS:g} s apart",
    ),
    exec_: str | None = typer.Option(
        None,
        "--exec",
        help="Run this command (split like a shell would, run without one) after each "
        f"change of the file, so a system that reads it once reloads; {EXEC_TIMEOUT_SECONDS:g} s "
        "at most. A failure is reported; with --watch it goes on watching",
    ),
) -> None:
    """Write a config file (upload job, SAYT set-up) with the current key from the store.

    Exit codes: 0 done; 1 the store holds no key yet; 2 bad input, a template error or a
    store failure; 3 the --exec command failed."""
    command = _command(exec_)
    store = _open(kind, path)
    source = template.read_text()
    failed = False

    def on_change(value: str, ver: str) -> float | None:
        nonlocal failed
        try:
            rendered = render_template(source, value, out)
        except RenderFailed as exc:
            console.print(f"[red]template error: {escape(str(exc))}[/red]", highlight=False)
            raise typer.Exit(2) from None
        if rendered.changed:
            console.print(
                f"rendered {escape(str(out))} from {escape(store.location)} version {escape(ver)}"
            )
            if command is not None:
                failed = not run_command(command)
        return rendered.refresh_after

    if watch is None:
        on_change(*_read_value(store))
        if failed:
            raise typer.Exit(3)
        return
    watch_store(store, on_change, watch)
