"""Writing and reading the ordered change log that feeds every search index."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from searchgate.catalog.models import ChangeCounter, ChangeRow, RecordRow
from searchgate.db import Database, executemany
from searchgate.notify import CHANGES, notify

OP_UPSERT = "upsert"
OP_DELETE = "delete"
OP_CREATE = "create"  # a new collection: its index starts empty
OP_CLEAR = "clear"  # every record of the collection goes (replace mode, before re-adds)
OP_REBUILD = "rebuild"  # settings changed or reindex asked: rebuild from the records
OP_DROP = "drop"  # the collection is gone


def lock(s: Session) -> None:
    """Takes the change counter's row lock for the rest of the write transaction.

    Called first by every catalog write: the checks that follow (does the collection
    exist, is there room for another one) then see every earlier write, so two
    uploads that create the same collection at once cannot both insert it.
    """
    s.execute(update(ChangeCounter).where(ChangeCounter.id == 1).values(seq=ChangeCounter.seq))


def allocate(s: Session, count: int) -> int:
    """Reserves ``count`` sequence numbers and returns the first.

    The row lock taken by this UPDATE is held to commit, so transactions that write
    changes commit in the order of their numbers: an indexer that has seen number N
    has seen everything below it.
    """
    last = s.execute(
        update(ChangeCounter)
        .where(ChangeCounter.id == 1)
        .values(seq=ChangeCounter.seq + count)
        .returning(ChangeCounter.seq)
    ).scalar_one()
    return int(last) - count + 1


def append(s: Session, collection: str, ops: Sequence[tuple[str, str | None]]) -> int:
    """Appends changes of one transaction; returns the last sequence number."""
    if not ops:
        return current_seq(s)
    first = allocate(s, len(ops))
    last = first + len(ops) - 1
    conn = s.connection()
    if conn.dialect.name == "postgresql":
        # One statement with the changes as arrays, sent in binary (``%b``): a
        # statement per change, even pipelined, or arrays sent as text, are two to
        # three times slower (bench/upload_backends.py).
        conn.exec_driver_sql(
            "INSERT INTO changes (seq, batch_end, collection, op, record_id) "
            "SELECT %s + n - 1, %s, %s, op, record_id "
            "FROM unnest(%b::text[], %b::text[]) WITH ORDINALITY AS t(op, record_id, n)",
            (first, last, collection, [op for op, _ in ops], [rid for _, rid in ops]),
        )
    else:
        executemany(
            s,
            "INSERT INTO changes (seq, batch_end, collection, op, record_id) "
            "VALUES (?, ?, ?, ?, ?)",
            [(first + i, last, collection, op, rid) for i, (op, rid) in enumerate(ops)],
        )
    # Wakes the indexer of every server process when this transaction commits.
    notify(s, CHANGES, str(last))
    return last


def current_seq(s: Session) -> int:
    return int(s.execute(select(ChangeCounter.seq).where(ChangeCounter.id == 1)).scalar_one())


class HeadReader:
    """``current_seq`` over a driver connection of its own, kept open.

    Every server process asks twenty times a second whether the log moved. Through a
    session each look cost about 0.5 ms of CPU (half a percent of a core, and the GIL
    taken from the requests twenty times a second); over a kept connection it costs
    about 15 µs. Not thread-safe: one reader per polling thread.
    """

    SQL = "SELECT seq FROM change_counter WHERE id = 1"

    def __init__(self, db: Database, sql: str = SQL) -> None:
        """``sql``: another one-row, one-number query to look at as cheaply."""
        self.db = db
        self.sql = sql
        self._conn: Any = None

    def __call__(self) -> int:
        if self._conn is None:
            self._conn = self.db.engine.raw_connection()
        try:
            cur = self._conn.cursor()
            try:
                cur.execute(self.sql)
                row = cur.fetchone()
            finally:
                cur.close()
            # Ends the read at once: SQLite sees the next commit on the next look, and
            # PostgreSQL never holds this connection idle in a transaction.
            self._conn.rollback()
        except Exception:
            # A broken connection (a database restart) is opened again next time.
            self.close()
            raise
        return int(row[0])

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # Already broken, perhaps: there is nothing more to release then.
            with contextlib.suppress(Exception):
                conn.close()


@dataclass(frozen=True)
class Change:
    seq: int
    batch_end: int
    collection: str
    op: str
    record_id: str | None
    data: str | None  # the record's JSON when this change still holds its current version


def read_after(s: Session, after: int, limit: int) -> list[Change]:
    q = (
        select(
            ChangeRow.seq,
            ChangeRow.batch_end,
            ChangeRow.collection,
            ChangeRow.op,
            ChangeRow.record_id,
            RecordRow.data,
        )
        .outerjoin(
            RecordRow,
            (RecordRow.collection == ChangeRow.collection)
            & (RecordRow.record_id == ChangeRow.record_id)
            & (RecordRow.seq == ChangeRow.seq),
        )
        .where(ChangeRow.seq > after)
        .order_by(ChangeRow.seq)
        .limit(limit)
    )
    return [Change(*row) for row in s.execute(q)]


def oldest_retained(s: Session) -> int | None:
    value = s.execute(select(func.min(ChangeRow.seq))).scalar()
    return None if value is None else int(value)


def prune_before(s: Session, seq: int) -> int:
    result = s.execute(delete(ChangeRow).where(ChangeRow.seq < seq))
    return int(getattr(result, "rowcount", 0) or 0)
