"""Parsing upload bodies (JSON array, NDJSON, CSV) into records with their positions."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from searchgate.catalog.validation import InvalidRecord
from searchgate.errors import InvalidInput


@dataclass
class Parsed:
    records: list[Any] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    position_kind: str = "index"
    unparsable: list[InvalidRecord] = field(default_factory=list)
    # The object around the records in the ``{"records": [...]}`` form, where the
    # protocol's ``clientKey`` may be; empty for a bare array, NDJSON or CSV.
    envelope: dict[str, Any] = field(default_factory=dict)


def sniff_format(content_type: str | None, data: bytes) -> str:
    ct = (content_type or "").split(";")[0].strip().lower()
    if ct in ("application/x-ndjson", "application/jsonl", "application/ndjson"):
        return "ndjson"
    if ct in ("text/csv", "application/csv"):
        return "csv"
    head = data.lstrip()[:1]
    if head == b"[":
        return "json"
    if head == b"{":
        return "ndjson"
    if ct == "application/json":
        return "json"
    return "csv"


def parse_records(data: bytes, fmt: str) -> Parsed:
    if fmt == "json":
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"the body is not valid JSON: {exc}", field="body") from None
        envelope: dict[str, Any] = {}
        if isinstance(value, dict) and isinstance(value.get("records"), list):
            envelope, value = value, value["records"]
        if not isinstance(value, list):
            raise InvalidInput("expected a JSON array of records", field="body")
        return _array(value, envelope)
    if fmt == "ndjson":
        return _records_object(data) or _ndjson(data)
    if fmt == "csv":
        return _csv(data)
    raise InvalidInput(f"unknown data format {fmt!r} (json, ndjson or csv)", field="format")


def _array(records: list[Any], envelope: dict[str, Any]) -> Parsed:
    return Parsed(
        records=records,
        positions=list(range(len(records))),
        position_kind="index",
        envelope=envelope,
    )


_ENVELOPE_KEYS = frozenset({"records", "clientKey"})


def _records_object(data: bytes) -> Parsed | None:
    """A body starting with "{" is NDJSON, unless it is one ``{"records": [...]}``
    object (with at most ``clientKey`` beside): no record has only those fields."""
    first, _, rest = data.lstrip().partition(b"\n")
    try:
        value = orjson.loads(first)
    except orjson.JSONDecodeError:
        # One object over several lines (or a broken first record: NDJSON reports it).
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
    else:
        # Only the first line was decoded, not the whole body: a large NDJSON upload
        # costs nothing more. Another record after it makes it NDJSON.
        if rest.strip():
            return None
    if (
        isinstance(value, dict)
        and isinstance(value.get("records"), list)
        and value.keys() <= _ENVELOPE_KEYS
    ):
        return _array(value["records"], value)
    return None


def _ndjson(data: bytes) -> Parsed:
    out = Parsed(position_kind="line")
    for n, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            out.records.append(orjson.loads(line))
            out.positions.append(n)
        except orjson.JSONDecodeError as exc:
            out.unparsable.append(
                InvalidRecord(
                    position=n, position_kind="line", field=None, reason=f"not valid JSON: {exc}"
                )
            )
    return out


# Only plain decimal notation is a number: "007" (a code), "1_000", "nan" or "١٢" stay
# text, and integers beyond 15 digits (barcodes) stay text so that no digit is lost.
_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,14})")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,15})?(?:[eE][+-]?[0-9]{1,3})?")


def _csv_value(text: str) -> Any:
    """CSV cells are text; numbers and booleans are recognised, ``a|b`` is a list."""
    if "|" in text:
        return [_csv_value(t.strip()) for t in text.split("|") if t.strip() != ""]
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        value = float(text)
        if value not in (float("inf"), float("-inf")):
            return value
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def _csv(data: bytes) -> Parsed:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"CSV must be UTF-8: {exc}", field="data") from None
    reader = csv.reader(io.StringIO(text))
    out = Parsed(position_kind="line")
    try:
        header = next(reader)
    except StopIteration:
        return out
    except csv.Error as exc:
        raise InvalidInput(f"CSV error in the header: {exc}", field="data") from None
    header = [h.strip() for h in header]
    if not all(header) or len(set(header)) != len(header):
        raise InvalidInput("the CSV header needs unique, non-empty column names", field="data")
    line_end = reader.line_num
    try:
        for row in reader:
            # A quoted cell may span lines: a row is reported by the line it starts on.
            line, line_end = line_end + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                out.unparsable.append(
                    InvalidRecord(
                        position=line,
                        position_kind="line",
                        field=None,
                        reason=f"expected {len(header)} columns, found {len(row)}",
                    )
                )
                continue
            out.records.append(
                {h: _csv_value(v) for h, v in zip(header, row, strict=True) if v != ""}
            )
            out.positions.append(line)
    except csv.Error as exc:
        raise InvalidInput(f"CSV error at line {reader.line_num}: {exc}", field="data") from None
    return out
