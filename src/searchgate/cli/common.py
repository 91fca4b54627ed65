"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from searchgate.config import Settings
from searchgate.errors import NotFound, SearchgateError, StorageUnavailable
from searchgate.server_secrets import ServerSecretsError

if TYPE_CHECKING:
    from searchgate.runtime import Services

# Human messages go to stderr: stdout is for what scripts read (a key, JSON).
console = Console(stderr=True)

EXIT_NO = 1  # the answer is no: not found, not valid
EXIT_USAGE = 2  # bad input or usage (as click reports usage errors)
# sysexits' EX_CONFIG: a supervisor can be told not to restart on it (systemd's
# RestartPreventExitStatus=78), as restarting cannot fix another node's secrets.
EXIT_CONFIG = 78

DataDir = typer.Option(
    None, "--data-dir", help="Data directory (default ./data; env SEARCHGATE_DATA_DIR)"
)
JsonOut = typer.Option(False, "--json", help="Print machine-readable JSON on stdout")


def settings_for(data_dir: Path | None) -> Settings:
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    return Settings(**overrides)


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def print_error(message: str) -> None:
    """One error line on stderr. The message is escaped: text in square brackets (an IP
    range, a JSON path) would otherwise be read as rich markup, vanish or fail to print."""
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


def fail(exc: SearchgateError, as_json: bool) -> NoReturn:
    if as_json:
        emit_json({"error": exc.to_dict()})
    else:
        print_error(exc.message)
    raise typer.Exit(code=EXIT_NO if isinstance(exc, NotFound | StorageUnavailable) else EXIT_USAGE)


Fail = Callable[[SearchgateError, bool], NoReturn]


@contextmanager
def services_for(data_dir: Path | None, as_json: bool, on_error: Fail = fail) -> Iterator[Services]:
    """The services on the data directory's database; service errors end the command
    through ``on_error`` (a command group's own wording and exit codes)."""
    # Imported here: the commands that build no services start without the runtime.
    from searchgate.runtime import build_services

    try:
        services = build_services(settings_for(data_dir))
    except SearchgateError as exc:
        on_error(exc, as_json)
    try:
        yield services
    except SearchgateError as exc:
        on_error(exc, as_json)
    finally:
        services.db.dispose()


class SearchgateApp(typer.Typer):
    """The ``searchgate`` command: a node whose server secrets the database refuses
    (any command that builds the services), or whose data directory cannot be written,
    ends with that one line, not a traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ServerSecretsError as exc:
            # soft_wrap: one line, however long, for logs and scripts that grep it.
            console.print(
                f"[red]error:[/red] {escape(exc.message)}", highlight=False, soft_wrap=True
            )
            sys.exit(EXIT_CONFIG)
        except StorageUnavailable as exc:
            # A read-only or full data directory, at start-up or later.
            console.print(
                f"[red]error:[/red] {escape(exc.message)}", highlight=False, soft_wrap=True
            )
            sys.exit(EXIT_NO)
