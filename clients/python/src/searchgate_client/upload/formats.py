"""Reading an upload file record by record, never the whole file: CSV, JSON arrays, NDJSON.

The readers only split the file into records and remember where each one starts (its
line, and its index in a JSON array); the server parses and checks the records
themselves, so that a file is judged by the same rules whatever sends it. Every reader
can start again at a record boundary (a ``Position`` from a checkpoint) without reading
what came before, except a CSV file's header row.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

FORMATS = ("csv", "json", "ndjson")
_EXTENSIONS = {".csv": "csv", ".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson"}
CHUNK = 1 << 20
_BLANK = b" \t\r\n"


class FileFormatError(ValueError):
    """The file cannot be read on from here: a JSON array that is not well-formed, a CSV
    header or row that cannot be split. ``line`` is the file's line (1-based)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Position:
    """A record boundary: the byte offset, the line there, and the next array index."""

    offset: int = 0
    line: int = 1
    index: int = 0


@dataclass(frozen=True)
class Item:
    """One record as it is sent (one line of NDJSON, or the raw bytes of a CSV row), the
    line it starts on, its index in a JSON array, and where the next record starts."""

    raw: bytes
    line: int
    index: int | None
    after: Position


@dataclass(frozen=True)
class Refused:
    """A record refused before sending (too large to send, not UTF-8)."""

    line: int
    index: int | None
    reason: str
    after: Position


def detect_format(path: Path, given: str | None = None) -> str:
    """``given``, else the file's extension, else its first character: ``[`` is a JSON
    array, ``{`` NDJSON, anything else CSV."""
    if given is not None:
        if given not in FORMATS:
            raise ValueError(f"format is one of {', '.join(FORMATS)}")
        return given
    by_name = _EXTENSIONS.get(path.suffix.lower())
    if by_name is not None:
        return by_name
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf" + _BLANK)[:1]
    return "json" if head == b"[" else "ndjson" if head == b"{" else "csv"


def read_records(
    stream: BinaryIO, fmt: str, start: Position, limit: int
) -> Iterator[Item | Refused]:
    """The records of ``stream`` from ``start`` on; ``limit`` is the largest record (in
    bytes) that may be sent. Raises FileFormatError where the file cannot be split."""
    if fmt == "ndjson":
        return read_ndjson(stream, start, limit)
    if fmt == "json":
        return read_json_array(stream, start, limit)
    if fmt == "csv":
        return CsvReader(stream, limit).rows(start)
    raise ValueError(f"format is one of {', '.join(FORMATS)}")


# --- NDJSON ----------------------------------------------------------------------------


def _skip_line(stream: BinaryIO) -> int:
    """Reads past the end of the current line; the bytes skipped."""
    skipped = 0
    while True:
        part = stream.readline(CHUNK)
        skipped += len(part)
        if not part or part.endswith(b"\n"):
            return skipped


def read_ndjson(stream: BinaryIO, start: Position, limit: int) -> Iterator[Item | Refused]:
    """Each non-blank line is a record, sent as it is: the server says which are not
    JSON objects. A line longer than ``limit`` is refused without being held whole."""
    stream.seek(start.offset)
    offset, line = start.offset, start.line
    while True:
        raw = stream.readline(limit + 1)
        if not raw:
            return
        offset += len(raw)
        if len(raw) > limit and not raw.endswith(b"\n"):
            offset += _skip_line(stream)
            yield Refused(line, None, f"larger than {limit} bytes", Position(offset, line + 1))
        elif raw.strip(_BLANK):
            yield Item(raw.rstrip(b"\r\n"), line, None, Position(offset, line + 1))
        line += 1


# --- JSON arrays -----------------------------------------------------------------------

# A token cut by the end of the buffer is at most this long ("-Infinity", "\uXXXX"): a
# decoding error further back than that is in the file, not in the buffer.
_TOKEN_TAIL = 10


class _Text:
    """The file decoded as UTF-8, read chunk by chunk; ``pos`` is the next character not
    consumed, ``offset`` and ``line`` where it is in the file."""

    def __init__(self, stream: BinaryIO, start: Position) -> None:
        stream.seek(start.offset)
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.buf = ""
        self.pos = 0
        self.offset = start.offset
        self.line = start.line
        self.eof = False

    def fill(self, want: int = CHUNK) -> bool:
        """Reads more; False at the end of the file."""
        if self.eof:
            return False
        data = self.stream.read(max(want, CHUNK))
        try:
            text = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            # Count the lines up to the bad byte.
            good = self.decoder.decode(data[: exc.start], final=False) if exc.start else ""
            line = self.line + self.buf.count("\n", self.pos) + good.count("\n")
            raise FileFormatError(line, "the file is not UTF-8 text") from None
        self.buf = self.buf[self.pos :] + text
        self.pos = 0
        self.eof = not data
        return True

    def peek(self) -> str:
        """The next character that is not white space ("" at the end of the file)."""
        while True:
            buf, pos = self.buf, self.pos
            end = len(buf)
            while pos < end and buf[pos] in " \t\r\n":
                if buf[pos] == "\n":
                    self.line += 1
                pos += 1
            self.offset += pos - self.pos
            self.pos = pos
            if pos < end:
                return buf[pos]
            if not self.fill():
                return ""

    def take(self, n: int = 1) -> str:
        piece = self.buf[self.pos : self.pos + n]
        self.pos += n
        self.offset += len(piece.encode("utf-8"))
        self.line += piece.count("\n")
        return piece


def read_json_array(stream: BinaryIO, start: Position, limit: int) -> Iterator[Item | Refused]:
    """The elements of one JSON array, each checked with the standard library's decoder
    and sent as one line (the white space between its tokens made spaces)."""
    text = _Text(stream, start)
    decoder = json.JSONDecoder()
    index = start.index
    if start.offset == 0:
        if text.peek() == "\ufeff":
            text.take()
        first = text.peek()
        if first != "[":
            what = "an empty file" if first == "" else f"{first!r}"
            raise FileFormatError(text.line, f"expected a JSON array ('['), found {what}")
        text.take()
        if text.peek() == "]":
            text.take()
            _expect_end(text)
            return
    while True:
        if index > 0:
            # After an element: a comma and another, or the end of the array.
            sep = text.peek()
            if sep == "]":
                text.take()
                _expect_end(text)
                return
            if sep != ",":
                found = "the end of the file" if sep == "" else repr(sep)
                raise FileFormatError(
                    text.line, f"expected ',' or ']' after element {index - 1}, found {found}"
                )
            text.take()
        if text.peek() == "":
            raise FileFormatError(text.line, "the file ends inside the array")
        line = text.line
        value_end = _decode_element(text, decoder, limit)
        element = text.take(value_end - text.pos)
        raw = element.replace("\r", " ").replace("\n", " ").encode("utf-8")
        index += 1
        after = Position(text.offset, text.line, index)
        if len(raw) > limit:
            yield Refused(line, index - 1, f"larger than {limit} bytes", after)
        else:
            yield Item(raw, line, index - 1, after)


def _decode_element(text: _Text, decoder: json.JSONDecoder, limit: int) -> int:
    """Where the element at ``text.pos`` ends, reading more of the file as needed."""
    while True:
        try:
            _, end = decoder.raw_decode(text.buf, text.pos)
        except json.JSONDecodeError as exc:
            cut = exc.pos >= len(text.buf) - _TOKEN_TAIL or exc.msg.startswith("Unterminated")
            if not cut or text.eof or len(text.buf) - text.pos > limit:
                line = text.line + text.buf.count("\n", text.pos, exc.pos)
                if cut and not text.eof:
                    raise FileFormatError(
                        text.line, f"an element larger than {limit} bytes"
                    ) from None
                raise FileFormatError(line, exc.msg) from None
            text.fill(len(text.buf))
            continue
        # A number at the very end of the buffer may go on in the next chunk.
        if end < len(text.buf) or text.eof:
            return end
        text.fill(len(text.buf))


def _expect_end(text: _Text) -> None:
    rest = text.peek()
    if rest != "":
        raise FileFormatError(text.line, f"data after the end of the array ({rest!r})")


# --- CSV -------------------------------------------------------------------------------


class _Lines:
    """The file's lines for ``csv.reader``, keeping the raw bytes of the row being read
    so that it is sent exactly as written; a row past ``limit`` bytes stops the reader."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self.stream = stream
        self.limit = limit
        self.taken: list[bytes] = []
        self.size = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = self.stream.readline(self.limit + 1)
        if not raw:
            raise StopIteration
        self.size += len(raw)
        if self.size > self.limit:
            raise _RowTooLarge
        self.taken.append(raw)
        # Not UTF-8: the row is refused, but it is still split like any other.
        return raw.decode("utf-8", "surrogateescape")

    def take(self) -> tuple[bytes, int]:
        raw, count = b"".join(self.taken), len(self.taken)
        self.taken, self.size = [], 0
        return raw, count


class _RowTooLarge(Exception):
    pass


class CsvReader:
    """CSV with a header row, split into rows by the standard library's reader (the
    server's too), so that a quoted cell may span lines. The header is sent again at the
    start of every batch; ``header_lines`` is how many lines it takes."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self.stream = stream
        self.limit = limit
        stream.seek(0)
        lines = _Lines(stream, limit)
        try:
            cells = next(csv.reader(lines))
        except StopIteration:
            cells = None
        except _RowTooLarge:
            raise FileFormatError(1, f"a header row larger than {limit} bytes") from None
        except csv.Error as exc:
            raise FileFormatError(1, f"CSV error in the header: {exc}") from None
        self.header, self.header_lines = lines.take()
        if self.header and not self.header.endswith(b"\n"):
            self.header += b"\n"
        if cells is not None:
            try:
                self.header.decode("utf-8")
            except UnicodeDecodeError:
                raise FileFormatError(1, "the header row is not UTF-8 text") from None
            names = [c.strip().lstrip("\ufeff") for c in cells]
            if not all(names) or len(set(names)) != len(names):
                raise FileFormatError(1, "the header needs unique, non-empty column names")

    def rows(self, start: Position) -> Iterator[Item | Refused]:
        if not self.header:
            return
        if start.offset == 0:
            start = Position(self.stream.tell(), 1 + self.header_lines)
        self.stream.seek(start.offset)
        lines = _Lines(self.stream, self.limit - len(self.header))
        reader = csv.reader(lines)
        offset, line = start.offset, start.line
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except _RowTooLarge:
                raise FileFormatError(
                    line, f"a row larger than {lines.limit} bytes (a quote left open?)"
                ) from None
            except csv.Error as exc:
                raise FileFormatError(line, f"CSV error: {exc}") from None
            raw, count = lines.take()
            offset += len(raw)
            after = Position(offset, line + count)
            if any(cell.strip() for cell in cells):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    yield Refused(line, None, "the row is not UTF-8 text", after)
                else:
                    yield Item(raw if raw.endswith(b"\n") else raw + b"\n", line, None, after)
            line += count
