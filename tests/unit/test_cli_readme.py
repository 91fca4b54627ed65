"""The README's list of commands is the CLI's."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from searchgate.cli.main import app

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_lists_every_command() -> None:
    m = re.search(r"lists the commands \(([^)]*)\)", " ".join(README.read_text().split()))
    assert m is not None, "README.md no longer lists the commands"
    listed = {c.strip() for c in m.group(1).split(",")}
    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert listed == commands
