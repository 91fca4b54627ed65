"""Tables of the catalog: collections, records, areas and the ordered change log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from searchgate.db import Base, JsonText


class CollectionRow(Base):
    __tablename__ = "collections"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    settings_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RecordRow(Base):
    __tablename__ = "records"

    collection: Mapped[str] = mapped_column(String(64), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    data: Mapped[str] = mapped_column(Text)
    # The change sequence number of the version held here: the indexer joins on it
    # to skip versions that a later change has already replaced.
    seq: Mapped[int] = mapped_column(BigInteger)


class ChangeCounter(Base):
    """One row; updating it inside a write transaction serialises writers, so that
    sequence numbers are handed out in commit order on every database."""

    __tablename__ = "change_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)


class ChangeRow(Base):
    __tablename__ = "changes"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # Last sequence number of the same transaction: an indexer makes changes
    # visible only at such a boundary, so no upload is ever half searchable.
    batch_end: Mapped[int] = mapped_column(BigInteger)
    collection: Mapped[str] = mapped_column(String(64))
    op: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str | None] = mapped_column(String(256), nullable=True)


class AreaRow(Base):
    __tablename__ = "areas"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_params: Mapped[list[dict[str, Any]]] = mapped_column(
        "site_params_json", JsonText, default=lambda: []
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class QueryStatRow(Base):
    """How often each query was searched (with results): feeds SAYT suggestions."""

    __tablename__ = "query_stats"

    collection: Mapped[str] = mapped_column(String(64), primary_key=True)
    query: Mapped[str] = mapped_column(String(256), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IndexNodeRow(Base):
    """Each server process's index position, so that ``?wait=true`` can wait for all."""

    __tablename__ = "index_nodes"

    node: Mapped[str] = mapped_column(String(128), primary_key=True)
    applied_seq: Mapped[int] = mapped_column(BigInteger)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


Index("ix_changes_collection_seq", ChangeRow.collection, ChangeRow.seq)
