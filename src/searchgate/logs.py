"""Structured logs: one JSON object per line, with the request id where there is one."""

from __future__ import annotations

import logging
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

# Anything shaped like a client key or personal API token is masked, whatever logged it.
_KEYLIKE = re.compile(r"sg[kp]_[0-9A-Za-z]{8,}")


def redact(text: str) -> str:
    if "sg" not in text:  # every masked shape starts so; most log text has none
        return text
    return _KEYLIKE.sub(lambda m: m.group(0)[:8] + "…[redacted]", text)


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        # The time up to the second, made once a second (every request writes a line);
        # one tuple, so that threads formatting at once never pair a second with
        # another second's text.
        self._second: tuple[int, str] = (-1, "")

    def _timestamp(self, created: float) -> str:
        second = int(created)
        cached, prefix = self._second
        if second != cached:
            prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (second, prefix)
        return f"{prefix}.{int((created - second) * 1000):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update({k: redact(v) if isinstance(v, str) else v for k, v in extra.items()})
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


# What a record says of its call site, which no line of ours prints, left blank.
_NO_CALL_SITE: dict[str, Any] = {
    "args": (),
    "exc_info": None,
    "exc_text": None,
    "stack_info": None,
    "pathname": "",
    "filename": "",
    "module": "",
    "funcName": "",
    "lineno": 0,
    "thread": None,
    "threadName": None,
    "process": None,
    "processName": None,
    "taskName": None,
    "relativeCreated": 0.0,
    "msg": "request",
    "levelno": logging.INFO,
    "levelname": "INFO",
}


class AccessRecord(logging.LogRecord):
    """A request's access line as a log record, made without what ``LogRecord`` works
    out about a call site (file, line, function, thread and process names): the request
    middleware makes one for every request, and the standard record cost as much as
    the rest of the line. Formatters that ask for those attributes find them blank."""

    def __init__(self, name: str, fields: dict[str, Any]) -> None:
        self.__dict__.update(_NO_CALL_SITE)
        self.name = name
        self.created = time.time()
        self.msecs = (self.created - int(self.created)) * 1000
        self.fields = fields


def configure(level: str = "info") -> None:
    # Nothing here prints thread or process names; each request's log line no longer
    # looks them up (the logging module's documented switches for this).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # Nor the file and line of the call: the switch the logging documentation gives
    # for it ("Optimization"); finding them was a twentieth of a line's cost.
    logging._srcfile = None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # The access middleware logs requests itself, with the request id.
    logging.getLogger("uvicorn.access").disabled = True
