"""The uploader's file readers (searchgate_client.upload.formats): any bytes give
records or a FileFormatError with a line number, never anything else; records come out
whole and with their lines; and reading on from any record boundary (a resumed upload)
gives exactly the records a full read gives from there."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from searchgate_client.upload.formats import (
    FORMATS,
    FileFormatError,
    Item,
    Position,
    Refused,
    read_records,
)

LIMIT = 4096


def read_all(data: bytes, fmt: str, start: Position = Position(), limit: int = LIMIT) -> list[Any]:
    return list(read_records(io.BytesIO(data), fmt, start, limit))


def outcome(data: bytes, fmt: str) -> list[Item | Refused] | FileFormatError:
    try:
        return read_all(data, fmt)
    except FileFormatError as exc:
        return exc


# Bytes that look like the formats more often than random bytes do.
PIECES = st.sampled_from(
    [
        b"[",
        b"]",
        b"{",
        b"}",
        b",",
        b":",
        b'"',
        b"\\",
        b"\n",
        b"\r\n",
        b" ",
        b"id",
        b"1",
        b"-",
        b"true",
        b"null",
        b"\xff",
        b"\xc3\xa9",
        b"\xef\xbb\xbf",
        b"NaN",
        b"\\u12",
    ]
)
FILE_BYTES = st.one_of(st.binary(max_size=600), st.lists(PIECES, max_size=80).map(b"".join))


@settings(max_examples=400, deadline=None)
@given(data=FILE_BYTES, fmt=st.sampled_from(FORMATS))
def test_any_bytes_give_records_or_an_error_with_a_line(data: bytes, fmt: str) -> None:
    result = outcome(data, fmt)
    lines = data.count(b"\n") + 1
    if isinstance(result, FileFormatError):
        assert 1 <= result.line <= lines
        assert str(result).startswith(f"line {result.line}: ")
        return
    last = 0
    for rec in result:
        assert 1 <= rec.line <= lines
        assert rec.line >= last
        last = rec.line
        assert rec.after.offset <= len(data)
        if isinstance(rec, Item):
            assert rec.raw
            assert len(rec.raw) <= LIMIT + 1
            if fmt != "csv":
                assert b"\n" not in rec.raw


@settings(max_examples=300, deadline=None)
@given(data=FILE_BYTES, fmt=st.sampled_from(FORMATS), cut=st.integers(min_value=0))
def test_reading_on_from_any_record_boundary_gives_the_rest(
    data: bytes, fmt: str, cut: int
) -> None:
    full = outcome(data, fmt)
    if isinstance(full, FileFormatError) or not full:
        return
    k = cut % len(full)
    rest = read_all(data, fmt, full[k].after)
    assert rest == full[k + 1 :]


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
RECORDS = st.lists(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5), max_size=12)


@settings(max_examples=200, deadline=None)
@given(records=RECORDS, indent=st.sampled_from([None, 1, 4]), ascii_only=st.booleans())
def test_json_arrays_come_out_element_by_element_with_their_lines(
    records: list[dict[str, Any]], indent: int | None, ascii_only: bool
) -> None:
    text = json.dumps(records, indent=indent, ensure_ascii=ascii_only)
    items = read_all(text.encode(), "json", limit=1 << 20)
    assert [json.loads(i.raw) for i in items] == records
    assert [i.index for i in items] == list(range(len(records)))
    lines = text.split("\n")
    for item in items:
        # Each element starts on the line the reader says.
        assert lines[item.line - 1].lstrip().startswith(("{", "[", "}"))


@settings(max_examples=200, deadline=None)
@given(records=RECORDS, blank=st.sampled_from(["", "\n", "  \r\n"]))
def test_ndjson_lines_are_sent_as_written(records: list[dict[str, Any]], blank: str) -> None:
    text = "".join(json.dumps(r) + "\n" + blank for r in records)
    items = read_all(text.encode(), "ndjson", limit=1 << 20)
    assert [json.loads(i.raw) for i in items] == records
    step = 1 + blank.count("\n")
    assert [i.line for i in items] == [1 + n * step for n in range(len(records))]


CELLS = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.lists(CELLS, min_size=3, max_size=3), max_size=10))
def test_csv_rows_are_split_as_the_csv_module_reads_them(rows: list[list[str]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "title", "note"])
    writer.writerows(rows)
    data = out.getvalue().encode()
    items = read_all(data, "csv", limit=1 << 20)
    kept = [r for r in rows if any(c.strip() for c in r)]
    assert [next(csv.reader(io.StringIO(i.raw.decode(), newline=""))) for i in items] == kept


def test_lines_longer_than_the_limit_are_refused_without_stopping() -> None:
    data = b'{"id": 1}\n{"id": "' + b"x" * 100 + b'"}\n{"id": 3}\n'
    got = read_all(data, "ndjson", limit=50)
    assert [type(r).__name__ for r in got] == ["Item", "Refused", "Item"]
    assert [r.line for r in got] == [1, 2, 3]
    assert got[2].raw == b'{"id": 3}'


@pytest.mark.parametrize(
    ("data", "fmt", "line", "message"),
    [
        (b"", "json", 1, "expected a JSON array"),
        (b'{"id": 1}', "json", 1, "expected a JSON array"),
        (b'[\n{"id": 1},\n{"id": 2}\n', "json", 4, "found the end of the file"),
        (b'[\n{"id": 1}\n{"id": 2}]', "json", 3, "expected ',' or ']'"),
        (b'[{"id": 1}] x', "json", 1, "data after the end of the array"),
        (b'[\n\n{"id": \xff}]', "json", 3, "not UTF-8"),
        (b"id,id\n1,2\n", "csv", 1, "unique, non-empty column names"),
    ],
)
def test_broken_files_name_the_line(data: bytes, fmt: str, line: int, message: str) -> None:
    with pytest.raises(FileFormatError) as caught:
        read_all(data, fmt)
    assert caught.value.line == line
    assert message in caught.value.message
