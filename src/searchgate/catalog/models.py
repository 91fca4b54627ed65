"""Tables of the catalog: collections, records, areas and the ordered change log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Date, DateTime, Index, Integer, String, Text
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


class SearchDayRow(Base):
    """Searches per UTC day, area and collection, and how many found nothing: the
    Analytics page's totals (kept for ``analytics_retention_days``)."""

    __tablename__ = "search_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    area: Mapped[str] = mapped_column(String(64), primary_key=True)
    collection: Mapped[str] = mapped_column(String(64), primary_key=True)
    searches: Mapped[int] = mapped_column(BigInteger)
    zero_results: Mapped[int] = mapped_column(BigInteger)


class SearchQueryDayRow(Base):
    """Each query's searches per UTC day, area and collection, and how many found
    nothing: the Analytics page's top queries and top zero-result queries."""

    __tablename__ = "search_query_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    area: Mapped[str] = mapped_column(String(64), primary_key=True)
    collection: Mapped[str] = mapped_column(String(64), primary_key=True)
    query: Mapped[str] = mapped_column(String(256), primary_key=True)
    searches: Mapped[int] = mapped_column(BigInteger)
    zero_results: Mapped[int] = mapped_column(BigInteger)


class SearchRuleDayRow(Base):
    """Per UTC day, area, collection and merchandising rule: the searches the rule fired
    on and those it redirected (its redirect was the one returned)."""

    __tablename__ = "search_rule_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    area: Mapped[str] = mapped_column(String(64), primary_key=True)
    collection: Mapped[str] = mapped_column(String(64), primary_key=True)
    rule: Mapped[str] = mapped_column(String(80), primary_key=True)
    searches: Mapped[int] = mapped_column(BigInteger)
    redirects: Mapped[int] = mapped_column(BigInteger)


class IndexNodeRow(Base):
    """Each server process's index position, so that ``?wait=true`` can wait for all."""

    __tablename__ = "index_nodes"

    node: Mapped[str] = mapped_column(String(128), primary_key=True)
    applied_seq: Mapped[int] = mapped_column(BigInteger)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


Index("ix_changes_collection_seq", ChangeRow.collection, ChangeRow.seq)


class ReplacementRow(Base):
    """A staged replacement of a collection's records: batches go to ``staged_records``
    and replace the collection's records in one transaction when committed."""

    __tablename__ = "replacements"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # One open replacement per collection, checked under the change-log lock (a
    # committed one is kept until it expires, so that a repeated commit is answered).
    collection: Mapped[str] = mapped_column(String(64), index=True)
    # The settings the staged records were validated with: the collection's when the
    # replacement started, or inferred from the first batch of a new collection.
    settings_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The commit's answer, once committed: a commit sent again (its answer was lost
    # with a killed uploader) gets it again instead of a 404.
    committed_json: Mapped[list[Any] | None] = mapped_column(JsonText, nullable=True)


class StagedRecordRow(Base):
    __tablename__ = "staged_records"

    replacement_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    data: Mapped[str] = mapped_column(Text)
