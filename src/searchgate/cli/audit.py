"""``searchgate audit verify``: checks the change log's MAC chain.

Exit status 0 when every event is intact, 1 when any is not (each problem names its
event), 2 on a usage error.
"""

from __future__ import annotations

from pathlib import Path

import typer

from searchgate.cli.common import DataDir, JsonOut, console, emit_json, fail, settings_for
from searchgate.errors import SearchgateError
from searchgate.runtime import build_services

app = typer.Typer(help="The tamper-evident change log.")


@app.command("verify")
def verify(
    anchor: str | None = typer.Option(
        None,
        "--anchor",
        help="'seq:mac' printed by an earlier verify: also proves nothing up to it was cut",
    ),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Recompute every event's MAC and link; report any edited, deleted or reordered
    event. Needs the same audit key as the server (SEARCHGATE_AUDIT_KEY or the
    secrets file in the data directory)."""
    services = build_services(settings_for(data_dir))
    try:
        report = services.audit.verify(anchor)
    except SearchgateError as exc:
        fail(exc, as_json)
        return
    finally:
        services.db.dispose()
    if as_json:
        emit_json(
            {
                "ok": report.ok,
                "checked": report.checked,
                "anchor": report.anchor,
                "problems": [
                    {"seq": p.seq, "kind": p.kind, "message": p.message} for p in report.problems
                ],
            }
        )
    elif report.ok:
        console.print(f"change log intact: {report.checked} events verified")
        console.print(f"anchor (keep it elsewhere; pass it with --anchor later): {report.anchor}")
    else:
        console.print(
            f"[red]change log NOT intact[/red]: {len(report.problems)} problem(s) "
            f"in {report.checked} events"
        )
        for p in report.problems:
            console.print(f"  event {p.seq} [{p.kind}]: {p.message}")
    raise typer.Exit(0 if report.ok else 1)
