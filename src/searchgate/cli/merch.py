"""``searchgate merch ...``: an area's merchandising as a JSON file, so that a team can
keep it in git and review it: ``export`` writes the live version (or the draft),
``import`` makes a file the area's draft and prints what it changes against live,
``publish`` makes the draft the next version, ``history`` lists the versions,
``rollback`` publishes an earlier version again.

The operator at the CLI holds the database and its secrets, so acts as the system
actor (``cli:<os user>`` in the change log); every change is recorded there as one
made in the Command Center would be.

Exit codes: 0 done; 1 the answer is no (no such area or version, nothing to publish,
the draft moved on since the revision given); 2 bad input (a file that is not a
merchandising document, a note too long).
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from searchgate.cli.common import (
    EXIT_NO,
    EXIT_USAGE,
    DataDir,
    JsonOut,
    console,
    print_error,
    services_for,
)
from searchgate.cli.users import cli_actor
from searchgate.errors import Conflict, Forbidden, InvalidInput, NotFound, SearchgateError
from searchgate.merchandising.diff import Change, diff
from searchgate.merchandising.document import EMPTY
from searchgate.merchandising.inputs import document_file, parse_document
from searchgate.merchandising.service import MAX_VERSIONS_PAGE, Version
from searchgate.runtime import Services

app = typer.Typer(
    help="An area's merchandising as a JSON file: export, import (as the draft), "
    "publish, history, rollback.",
    no_args_is_help=True,
)

AreaOpt = typer.Option(..., "--area", help="The area (Production, Staging, ...)")
MARKS = {"added": "+", "removed": "-", "changed": "~"}


def _emit(value: dict[str, Any]) -> None:
    """JSON on stdout, times as the admin API writes them."""
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


def _fail(exc: SearchgateError, as_json: bool) -> NoReturn:
    if as_json:
        _emit({"error": exc.to_dict()})
    else:
        print_error(exc.message)
    no = isinstance(exc, NotFound | Conflict | Forbidden)
    raise typer.Exit(EXIT_NO if no else EXIT_USAGE)


def _services(data_dir: Path | None, as_json: bool) -> AbstractContextManager[Services]:
    return services_for(data_dir, as_json, _fail)


def change_line(c: Change) -> str:
    """One line of a diff: ``+ rules: Summer TV banner``, ``~ synonyms: tv (terms)``."""
    fields = f" ({', '.join(c.fields)})" if c.fields else ""
    return f"{MARKS[c.change]} {c.kind}: {c.name}{fields}"


def _read(path: Path) -> Any:
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}: {exc.strerror or exc}", field="file") from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: the file is not valid JSON: {exc}", field="file") from None


@app.command("export")
def export(
    area: str = AreaOpt,
    draft: bool = typer.Option(False, "--draft", help="The draft instead of the live version"),
    out: Path | None = typer.Option(None, "--out", help="Write to this file (default: stdout)"),
    data_dir: Path | None = DataDir,
) -> None:
    """Write the area's live merchandising (or its draft) as a JSON file."""
    with _services(data_dir, False) as services:
        merch = services.merchandising
        if draft:
            document = merch.draft(cli_actor(), area).document
            what = "the draft"
        else:
            live = merch.live_version(cli_actor(), area)
            document = live.document if live is not None else EMPTY
            what = f"live version {live.number}" if live is not None else "nothing live (empty)"
    data = document_file(document)
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    console.print(f"{escape(area)}: {what} written to {escape(str(out))}")


@app.command("import")
def import_file(
    file: Path = typer.Argument(..., help="A file written by export ('-': stdin)"),
    area: str = AreaOpt,
    expected_revision: int | None = typer.Option(
        None,
        "--expected-revision",
        min=0,
        help="Refuse when the draft is no longer at this revision (someone changed it)",
    ),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Make the file the area's draft and print its changes against live.

    Nothing changes for shoppers until the draft is published."""
    with _services(data_dir, as_json) as services:
        document = parse_document(_read(file))
        merch = services.merchandising
        saved = merch.save_draft(cli_actor(), area, document, expected_revision, imported=True)
        live = merch.live_version(cli_actor(), area)
    changes = diff(live.document if live is not None else EMPTY, saved.document)
    if as_json:
        _emit({"draft": saved.to_dict(), "changes": [c.to_dict() for c in changes]})
        return
    for c in changes:
        sys.stdout.write(change_line(c) + "\n")
    against = f"live version {live.number}" if live is not None else "nothing live"
    console.print(
        f"{escape(area)}: the draft is now revision {saved.revision}, with {len(changes)} "
        f"change(s) against {against}.",
        soft_wrap=True,
    )
    console.print(
        f"Publish it with: searchgate merch publish --area {escape(area)} --note '...'",
        soft_wrap=True,
    )


@app.command("publish")
def publish(
    area: str = AreaOpt,
    note: str = typer.Option("", "--note", help="What this version changes, for the history"),
    expected_revision: int | None = typer.Option(
        None, "--expected-revision", min=0, help="Publish only the draft revision you reviewed"
    ),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Publish the area's draft as its next version (live at once)."""
    with _services(data_dir, as_json) as services:
        version = services.merchandising.publish(cli_actor(), area, note, expected_revision)
    if as_json:
        _emit({"version": version.to_dict()})
        return
    console.print(f"{escape(area)}: published version {version.number}")


@app.command("history")
def history(
    area: str = AreaOpt,
    limit: int = typer.Option(
        50, "--limit", min=1, max=MAX_VERSIONS_PAGE, help="Versions to list, newest first"
    ),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """The area's published versions, newest first, with how many objects each changed."""
    with _services(data_dir, as_json) as services:
        merch = services.merchandising
        versions = merch.versions(cli_actor(), area, limit)
        # The version before the oldest listed, to count that one's changes too.
        oldest = versions[-1].number if versions else 1
        before = merch.version(cli_actor(), area, oldest - 1) if oldest > 1 else None
    rows = [
        (v, _changes(v, versions[i + 1] if i + 1 < len(versions) else before))
        for i, v in enumerate(versions)
    ]
    if as_json:
        _emit({"versions": [{**v.summary(), "changes": n} for v, n in rows]})
        return
    if not rows:
        console.print(f"{escape(area)}: nothing published yet")
        return
    table = Table("version", "published", "by", "changes", "note")
    for v, n in rows:
        note = v.note + (f" (rollback of {v.rollback_of})" if v.rollback_of else "")
        table.add_row(
            str(v.number),
            v.published_at.isoformat()[:19].replace("T", " "),
            v.published_by,
            str(n),
            note.strip(),
        )
    Console(width=200).print(table)


def _changes(version: Version, before: Version | None) -> int:
    return len(diff(before.document if before is not None else EMPTY, version.document))


@app.command("rollback")
def rollback(
    area: str = AreaOpt,
    to: int = typer.Option(..., "--to", min=1, help="The version whose document comes back"),
    note: str = typer.Option("", "--note", help="Why, for the history"),
    data_dir: Path | None = DataDir,
    as_json: bool = JsonOut,
) -> None:
    """Publish version N's document again, as a new version (the draft is left alone)."""
    with _services(data_dir, as_json) as services:
        version = services.merchandising.rollback(cli_actor(), area, to, note)
    if as_json:
        _emit({"version": version.to_dict()})
        return
    console.print(f"{escape(area)}: version {version.number} is live, with version {to}'s document")
