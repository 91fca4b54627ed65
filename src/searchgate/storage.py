"""Storage failures: a full disk or read-only storage, told apart from other errors
wherever they surface (the operating system, SQLite, PostgreSQL, the index library),
so that a request gets an answer that says so and readiness can report it."""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from searchgate.errors import StorageFull, StorageReadOnly, StorageUnavailable

FULL = "full"
READ_ONLY = "read_only"
# What a client is told to wait before retrying; an operator has to act first.
RETRY_SECONDS = 30

_ERRNOS = {errno.ENOSPC: FULL, errno.EDQUOT: FULL, errno.EROFS: READ_ONLY}
# SQLite's primary result codes (the low byte of an extended one).
_SQLITE_CODES = {13: FULL, 8: READ_ONLY}  # SQLITE_FULL, SQLITE_READONLY
# PostgreSQL's SQLSTATEs: disk_full, and a transaction on a read-only server (a standby).
_SQLSTATES = {"53100": FULL, "25006": READ_ONLY}
# How the index library (Rust) and SQLite word them in a message.
_OS_ERROR = re.compile(r"os error (\d+)")
_MESSAGES = (
    ("database or disk is full", FULL),
    ("no space left on device", FULL),
    ("disk quota exceeded", FULL),
    ("attempt to write a readonly database", READ_ONLY),
    ("read-only file system", READ_ONLY),
)

_WHAT = {FULL: "its disk is full", READ_ONLY: "its storage is read-only"}
_FIX = {
    FULL: "an operator must free space in the data directory (or on the database server)",
    READ_ONLY: "an operator must make the storage writable again",
}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (a database driver's error) and what caused it."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        for nxt in (orig, current.__cause__, current.__context__):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def _kind_of(exc: BaseException) -> str | None:
    if isinstance(exc, StorageFull):
        return FULL
    if isinstance(exc, StorageReadOnly):
        return READ_ONLY
    if isinstance(exc, OSError) and exc.errno in _ERRNOS:
        return _ERRNOS[exc.errno]
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in _SQLITE_CODES:
            return _SQLITE_CODES[code & 0xFF]
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate in _SQLSTATES:
        return _SQLSTATES[sqlstate]
    if isinstance(exc, OSError | sqlite3.Error | ValueError | RuntimeError):
        text = str(exc).lower()
        for number in _OS_ERROR.findall(text):
            if int(number) in _ERRNOS:
                return _ERRNOS[int(number)]
        for words, kind in _MESSAGES:
            if words in text:
                return kind
    return None


def kind_of(exc: BaseException) -> str | None:
    """``full``, ``read_only``, or None when ``exc`` is no storage failure."""
    for part in _chain(exc):
        kind = _kind_of(part)
        if kind is not None:
            return kind
    return None


def storage_error(kind: str, message: str) -> StorageUnavailable:
    cls = StorageFull if kind == FULL else StorageReadOnly
    return cls(message, reason=kind, retryAfter=RETRY_SECONDS)


def storage_fault(exc: BaseException, *, saved_nothing: bool) -> StorageUnavailable | None:
    """The answer to ``exc`` when it is a storage failure, else None.

    ``saved_nothing``: the failure rolled back the request's only change (a failed
    database transaction), so the answer can promise that a retry is safe.
    """
    if isinstance(exc, StorageUnavailable):
        return exc
    kind = kind_of(exc)
    if kind is None:
        return None
    if saved_nothing:
        outcome = "nothing of this request was saved; retry it later"
    else:
        outcome = "the request may not have been completed; retry it later"
    return storage_error(
        kind, f"the server cannot write its data ({_WHAT[kind]}): {outcome} ({_FIX[kind]})"
    )


def probe(directory: Path, *, at_start: bool = False) -> StorageUnavailable | None:
    """Whether ``directory`` takes a write now: None, or what stops it. ``at_start``:
    the answer may suggest another data directory."""
    path = directory / f".write-check-{os.getpid()}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            # A block's worth: a file system with no block left refuses it.
            os.write(fd, bytes(4096))
        finally:
            os.close(fd)
        os.unlink(path)
    except OSError as exc:
        with_path = directory_fault(directory, exc, at_start=at_start)
        if with_path is not None:
            return with_path
        raise
    return None


def directory_fault(
    directory: Path, exc: OSError, *, at_start: bool = False
) -> StorageUnavailable | None:
    """The error for a data directory that cannot be created or written."""
    kind = kind_of(exc)
    if kind is None and exc.errno in (errno.EACCES, errno.EPERM):
        kind = READ_ONLY
    if kind is None:
        return None
    why = {FULL: "the disk is full", READ_ONLY: "read-only file system"}[kind]
    if exc.errno in (errno.EACCES, errno.EPERM):
        why = "permission denied"
    elif exc.errno == errno.EDQUOT:
        why = "the disk quota is used up"
    fix = {FULL: "free space there", READ_ONLY: "make it writable for this user"}[kind]
    if at_start:
        fix += ", or choose another --data-dir"
    return storage_error(kind, f"the data directory {directory} cannot be written ({why}): {fix}")


class StorageHealth:
    """This process's last storage failure of a database write, until a write succeeds
    again: readiness reports it, since a probe file can fit where a transaction cannot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fault: StorageUnavailable | None = None

    @property
    def fault(self) -> StorageUnavailable | None:
        return self._fault

    def failed(self, fault: StorageUnavailable) -> None:
        with self._lock:
            self._fault = fault

    def succeeded(self) -> None:
        if self._fault is not None:
            with self._lock:
                self._fault = None
