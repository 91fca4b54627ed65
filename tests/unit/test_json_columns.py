"""JSON held in TEXT columns is read and written through one column type, not by hand."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import Text

import searchgate.runtime  # noqa: F401  (imports every table)
from searchgate.db import Base, JsonText

# Text the code hands over as it is: the audit details, whose exact bytes the change
# log's MAC covers, and a collection's settings (also those a staged replacement was
# validated with), read and written by their own model.
AS_TEXT = {
    "audit_events.details_json",
    "collections.settings_json",
    "replacements.settings_json",
}


def json_columns() -> list[str]:
    return sorted(
        f"{table.name}.{column.name}"
        for table in Base.metadata.tables.values()
        for column in table.columns
        if column.name.endswith("_json")
    )


def test_every_json_column_but_the_audit_details_and_settings_uses_the_json_type() -> None:
    columns = json_columns()
    assert len(columns) == 17, columns
    by_name = {f"{t.name}.{c.name}": c for t in Base.metadata.tables.values() for c in t.columns}
    loaded_by_hand = [
        name
        for name in columns
        if name not in AS_TEXT and not isinstance(by_name[name].type, JsonText)
    ]
    assert loaded_by_hand == []
    assert all(isinstance(by_name[name].type, Text) for name in AS_TEXT)


@pytest.mark.parametrize(
    "value", [None, [], {}, ["search", "sayt"], {"at": "2026-03-02T09:00:00+00:00", "n": [1, 2]}]
)
def test_the_json_type_stores_the_compact_text_the_columns_always_held(value: object) -> None:
    kind = JsonText()
    stored = kind.process_bind_param(value, None)  # type: ignore[arg-type]
    assert stored == (None if value is None else orjson.dumps(value).decode())
    assert kind.process_result_value(stored, None) == value  # type: ignore[arg-type]
