"""Unit tests run in memory: a test here that opens a network connection, listens on a
port, opens a database or starts a process fails at once, naming what it touched. Such
a test belongs to another tier (docs/testing.md)."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
from typing import Any

import psycopg
import pytest

NETWORK = (socket.AF_INET, socket.AF_INET6)
MOVE = "move it to another tier (docs/testing.md)"


class TouchedOutside(AssertionError):
    pass


@pytest.fixture(autouse=True)
def memory_only(monkeypatch: pytest.MonkeyPatch) -> None:
    def network(what: str, original: Any) -> Any:
        def guarded(self: socket.socket, *args: Any) -> Any:
            if self.family in NETWORK:
                raise TouchedOutside(f"a unit test {what} {args[0]!r}: {MOVE}")
            return original(self, *args)

        return guarded

    for name, what in (("connect", "connects to"), ("connect_ex", "connects to")):
        monkeypatch.setattr(socket.socket, name, network(what, getattr(socket.socket, name)))
    monkeypatch.setattr(socket.socket, "bind", network("listens on", socket.socket.bind))

    sqlite_connect = sqlite3.connect

    def sqlite(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        if str(database) != ":memory:":
            raise TouchedOutside(f"a unit test opens the SQLite file {database!r}: {MOVE}")
        return sqlite_connect(database, *args, **kwargs)

    def postgres(*args: Any, **kwargs: Any) -> Any:
        raise TouchedOutside(f"a unit test connects to PostgreSQL: {MOVE}")

    def process(*args: Any, **kwargs: Any) -> Any:
        raise TouchedOutside(f"a unit test starts a process: {MOVE}")

    # Every way of starting one in the standard library goes through Popen.
    monkeypatch.setattr(subprocess.Popen, "__init__", process)

    # SQLAlchemy opens SQLite through sqlite3.dbapi2.
    monkeypatch.setattr(sqlite3, "connect", sqlite)
    monkeypatch.setattr(sqlite3.dbapi2, "connect", sqlite)
    monkeypatch.setattr(psycopg, "connect", postgres)
