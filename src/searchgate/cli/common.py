"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from searchgate.config import Settings
from searchgate.errors import NotFound, SearchgateError

# Human messages go to stderr: stdout is for what scripts read (a key, JSON).
console = Console(stderr=True)

EXIT_NO = 1  # the answer is no: not found, not valid
EXIT_USAGE = 2  # bad input or usage (as click reports usage errors)

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
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False)


def fail(exc: SearchgateError, as_json: bool) -> NoReturn:
    if as_json:
        emit_json({"error": exc.to_dict()})
    else:
        print_error(exc.message)
    raise typer.Exit(code=EXIT_NO if isinstance(exc, NotFound) else EXIT_USAGE)
