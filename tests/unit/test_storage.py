"""Storage failures told apart from other errors, whichever layer words them."""

from __future__ import annotations

import errno
import sqlite3

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from searchgate import errors
from searchgate.error_status import status_of
from searchgate.storage import FULL, READ_ONLY, kind_of, storage_fault


def _sqlite(message: str, code: int) -> sqlite3.Error:
    exc = sqlite3.OperationalError(message)
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    return exc


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__("from the server")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), FULL),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), FULL),
        (OSError(errno.EROFS, "Read-only file system"), READ_ONLY),
        (_sqlite("database or disk is full", 13), FULL),
        (_sqlite("attempt to write a readonly database", 8), READ_ONLY),
        # An extended result code: SQLITE_READONLY_DBMOVED.
        (_sqlite("attempt to write a readonly database", 8 | (4 << 8)), READ_ONLY),
        (sqlite3.OperationalError("database or disk is full"), FULL),
        (OperationalError("INSERT", {}, _sqlite("database or disk is full", 13)), FULL),
        (OperationalError("INSERT", {}, _PgError("53100")), FULL),
        (OperationalError("INSERT", {}, _PgError("25006")), READ_ONLY),
        # The index library's wording of an operating system error.
        (ValueError("An IO error occurred: 'No space left on device (os error 28)'"), FULL),
        (ValueError("An IO error occurred: 'Read-only file system (os error 30)'"), READ_ONLY),
    ],
)
def test_storage_failures_are_recognised(exc: Exception, kind: str) -> None:
    assert kind_of(exc) == kind
    fault = storage_fault(exc, saved_nothing=True)
    assert fault is not None and fault.code == "storage_unavailable"
    assert fault.details["reason"] == kind
    assert status_of(fault) == (507 if kind == FULL else 503)
    assert isinstance(fault, errors.RetryLater) and fault.retry_after > 1


def test_a_cause_further_down_the_chain_counts() -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("could not save") from inner
    except RuntimeError as outer:
        assert kind_of(outer) == FULL


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOENT, "No such file or directory"),
        OSError(errno.EACCES, "Permission denied"),
        _sqlite("no such table: records", 1),
        IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")),
        OperationalError("SELECT", {}, _PgError("57P01")),
        ValueError("os error 2"),
        KeyError("disk is full"),
    ],
)
def test_other_errors_are_not_storage_failures(exc: Exception) -> None:
    assert kind_of(exc) is None
    assert storage_fault(exc, saved_nothing=True) is None


def test_the_message_promises_only_what_holds() -> None:
    rolled_back = storage_fault(OSError(errno.ENOSPC, "full"), saved_nothing=True)
    unknown = storage_fault(OSError(errno.ENOSPC, "full"), saved_nothing=False)
    assert rolled_back is not None and unknown is not None
    assert "nothing of this request was saved" in rolled_back.message
    assert "may not have been completed" in unknown.message
    read_only = storage_fault(OSError(errno.EROFS, "ro"), saved_nothing=True)
    assert read_only is not None and "read-only" in read_only.message
