"""``searchgate store ...``: the client key in its secret store, for systems and scripts.

Systems that need the key read it from the store instead of keeping a copy, so a
rotation reaches them without a deployment: ``read`` prints it for a shell
(``KEY=$(searchgate store read ...)``), ``render`` writes config files (upload jobs,
SAYT snippets for server-side rendering) from a template and can keep them current.

Exit codes: 0 done; 1 the store holds no key yet; 2 bad input or a store failure.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import typer
from jinja2 import Environment, StrictUndefined, TemplateError

from searchgate.cli.common import EXIT_NO, console, emit_json
from searchgate.secretstores import KINDS, SecretStore, StoreError, StoreNotFound, open_store

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
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _read_value(store: SecretStore) -> tuple[str, str]:
    try:
        current = store.read()
    except StoreNotFound as exc:
        console.print(f"[yellow]{exc}[/yellow]")
        raise typer.Exit(EXIT_NO) from None
    except StoreError as exc:
        console.print(f"[red]{exc}[/red]")
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
    store = _open(kind, path)
    try:
        if expected_version is None:
            try:
                expected_version = store.read().version
            except StoreNotFound:
                expected_version = None
        written = store.write(value, expected_version)
    except StoreError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"{store.location}: stored as version {written.version}")


def _render(template: str, key: str, out: Path) -> bool:
    """Writes ``out`` atomically (mode 0600); True when its content changed."""
    env = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)  # noqa: S701 - config files, not HTML
    try:
        text = env.from_string(template).render(client_key=key)
    except TemplateError as exc:
        console.print(f"[red]template error: {exc}[/red]")
        raise typer.Exit(2) from None
    if out.exists() and out.read_text() == text:
        return False
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


@app.command("render")
def render(
    kind: str = StoreKind,
    path: str = StorePath,
    template: Path = typer.Option(
        ...,
        "--template",
        exists=True,
        dir_okay=False,
        help="A Jinja2 template using {{ client_key }}",
    ),
    out: Path = typer.Option(..., "--out", help="The config file to write (mode 0600)"),
    watch: float | None = typer.Option(
        None, "--watch", help="Keep running and re-render when the key changes, every N seconds"
    ),
) -> None:
    """Write a config file (upload job, SAYT set-up) with the current key from the store."""
    store = _open(kind, path)
    source = template.read_text()
    seen: str | None = None
    while True:
        try:
            value, ver = _read_value(store)
        except typer.Exit:
            if watch is None:
                raise
            time.sleep(watch)
            continue
        if ver != seen:
            if _render(source, value, out):
                console.print(f"rendered {out} from {store.location} version {ver}")
            seen = ver
        if watch is None:
            return
        time.sleep(max(0.5, watch))
