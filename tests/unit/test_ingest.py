"""Parsing upload bodies: JSON arrays, NDJSON and CSV, with positions for error reports."""

from __future__ import annotations

from typing import Any

import pytest

from searchgate.catalog.ingest import parse_records, sniff_format
from searchgate.errors import InvalidInput


@pytest.mark.parametrize(
    ("content_type", "data", "expected"),
    [
        ("application/x-ndjson", b"[1]", "ndjson"),
        ("application/jsonl; charset=utf-8", b"", "ndjson"),
        ("text/csv", b"[", "csv"),
        (None, b'  [{"id": 1}]', "json"),
        (None, b'{"id": 1}\n{"id": 2}', "ndjson"),
        ("application/json", b'{"id": 1}', "ndjson"),
        ("application/json", b"", "json"),
        ("application/octet-stream", b"id,title\n", "csv"),
        (None, b"id,title\n", "csv"),
    ],
)
def test_sniff_format(content_type: str | None, data: bytes, expected: str) -> None:
    assert sniff_format(content_type, data) == expected


def test_json_array_positions_are_indexes() -> None:
    parsed = parse_records(b'[{"id": "a"}, 3, {"id": "b"}]', "json")
    assert parsed.records == [{"id": "a"}, 3, {"id": "b"}]
    assert parsed.positions == [0, 1, 2]
    assert parsed.position_kind == "index"
    assert parsed.unparsable == []
    wrapped = parse_records(b'{"records": [{"id": "a"}]}', "json")
    assert wrapped.records == [{"id": "a"}]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[{", "not valid JSON"),
        (b'{"id": 1}', "expected a JSON array"),
        (b'"text"', "expected a JSON array"),
        (b"", "not valid JSON"),
    ],
)
def test_json_errors(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_records(data, "json")
    assert message in info.value.message
    assert info.value.field == "body"


def test_ndjson_lines_and_unparsable_lines() -> None:
    data = b'{"id": 1}\r\n\n  \n{"id": 2\n[1, 2]\n{"id": 3}'
    parsed = parse_records(data, "ndjson")
    assert parsed.records == [{"id": 1}, [1, 2], {"id": 3}]
    assert parsed.positions == [1, 5, 6]
    assert parsed.position_kind == "line"
    assert [(u.position, u.position_kind) for u in parsed.unparsable] == [(4, "line")]
    assert parsed.unparsable[0].reason.startswith("not valid JSON")
    assert parse_records(b"", "ndjson").records == []


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("12", 12),
        ("-7", -7),
        ("0", 0),
        ("3.25", 3.25),
        ("-0.5", -0.5),
        ("1e3", 1000.0),
        ("007", "007"),
        ("1_000", "1_000"),
        ("١٢", "١٢"),
        ("nan", "nan"),
        ("inf", "inf"),
        ("1e999", "1e999"),
        (".5", ".5"),
        ("123456789012345", 123456789012345),
        ("1234567890123456", "1234567890123456"),
        ("true", True),
        ("FALSE", False),
        ("yes", "yes"),
        ("a|b", ["a", "b"]),
        ("red | 2 | true|", ["red", 2, True]),
        (" padded ", " padded "),
        ("plain text", "plain text"),
    ],
)
def test_csv_cell_typing(cell: str, value: Any) -> None:
    parsed = parse_records(f'id,v\n1,"{cell}"\n'.encode(), "csv")
    assert parsed.records == [{"id": 1, "v": value}]
    assert type(parsed.records[0]["v"]) is type(value)


def test_csv_rows_lines_and_errors() -> None:
    data = (
        '\ufeffid, title ,price\n1,One,2\n2,Two\n3,"multi\nline",4\n\n,,\n4,Four,5,extra\n5,,6\n'
    ).encode()
    parsed = parse_records(data, "csv")
    assert parsed.records == [
        {"id": 1, "title": "One", "price": 2},
        {"id": 3, "title": "multi\nline", "price": 4},
        {"id": 5, "price": 6},
    ]
    assert parsed.positions == [2, 4, 9]
    assert [(u.position, u.reason) for u in parsed.unparsable] == [
        (3, "expected 3 columns, found 2"),
        (8, "expected 3 columns, found 4"),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"id,id\n1,2\n", "unique, non-empty column names"),
        (b"id,,x\n1,2,3\n", "unique, non-empty column names"),
        (b"id,title\n\xff\xfe,x\n", "CSV must be UTF-8"),
        (b'id,title\n1,"' + b"x" * 200_000 + b'"\n', "CSV error at line 2"),
    ],
)
def test_csv_errors(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_records(data, "csv")
    assert message in info.value.message
    assert info.value.field == "data"


def test_csv_empty_and_header_only() -> None:
    assert parse_records(b"", "csv").records == []
    assert parse_records(b"id,title\n", "csv").records == []


def test_unknown_format() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_records(b"x", "xml")
    assert info.value.field == "format"


@pytest.mark.parametrize(
    ("data", "records", "envelope_key"),
    [
        (b'{"records": [{"id": 1}], "clientKey": "k"}', [{"id": 1}], "k"),
        (b'{\n  "clientKey": "k",\n  "records": [\n    {"id": 1}\n  ]\n}\n', [{"id": 1}], "k"),
        (b'{"records": []}', [], None),
        # Anything else starting with "{" is NDJSON, one record a line.
        (b'{"records": [1]}\n{"id": 2}\n', [{"records": [1]}, {"id": 2}], None),
        (b'{"records": [1], "id": 3}', [{"records": [1], "id": 3}], None),
    ],
)
def test_a_records_object_is_told_from_ndjson(
    data: bytes, records: list[Any], envelope_key: str | None
) -> None:
    parsed = parse_records(data, sniff_format("application/json", data))
    assert parsed.records == records
    assert parsed.envelope.get("clientKey") == envelope_key
