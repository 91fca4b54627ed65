"""The data plane (``searchgate.api``) and the Command Center (``searchgate.console``)
do not know each other: ``searchgate.webapp`` assembles them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import searchgate

PACKAGE = Path(searchgate.__file__).parent


def imported(path: Path) -> set[str]:
    """Every module a source file imports, at any depth of its code."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:
                raise AssertionError(f"{path}: relative import of {node.module}")
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def reaches(name: str, face: str) -> bool:
    return name == face or name.startswith(face + ".")


@pytest.mark.parametrize(("face", "other"), [("api", "console"), ("console", "api")])
def test_a_face_does_not_import_the_other(face: str, other: str) -> None:
    files = sorted((PACKAGE / face).rglob("*.py"))
    assert files
    # ``from searchgate import console`` is seen as ``searchgate.console``.
    crossing = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in files
        for name in imported(path)
        if reaches(name, f"searchgate.{other}")
    }
    assert not crossing, sorted(crossing)


def test_the_web_app_assembles_both_faces() -> None:
    names = imported(PACKAGE / "webapp.py")
    assert any(reaches(n, "searchgate.api") for n in names)
    assert any(reaches(n, "searchgate.console") for n in names)
