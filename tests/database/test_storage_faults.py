"""A write transaction that fails for want of storage says so, and the database
remembers it until a write succeeds again (readiness reports it meanwhile)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from searchgate.db import Database
from searchgate.errors import StorageReadOnly


def test_a_write_to_a_read_only_database_is_a_storage_error_until_one_succeeds(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data.db"
    writable = Database(f"sqlite:///{path}")
    with writable.write() as s:
        s.execute(text("CREATE TABLE things (name TEXT)"))
    read_only = Database(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with pytest.raises(StorageReadOnly) as caught, read_only.write() as s:
            s.execute(text("INSERT INTO things VALUES ('a')"))
        assert caught.value.code == "storage_unavailable"
        assert caught.value.details["reason"] == "read_only"
        assert "nothing of this request was saved" in caught.value.message
        assert read_only.storage.fault is caught.value
        # Reads still work, and do not clear it.
        with read_only.read() as s:
            assert s.scalar(text("SELECT count(*) FROM things")) == 0
        assert read_only.storage.fault is caught.value
        # Errors that are not about storage pass through as they are.
        with pytest.raises(ZeroDivisionError), read_only.write():
            raise ZeroDivisionError
        with writable.write() as s:
            s.execute(text("INSERT INTO things VALUES ('b')"))
        assert writable.storage.fault is None
    finally:
        read_only.dispose()
        writable.dispose()
