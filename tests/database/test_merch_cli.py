"""``searchgate merch ...`` through typer's CliRunner, on SQLite and PostgreSQL: a team
keeps an area's merchandising in git, imports it as the draft, publishes, reads the
history and rolls back."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from searchgate.audit.events import AuditFilter
from searchgate.cli.main import app
from searchgate.config import Settings
from searchgate.merchandising.document import MerchandisingDocument
from searchgate.permissions import Actor
from searchgate.runtime import Services, build_services

runner = CliRunner()
AREA = "Production"
TV = {"name": "tv", "terms": ["tv", "television"]}
LAPTOP = {"name": "laptop", "terms": ["laptop", "notebook"]}
REDIRECT = {
    "name": "TV redirect",
    "triggers": [{"type": "queryEquals", "value": "tv"}],
    "redirect": "/tv",
}


@pytest.fixture
def data_dir(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEARCHGATE_DATABASE_URL", database_url)
    return tmp_path / "data"


def merch(data_dir: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["merch", *args, "--data-dir", str(data_dir)])
    return result.exit_code, result.stdout, result.stderr


def services_of(data_dir: Path) -> Services:
    return build_services(Settings(data_dir=data_dir))


def write(path: Path, **parts: Any) -> Path:
    path.write_bytes(orjson.dumps(parts))
    return path


def test_import_publish_history_rollback_and_export(data_dir: Path, tmp_path: Path) -> None:
    code, out, err = merch(data_dir, "export", "--area", AREA)
    assert code == 0, err
    assert json.loads(out) == MerchandisingDocument().wire()
    first = write(tmp_path / "one.json", synonyms=[TV], rules=[REDIRECT])
    code, out, err = merch(data_dir, "import", "--area", AREA, str(first))
    assert code == 0, err
    # The diff against live, one line per object, on stdout.
    assert out.splitlines() == ["+ synonyms: tv", "+ rules: TV redirect"]
    assert "revision 1" in err and "draft" in err
    code, out, err = merch(data_dir, "publish", "--area", AREA, "--note", "first")
    assert code == 0, err
    assert "version 1" in err
    code, out, err = merch(data_dir, "publish", "--area", AREA)
    assert code == 1 and "nothing to publish" in err
    second = write(
        tmp_path / "two.json",
        synonyms=[{**TV, "terms": ["tv", "television", "telly"]}, LAPTOP],
    )
    code, out, err = merch(data_dir, "import", "--area", AREA, str(second))
    assert code == 0, err
    assert out.splitlines() == [
        "+ synonyms: laptop",
        "~ synonyms: tv (terms)",
        "- rules: TV redirect",
    ]
    assert merch(data_dir, "publish", "--area", AREA, "--note", "laptops")[0] == 0
    code, out, err = merch(data_dir, "rollback", "--area", AREA, "--to", "1", "--note", "undo")
    assert code == 0, err
    assert "version 3" in err and "version 1" in err
    code, out, err = merch(data_dir, "history", "--area", AREA, "--json")
    assert code == 0, err
    history = json.loads(out)["versions"]
    assert [(v["number"], v["note"], v["rollbackOf"], v["changes"]) for v in history] == [
        (3, "undo", 1, 3),
        (2, "laptops", None, 3),
        (1, "first", None, 2),
    ]
    # Times as the admin API writes them.
    assert all(v["publishedAt"][10] == "T" for v in history)
    who = f"cli:{getpass.getuser()}"
    assert {v["publishedBy"] for v in history} == {who}
    code, out, err = merch(data_dir, "history", "--area", AREA)
    assert code == 0, err
    assert "undo" in out and "laptops" in out and "rollback of 1" in out
    # The live version's file, and the draft's.
    target = tmp_path / "out" / "live.json"
    code, out, err = merch(data_dir, "export", "--area", AREA, "--out", str(target))
    assert code == 0 and out == "", err
    # Version 3 is version 1's document.
    assert (
        json.loads(target.read_text())
        == MerchandisingDocument.model_validate(json.loads(first.read_text())).wire()
    )
    assert target.read_text().startswith('{\n  "format": "searchgate.merchandising/1"')
    code, out, err = merch(data_dir, "export", "--area", AREA, "--draft")
    assert code == 0, err
    assert (
        json.loads(out)
        == MerchandisingDocument.model_validate(json.loads(second.read_text())).wire()
    )
    services = services_of(data_dir)
    try:
        events = services.audit.query(
            Actor.system(), AuditFilter(action="console:merchandising:*")
        ).events
    finally:
        services.db.dispose()
    assert [e.action for e in reversed(events)] == [
        "console:merchandising:import",
        "console:merchandising:publish",
        "console:merchandising:import",
        "console:merchandising:publish",
        "console:merchandising:rollback",
    ]
    assert {e.actor_name for e in events} == {who}


def test_import_json_prints_the_draft_and_the_changes(data_dir: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "m.json", synonyms=[TV])
    code, out, err = merch(data_dir, "import", "--area", AREA, str(path), "--json")
    assert code == 0, err
    body = json.loads(out)
    assert body["draft"]["revision"] == 1 and body["draft"]["changed"] is True
    assert body["changes"][0]["name"] == "tv"
    # The revision the file was made against: refused once the draft moved on.
    code, out, err = merch(
        data_dir, "import", "--area", AREA, str(path), "--expected-revision", "0"
    )
    assert code == 1 and "revision 1" in err


def test_bad_files_and_unknown_areas_say_what_is_wrong(data_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    code, _, err = merch(data_dir, "import", "--area", AREA, str(broken))
    assert code == 2 and "broken.json" in err and "not valid JSON" in err
    wrong = write(tmp_path / "wrong.json", rules=[{**REDIRECT, "priority": -1}])
    code, _, err = merch(data_dir, "import", "--area", AREA, str(wrong))
    assert code == 2 and "rules[0].priority" in err
    code, _, err = merch(data_dir, "import", "--area", AREA, str(tmp_path / "missing.json"))
    assert code == 2 and "missing.json" in err
    code, _, err = merch(data_dir, "export", "--area", "Nowhere")
    assert code == 1 and "Nowhere" in err
    code, _, err = merch(data_dir, "rollback", "--area", AREA, "--to", "4")
    assert code == 1 and "no version 4" in err
