"""Structured logs: one JSON object per line, keys masked wherever they appear."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from searchgate.logs import AccessRecord, JsonFormatter, configure, redact
from searchgate_client.keyformat import generate_key


def _record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("searchgate.test", logging.WARNING, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_a_line_is_one_json_object_with_time_level_logger_and_fields() -> None:
    line = JsonFormatter().format(
        _record("indexed %d records", 12, fields={"request_id": "ab12", "path": Path("/x")})
    )
    assert "\n" not in line
    entry = orjson.loads(line)
    assert entry["msg"] == "indexed 12 records"
    assert entry["level"] == "warning" and entry["logger"] == "searchgate.test"
    assert entry["request_id"] == "ab12" and entry["path"] == "/x"
    assert entry["ts"].endswith("+00:00") and "T" in entry["ts"]


def test_keys_are_masked_in_the_message_fields_and_tracebacks() -> None:
    key = generate_key()
    try:
        raise ValueError(f"bad key {key}")
    except ValueError:
        exc_info = sys.exc_info()
    record = _record("got %s", key, fields={"header": f"Bearer {key}", "n": 3})
    record.exc_info = exc_info
    line = JsonFormatter().format(record)
    assert key not in line and key[12:] not in line
    entry = orjson.loads(line)
    assert entry["msg"] == f"got {key[:8]}…[redacted]"
    assert entry["header"] == f"Bearer {key[:8]}…[redacted]" and entry["n"] == 3
    assert "ValueError" in entry["exc"] and "[redacted]" in entry["exc"]


def test_the_time_is_exact_to_the_millisecond_across_seconds() -> None:
    formatter = JsonFormatter()

    def at(created: float) -> str:
        record = _record("x")
        record.created = created
        return str(orjson.loads(formatter.format(record))["ts"])

    # 2026-12-06T02:00:00Z; the formatter keeps the second's text between lines.
    second = 1796522400
    assert at(second + 0.999) == "2026-12-06T02:00:00.999+00:00"
    assert at(second + 1.0005) == "2026-12-06T02:00:01.000+00:00"
    assert at(second + 0.25) == "2026-12-06T02:00:00.250+00:00"
    assert at(second + 86400.5) == "2026-12-07T02:00:00.500+00:00"


def test_an_access_record_formats_like_any_record() -> None:
    record = AccessRecord("searchgate.access", {"request_id": "ab12", "status": 200})
    entry = orjson.loads(JsonFormatter().format(record))
    assert entry["msg"] == "request" and entry["level"] == "info"
    assert entry["logger"] == "searchgate.access"
    assert entry["request_id"] == "ab12" and entry["status"] == 200
    # Whatever another handler asks of a record (pytest's, a plain text one) is there.
    every = logging.Formatter(
        "%(asctime)s %(msecs)d %(relativeCreated)d %(levelname)s %(name)s %(pathname)s "
        "%(filename)s %(module)s %(funcName)s %(lineno)d %(thread)s %(threadName)s "
        "%(process)s %(processName)s %(message)s"
    )
    assert every.format(record).endswith(" request")


def test_redact_leaves_other_text_alone() -> None:
    assert redact("sgk_ is the prefix; sgk_abc is too short") == (
        "sgk_ is the prefix; sgk_abc is too short"
    )
    key = generate_key()
    assert redact(f"{key},{key}") == f"{key[:8]}…[redacted],{key[:8]}…[redacted]"


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    access = logging.getLogger("uvicorn.access").disabled
    srcfile = logging._srcfile
    yield
    logging._srcfile = srcfile
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.getLogger("uvicorn.access").disabled = access


def test_configure_writes_json_lines_to_stderr(
    root_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure("warning")
    logging.getLogger("searchgate.x").info("hidden")
    logging.getLogger("uvicorn.error").warning("from uvicorn")
    logging.getLogger("searchgate.x").warning("shown %s", generate_key())
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["msg"].split()[0] for line in lines] == ["from", "shown"]
    assert lines[0]["logger"] == "uvicorn.error"
    assert "[redacted]" in lines[1]["msg"]
    assert logging.getLogger("uvicorn.access").disabled
