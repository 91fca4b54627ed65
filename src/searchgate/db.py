"""Engine and session factory, with naming conventions that migrations rely on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import MetaData, Text, create_engine, event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from searchgate.storage import StorageHealth, storage_fault

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class JsonText(TypeDecorator[Any]):
    """A JSON value in a TEXT column, written compactly as the columns always held it
    (so the schema and the stored text stay as they were). Python None is SQL NULL.

    A value changed in place is not seen by the session: assign a new one."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        # Keys may be enum members (a rotation's steps): written as their strings.
        return (
            None if value is None else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
        )

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else orjson.loads(value)


def _sqlite_engine(url: str, begin_statement: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False}, pool_size=8)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's implicit BEGIN is switched off so that ours (below) is used.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # WAL lets searches and key checks read while an upload writes;
        # synchronous=FULL keeps an acknowledged upload across a power cut too.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin_statement)

    return engine


class Database:
    """Read and write session factories.

    On SQLite a write transaction starts with ``BEGIN IMMEDIATE``: writers queue on the
    file lock up front instead of failing when a read lock cannot be upgraded, and the
    change-log sequence numbers they take follow commit order.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, "BEGIN")
            self.write_engine = _sqlite_engine(url, "BEGIN IMMEDIATE")
        else:
            self.engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
            self.write_engine = self.engine
        self.storage = StorageHealth()
        self._read = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._write = sessionmaker(bind=self.write_engine, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction. One that fails for want of storage (a full disk, a
        read-only database) rolled back and raises ``StorageUnavailable``; ``storage``
        remembers it until a write succeeds again."""
        try:
            with self._write() as session, session.begin():
                yield session
        except (DBAPIError, OSError) as exc:
            fault = storage_fault(exc, saved_nothing=True)
            if fault is None:
                raise
            self.storage.failed(fault)
            raise fault from exc
        self.storage.succeeded()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()


def executemany(s: Session, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """Runs ``sql`` (written with ``?`` placeholders) once per row through the driver.

    Bulk uploads write two rows per record: going around the ORM's per-row parameter
    processing halves the cost of a write. ``sql`` is never built from input.
    """
    if not rows:
        return
    conn = s.connection()
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    conn.exec_driver_sql(sql, rows)
