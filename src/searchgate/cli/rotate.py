"""``searchgate rotate``: the six-step key rotation, from any host, over the admin API.

The admin's personal API token comes from SEARCHGATE_ADMIN_TOKEN or --token-file, never
from an argument (arguments show in process lists and shell histories). The store is
configured the way its users know: VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE,
VAULT_CACERT, AppRole (VAULT_ROLE_ID/VAULT_SECRET_ID), the AWS SDK's environment and
profiles.
"""

from __future__ import annotations

import getpass
import inspect
import json
import math
import os
import socket
import sys
from pathlib import Path
from typing import Any

import typer
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from searchgate.cli.common import EXIT_USAGE, JsonOut, console, emit_json, print_error
from searchgate.durations import format_duration, parse_duration
from searchgate.errors import SearchgateError
from searchgate.rotation.common import Timing
from searchgate.rotation.events import (
    EXIT_ERROR,
    EXIT_STORE,
    EventKind,
    RotationEvent,
    RotationStopped,
    RunOutcome,
    RunResult,
)
from searchgate.rotation.http_backend import HttpBackend
from searchgate.rotation.runner import RotationRunner, RunOptions
from searchgate.secretstores import StoreError, open_store

TOKEN_VARIABLE = "SEARCHGATE_ADMIN_TOKEN"  # noqa: S105 (a variable name, not a token)

EXIT_CODES_HELP = (
    "Exit codes: 0 finished, nothing to do (the last rotation finished, or the key is "
    "younger than --if-older-than), dry run or aborted; 1 server error or unreachable "
    "(re-run resumes); 2 bad options; 3 a precondition failed (the admin token is refused "
    "or lacks a permission, the store, the store's key is not the primary); 4 systems did "
    "not move, or used the old key during probation; 5 the secret store failed (the old "
    "key still works); 6 verification failed; 7 another run drives this rotation; 8 "
    "--abort after the old key was deleted; 130 interrupted (re-run resumes)."
)


class Reporter:
    """Prints progress on stderr: lines for steps, a live table while waiting."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.live: Live | None = None

    def __call__(self, event: RotationEvent) -> None:
        if self.as_json:
            sys.stderr.write(json.dumps(event.to_dict(), default=str) + "\n")
            sys.stderr.flush()
            return
        if event.kind == EventKind.WAITING:
            if self.live is None:
                self.live = Live(console=console, refresh_per_second=4, transient=True)
                self.live.start()
            self.live.update(self._table(event))
            return
        self.stop()
        style = {
            EventKind.STEP: "[bold]▶[/bold] ",
            EventKind.STEP_DONE: "[green]✓[/green] ",
            EventKind.WARNING: "[yellow]![/yellow] ",
            EventKind.PLAN: "  · ",
        }.get(event.kind, "  ")
        console.print(style + escape(event.message), highlight=False)

    @staticmethod
    def _table(event: RotationEvent) -> Table:
        remaining = event.remaining_seconds
        title = event.message
        if remaining is not None:
            title += f"  [dim]({format_duration(remaining)} left)[/dim]"
        table = Table(title=title, title_justify="left", expand=False)
        for column in ("system", "state", "last seen", "requests"):
            table.add_column(column)
        colours = {"moved": "green", "quiet": "green", "waiting": "yellow", "active": "yellow"}
        for s in event.systems:
            colour = colours.get(s.state, "red")
            seen = s.last_seen_at.strftime("%H:%M:%S") if s.last_seen_at else "-"
            table.add_row(s.system, f"[{colour}]{s.state}[/{colour}]", seen, str(s.requests))
        if not event.systems:
            table.add_row("[dim](no system)[/dim]", "", "", "")
        return table

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def _duration(text: str, option: str) -> Any:
    try:
        return parse_duration(text, option)
    except SearchgateError as exc:
        print_error(exc.message)
        raise typer.Exit(EXIT_USAGE) from None


def _token(token_file: Path | None) -> str:
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            print_error(f"cannot read --token-file: {exc.strerror}")
            raise typer.Exit(EXIT_USAGE) from None
    else:
        token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        console.print(
            f"[red]error:[/red] no admin token: set {TOKEN_VARIABLE} or pass --token-file "
            "(a personal API token holding admin:keys:manage and admin:audit:read)"
        )
        raise typer.Exit(EXIT_USAGE)
    return token


def rotate(
    server: str = typer.Option(..., "--server", help="The Searchgate server's URL"),
    store: str = typer.Option(..., "--store", help="Where the key lives: vault, aws or file"),
    path: str = typer.Option(
        ..., "--path", help="Vault path (secret/searchgate/client-key), AWS secret, or file"
    ),
    quiet: str = typer.Option(
        "15m", "--quiet", help="The old key must serve no request this long before it is disabled"
    ),
    probation: str = typer.Option(
        "5m", "--probation", help="How long the old key stays disabled before its deletion"
    ),
    move_timeout: str = typer.Option(
        "30m", "--move-timeout", help="How long to wait for each system to use the new key"
    ),
    if_older_than: str | None = typer.Option(
        None, "--if-older-than", help="For cron: do nothing while the primary key is younger"
    ),
    new: bool = typer.Option(
        False,
        "--new",
        help="Start another rotation even though the last one finished and its key is "
        "still the primary (without it, a re-run after a finished rotation says so and "
        "does nothing)",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what each step would do"),
    abort: bool = typer.Option(False, "--abort", help="Roll back the unfinished rotation"),
    force: bool = typer.Option(
        False, "--force", help="Go on when systems did not move or were refused in probation"
    ),
    token_file: Path | None = typer.Option(
        None, "--token-file", help=f"File with the admin token (else ${TOKEN_VARIABLE})"
    ),
    lease: str = typer.Option(
        "60s", "--lease", help="How long another run must wait after this one stops answering"
    ),
    poll: str = typer.Option("2s", "--poll", help="How often waits look at the usage data"),
    crash_after: str | None = typer.Option(
        None, "--crash-after", envvar="SEARCHGATE_ROTATION_CRASH_AFTER", hidden=True
    ),
    as_json: bool = JsonOut,
) -> None:
    """Rotate the client key in a secret store: create a new primary key, write it to the
    store, verify it, wait until every system uses it, drain, disable and delete the old
    key, and confirm. Resumable: re-run the same command after any stop or crash."""
    if not server.startswith(("http://", "https://")):
        console.print("[red]error:[/red] --server is the server's http(s) URL")
        raise typer.Exit(EXIT_USAGE)
    lease_seconds = math.ceil(_duration(lease, "--lease").total_seconds())
    if not 2 <= lease_seconds <= 3600:
        console.print("[red]error:[/red] --lease is 2s to 1h")
        raise typer.Exit(EXIT_USAGE)
    try:
        timing = Timing(
            quiet=_duration(quiet, "--quiet"),
            probation=_duration(probation, "--probation"),
            move_timeout=_duration(move_timeout, "--move-timeout"),
        )
    except SearchgateError as exc:
        print_error(exc.message)
        raise typer.Exit(EXIT_USAGE) from None
    options = RunOptions(
        timing=timing,
        force=force,
        dry_run=dry_run,
        if_older_than=_duration(if_older_than, "--if-older-than") if if_older_than else None,
        new=new,
        lease_seconds=lease_seconds,
        poll_seconds=max(0.05, _duration(poll, "--poll").total_seconds()),
        crash_after=crash_after,
    )
    token = _token(token_file)
    try:
        secret_store = open_store(store, path)
    except StoreError as exc:
        print_error(exc.message)
        raise typer.Exit(EXIT_USAGE) from None
    holder = f"{getpass.getuser()}@{socket.gethostname()} (pid {os.getpid()})"
    backend = HttpBackend(server, token, holder=holder)
    reporter = Reporter(as_json)
    runner = RotationRunner(backend, secret_store, options, reporter)
    code = 0
    try:
        result = runner.abort("searchgate rotate --abort") if abort else runner.run()
        reporter.stop()
        _report(result, as_json)
    except RotationStopped as exc:
        code = _failed(reporter, exc, exc.exit_code, as_json)
    except StoreError as exc:
        code = _failed(reporter, exc, EXIT_STORE, as_json)
    except SearchgateError as exc:
        code = _failed(reporter, exc, EXIT_ERROR, as_json)
    except KeyboardInterrupt:
        reporter.stop()
        console.print(
            "[yellow]interrupted[/yellow]: the rotation is recorded up to its last completed "
            "step; re-run the same command to resume it, or add --abort to roll it back"
        )
        code = 130
    finally:
        backend.close()
    if code:
        raise typer.Exit(code)


rotate.__doc__ = f"{inspect.cleandoc(rotate.__doc__ or '')}\n\n{EXIT_CODES_HELP}"


def _report(result: RunResult, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_dict())
        return
    colour = "green" if result.outcome in (RunOutcome.FINISHED, RunOutcome.ABORTED) else "cyan"
    console.print(
        f"[{colour}]{result.outcome}[/{colour}]: {escape(result.message)}", highlight=False
    )


def _failed(reporter: Reporter, exc: SearchgateError | StoreError, code: int, as_json: bool) -> int:
    reporter.stop()
    body: dict[str, Any] = (
        exc.to_dict()
        if isinstance(exc, SearchgateError)
        else {"code": exc.code, "message": exc.message}
    )
    if as_json:
        emit_json({"error": body, "exitCode": code})
    console.print(f"[red]stopped[/red]: {escape(exc.message)}", highlight=False)
    return code
