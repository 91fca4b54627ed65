"""Collections and records: the source of truth every search index is derived from."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from pydantic import ValidationError
from sqlalchemy import delete, event, func, select, tuple_
from sqlalchemy.orm import Session

from searchgate.audit import AuditLog
from searchgate.audit.tags import Action
from searchgate.catalog import changelog
from searchgate.catalog.models import ChangeCounter, CollectionRow, QueryStatRow, RecordRow
from searchgate.catalog.settings import CollectionSettings, infer_settings
from searchgate.catalog.validation import (
    InvalidRecord,
    ValidRecord,
    check_collection_name,
    validate_record,
)
from searchgate.config import Limits
from searchgate.db import Database, executemany
from searchgate.errors import InvalidInput, LimitExceeded, NotFound, UploadRejected
from searchgate.permissions import Actor

MAX_REPORTED_INVALID = 1000


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    settings: CollectionSettings
    record_count: int
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "recordCount": self.record_count,
            "createdAt": self.created_at.isoformat(),
            "updatedAt": self.updated_at.isoformat(),
            "settings": self.settings.public_dict(),
        }


@dataclass
class WriteResult:
    collection: str
    seq: int
    upserted: int = 0
    deleted: int = 0
    invalid: list[InvalidRecord] = field(default_factory=list)
    invalid_count: int = 0
    created_collection: bool = False


@dataclass(frozen=True)
class CommittedBatch:
    """One committed upsert transaction, handed to this process's indexer so that it
    need not read back from the database what it was just given."""

    collection: str
    settings: CollectionSettings
    first_seq: int
    last_seq: int
    created: bool
    replaced: bool
    # (record id, parsed record, stored JSON), in change-log order from ``first_seq``
    # (after the create and clear changes, when there are some).
    records: list[tuple[str, dict[str, Any], str]]


class WriteListener(Protocol):
    """Told of every write this process makes (this process's indexer), so that it is
    indexed at once rather than at the indexer's next poll."""

    def write_started(self) -> None:
        """Before an upsert's transaction."""

    def write_ended(self, batch: CommittedBatch | None) -> None:
        """After an upsert's transaction: the committed batch, or None (nothing written)."""

    def notify(self) -> None:
        """After any other committed write (settings, deletions)."""


class NoListener:
    """For processes without an index of their own (the CLI): the servers' indexers
    find the writes in the change log."""

    def write_started(self) -> None:
        pass

    def write_ended(self, batch: CommittedBatch | None) -> None:
        pass

    def notify(self) -> None:
        pass


def parse_settings(raw: Any) -> CollectionSettings:
    try:
        return CollectionSettings.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or None
        raise InvalidInput(f"invalid settings: {err['msg']}", field=loc) from None


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class CatalogReader:
    """The catalog's reads: what an indexer needs, which is built before the catalog
    service that tells it of writes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _load(self, s: Session, name: str) -> CollectionRow | None:
        return s.get(CollectionRow, name)

    def _info(self, s: Session, row: CollectionRow) -> CollectionInfo:
        count = s.scalar(
            select(func.count()).select_from(RecordRow).where(RecordRow.collection == row.name)
        )
        return CollectionInfo(
            name=row.name,
            settings=CollectionSettings.model_validate_json(row.settings_json),
            record_count=int(count or 0),
            created_at=_aware(row.created_at),
            updated_at=_aware(row.updated_at),
        )

    def collection_names(self) -> frozenset[str]:
        """The names alone, without counting records (a key's collections are checked
        against them)."""
        with self.db.read() as s:
            return frozenset(s.scalars(select(CollectionRow.name)))

    def list_collections(self) -> list[CollectionInfo]:
        with self.db.read() as s:
            counts = dict(
                s.execute(
                    select(RecordRow.collection, func.count()).group_by(RecordRow.collection)
                ).all()
            )
            rows = s.scalars(select(CollectionRow).order_by(CollectionRow.name)).all()
            return [
                CollectionInfo(
                    name=r.name,
                    settings=CollectionSettings.model_validate_json(r.settings_json),
                    record_count=int(counts.get(r.name, 0)),
                    created_at=_aware(r.created_at),
                    updated_at=_aware(r.updated_at),
                )
                for r in rows
            ]

    def get_collection(self, name: str) -> CollectionInfo:
        with self.db.read() as s:
            row = self._load(s, name)
            if row is None:
                raise NotFound(f"collection {name!r} does not exist", field="collection")
            return self._info(s, row)

    def settings_of(self, name: str) -> CollectionSettings | None:
        with self.db.read() as s:
            row = self._load(s, name)
            return (
                None if row is None else CollectionSettings.model_validate_json(row.settings_json)
            )

    # --- for indexers ------------------------------------------------------------

    def iter_all_records(self, name: str, chunk: int = 5000) -> Iterator[list[tuple[str, str]]]:
        """Every record of a collection, read in one transaction (one snapshot), so a
        rebuilt index never holds part of an upload that committed meanwhile."""
        for _seq, part in self.iter_snapshot(name, chunk):
            yield part

    def iter_snapshot(
        self, name: str, chunk: int = 5000
    ) -> Iterator[tuple[int, list[tuple[str, str]]]]:
        """Like ``iter_all_records``, with the change-log position of the snapshot.

        The position is read by the same statement as the records, so it is exact on
        every database (one statement is one snapshot even under READ COMMITTED).
        """
        position = select(ChangeCounter.seq).where(ChangeCounter.id == 1).scalar_subquery()
        with self.db.read() as s:
            result = s.execute(
                select(RecordRow.record_id, RecordRow.data, position)
                .where(RecordRow.collection == name)
                .execution_options(yield_per=chunk)
            )
            for part in result.partitions():
                yield int(part[0][2]), [(r[0], r[1]) for r in part]

    def record_count(self, name: str) -> int:
        with self.db.read() as s:
            return int(
                s.scalar(
                    select(func.count()).select_from(RecordRow).where(RecordRow.collection == name)
                )
                or 0
            )

    def current_seq(self) -> int:
        with self.db.read() as s:
            return changelog.current_seq(s)


class CatalogService(CatalogReader):
    def __init__(
        self,
        db: Database,
        limits: Limits,
        audit: AuditLog | None = None,
        listener: WriteListener | None = None,
    ) -> None:
        """With ``audit``, writes that name an actor record an event in their own
        transaction (data-plane changes made with a client key). ``listener`` is told
        of every committed write, whichever path made it."""
        super().__init__(db)
        self.limits = limits
        self.audit = audit
        self.listener: WriteListener = listener if listener is not None else NoListener()

    # --- collections -------------------------------------------------------------

    def _require_name(self, name: str) -> None:
        problem = check_collection_name(name)
        if problem:
            raise InvalidInput(problem, field="collection")

    def _check_room(self, s: Session) -> None:
        count = s.scalar(select(func.count()).select_from(CollectionRow)) or 0
        if count >= self.limits.max_collections:
            raise LimitExceeded(
                f"at most {self.limits.max_collections} collections "
                "(SEARCHGATE_LIMIT_MAX_COLLECTIONS); delete one or raise the limit",
                field="collection",
                limit=self.limits.max_collections,
            )

    def _notify_on_commit(self, s: Session) -> None:
        # On the session rather than after the call: a write made inside the caller's
        # transaction (``delete_collection_in``) is visible only once the caller commits.
        event.listen(s, "after_commit", lambda _s: self.listener.notify(), once=True)

    def _record(
        self, s: Session, actor: Actor | None, action: Action, name: str, details: dict[str, Any]
    ) -> None:
        # After the change-log lock, as every catalog write takes it first.
        if actor is not None and self.audit is not None:
            self.audit.record(s, actor, action, target=name, details=details)

    def put_settings(
        self, name: str, settings: CollectionSettings, *, actor: Actor | None = None
    ) -> tuple[CollectionInfo, bool]:
        """Creates the collection or replaces its settings; the index is rebuilt."""
        self._require_name(name)
        now = datetime.now(UTC)
        with self.db.write() as s:
            changelog.lock(s)
            row = self._load(s, name)
            created = row is None
            if row is None:
                self._check_room(s)
                row = CollectionRow(name=name, settings_json="", created_at=now, updated_at=now)
                s.add(row)
            row.settings_json = settings.model_dump_json(by_alias=True)
            row.updated_at = now
            changelog.append(s, name, [(changelog.OP_REBUILD, None)])
            self._notify_on_commit(s)
            self._record(s, actor, Action.DATA_SETTINGS, name, {"created": created})
            s.flush()
            return self._info(s, row), created

    def delete_collection(self, name: str, *, actor: Actor | None = None) -> int:
        """Irreversible: records, settings and index go. Returns the records removed."""
        with self.db.write() as s:
            removed = self.delete_collection_in(s, name)
            self._record(s, actor, Action.DATA_COLLECTION_DELETE, name, {"records": removed})
            return removed

    def delete_collection_in(self, s: Session, name: str) -> int:
        """``delete_collection`` inside the caller's write transaction (so that the
        audit event describing it commits with it)."""
        changelog.lock(s)
        row = self._load(s, name)
        if row is None:
            raise NotFound(f"collection {name!r} does not exist", field="collection")
        result = s.execute(delete(RecordRow).where(RecordRow.collection == name))
        # What people searched in it goes too: a new collection of that name must
        # not suggest the old one's queries.
        s.execute(delete(QueryStatRow).where(QueryStatRow.collection == name))
        s.delete(row)
        changelog.append(s, name, [(changelog.OP_DROP, None)])
        self._notify_on_commit(s)
        return int(getattr(result, "rowcount", 0) or 0)

    # --- records -----------------------------------------------------------------

    def get_record(self, name: str, record_id: str) -> dict[str, Any]:
        with self.db.read() as s:
            data = s.scalar(
                select(RecordRow.data).where(
                    RecordRow.collection == name, RecordRow.record_id == record_id
                )
            )
            if data is None:
                if self._load(s, name) is None:
                    raise NotFound(f"collection {name!r} does not exist", field="collection")
                raise NotFound(f"no record with id {record_id!r} in {name!r}", field="id")
            result: dict[str, Any] = orjson.loads(data)
            return result

    def browse_records(self, name: str, after: str | None, limit: int) -> list[dict[str, Any]]:
        with self.db.read() as s:
            q = select(RecordRow.data).where(RecordRow.collection == name)
            if after is not None:
                q = q.where(RecordRow.record_id > after)
            rows = s.scalars(q.order_by(RecordRow.record_id).limit(limit)).all()
            return [orjson.loads(d) for d in rows]

    def write_records(
        self,
        name: str,
        records: Sequence[Any],
        *,
        replace: bool = False,
        fail_on_first_error: bool = False,
        positions: Sequence[int] | None = None,
        position_kind: str = "index",
        unparsable: Sequence[InvalidRecord] = (),
        actor: Actor | None = None,
    ) -> WriteResult:
        """Upserts records by id (or replaces the whole catalog) in one transaction.

        Returns only after the transaction committed: an acknowledged record is durable.
        """
        self._require_name(name)
        limit = self.limits.max_records_per_request
        if len(records) > limit:
            raise LimitExceeded(
                f"at most {limit} records per request "
                "(SEARCHGATE_LIMIT_MAX_RECORDS_PER_REQUEST); split the upload",
                field="records",
                limit=limit,
            )
        listener = self.listener
        listener.write_started()
        batch: CommittedBatch | None = None
        try:
            result, batch = self._write(
                name,
                records,
                replace,
                fail_on_first_error,
                positions,
                position_kind,
                unparsable,
                actor,
            )
            return result
        finally:
            listener.write_ended(batch)

    def _write(
        self,
        name: str,
        records: Sequence[Any],
        replace: bool,
        fail_on_first_error: bool,
        positions: Sequence[int] | None,
        position_kind: str,
        unparsable: Sequence[InvalidRecord],
        actor: Actor | None,
    ) -> tuple[WriteResult, CommittedBatch | None]:
        now = datetime.now(UTC)
        with self.db.write() as s:
            changelog.lock(s)
            row = self._load(s, name)
            created = row is None
            if row is None:
                self._check_room(s)
                sample = [r for r in records[:1000] if isinstance(r, dict)]
                settings = infer_settings(sample)
            else:
                settings = CollectionSettings.model_validate_json(row.settings_json)
            valid, invalid, invalid_count = self._validate_all(
                records, settings, positions, position_kind
            )
            if unparsable:
                invalid = sorted([*unparsable, *invalid], key=lambda r: r.position)
                invalid = invalid[:MAX_REPORTED_INVALID]
                invalid_count += len(unparsable)
            if invalid_count and fail_on_first_error:
                first = invalid[0]
                raise UploadRejected(
                    f"record at {first.position_kind} {first.position} is invalid: "
                    f"{first.reason}; nothing was applied (failOnFirstError)",
                    field=first.field,
                    invalidRecordCount=invalid_count,
                    invalidRecordDetails=[i.to_dict() for i in invalid],
                )
            # The last occurrence of an id in one request wins, as with separate calls.
            by_id: dict[str, tuple[ValidRecord, dict[str, Any]]] = {}
            for rec, raw in valid:
                by_id.pop(rec.record_id, None)
                by_id[rec.record_id] = (rec, raw)
            if created and not by_id:
                # Nothing to infer settings from and nothing to store: no collection is
                # created, so that a later upload still infers its settings.
                empty = WriteResult(
                    collection=name,
                    seq=changelog.current_seq(s),
                    invalid=invalid,
                    invalid_count=invalid_count,
                )
                return empty, None
            if created:
                s.add(
                    CollectionRow(
                        name=name,
                        settings_json=settings.model_dump_json(by_alias=True),
                        created_at=now,
                        updated_at=now,
                    )
                )
                s.flush()
            ops: list[tuple[str, str | None]] = []
            if created:
                ops.append((changelog.OP_CREATE, None))
            if replace:
                ops.append((changelog.OP_CLEAR, None))
            head = len(ops)
            ops.extend((changelog.OP_UPSERT, rid) for rid in by_id)
            last = changelog.append(s, name, ops)
            first_seq = last - len(ops) + 1 + head
            if replace:
                s.execute(delete(RecordRow).where(RecordRow.collection == name))
            rows = [
                (name, rid, rec.data, first_seq + i)
                for i, (rid, (rec, _raw)) in enumerate(by_id.items())
            ]
            self._upsert_rows(s, rows)
            self._record(
                s,
                actor,
                Action.DATA_RECORDS_WRITE,
                name,
                {
                    "mode": "replace" if replace else "upsert",
                    "upserted": len(rows),
                    "invalid": invalid_count,
                    "createdCollection": created,
                },
            )
            result = WriteResult(
                collection=name,
                seq=last,
                upserted=len(rows),
                invalid=invalid,
                invalid_count=invalid_count,
                created_collection=created,
            )
        if not ops:
            return result, None
        batch = CommittedBatch(
            collection=name,
            settings=settings,
            first_seq=last - len(ops) + 1,
            last_seq=last,
            created=created,
            replaced=replace,
            records=[(rid, raw, rec.data) for rid, (rec, raw) in by_id.items()],
        )
        return result, batch

    def _validate_all(
        self,
        records: Sequence[Any],
        settings: CollectionSettings,
        positions: Sequence[int] | None,
        position_kind: str,
    ) -> tuple[list[tuple[ValidRecord, dict[str, Any]]], list[InvalidRecord], int]:
        valid: list[tuple[ValidRecord, dict[str, Any]]] = []
        invalid: list[InvalidRecord] = []
        invalid_count = 0
        for i, raw in enumerate(records):
            rec, problem = validate_record(raw, settings, self.limits)
            if rec is not None:
                valid.append((rec, raw))
                continue
            invalid_count += 1
            if len(invalid) < MAX_REPORTED_INVALID and problem is not None:
                pos = positions[i] if positions is not None else i
                rid = raw.get(settings.id_field) if isinstance(raw, dict) else None
                invalid.append(
                    InvalidRecord(
                        position=pos,
                        position_kind=position_kind,
                        field=problem[0],
                        reason=problem[1],
                        record_id=str(rid) if isinstance(rid, str | int) else None,
                    )
                )
        return valid, invalid, invalid_count

    def _upsert_rows(self, s: Session, rows: list[tuple[str, str, str, int]]) -> None:
        """(collection, record_id, data, seq) rows, inserted or replacing the stored ones."""
        conn = s.connection()
        if conn.dialect.name == "postgresql" and rows:
            # One statement with the rows as arrays (see ``changelog.append``).
            collections, ids, data, seqs = (list(column) for column in zip(*rows, strict=True))
            conn.exec_driver_sql(
                "INSERT INTO records (collection, record_id, data, seq) "
                "SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::bigint[]) "
                "ON CONFLICT (collection, record_id) "
                "DO UPDATE SET data = excluded.data, seq = excluded.seq",
                (collections, ids, data, seqs),
            )
            return
        executemany(
            s,
            "INSERT INTO records (collection, record_id, data, seq) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (collection, record_id) "
            "DO UPDATE SET data = excluded.data, seq = excluded.seq",
            rows,
        )

    def delete_records(
        self, name: str, record_ids: Sequence[str], *, actor: Actor | None = None
    ) -> WriteResult:
        limit = self.limits.max_records_per_request
        if len(record_ids) > limit:
            raise LimitExceeded(
                f"at most {limit} ids per request (SEARCHGATE_LIMIT_MAX_RECORDS_PER_REQUEST)",
                field="ids",
                limit=limit,
            )
        with self.db.write() as s:
            changelog.lock(s)
            if self._load(s, name) is None:
                raise NotFound(f"collection {name!r} does not exist", field="collection")
            ids = list(dict.fromkeys(record_ids))
            existing: list[str] = []
            for start in range(0, len(ids), 1000):
                chunk = ids[start : start + 1000]
                existing.extend(
                    s.scalars(
                        select(RecordRow.record_id).where(
                            RecordRow.collection == name, RecordRow.record_id.in_(chunk)
                        )
                    )
                )
            for start in range(0, len(existing), 1000):
                chunk = existing[start : start + 1000]
                s.execute(
                    delete(RecordRow).where(
                        tuple_(RecordRow.collection, RecordRow.record_id).in_(
                            [(name, rid) for rid in chunk]
                        )
                    )
                )
            last = changelog.append(s, name, [(changelog.OP_DELETE, rid) for rid in existing])
            self._notify_on_commit(s)
            self._record(
                s,
                actor,
                Action.DATA_RECORDS_DELETE,
                name,
                {"requested": len(ids), "deleted": len(existing)},
            )
            return WriteResult(collection=name, seq=last, deleted=len(existing))
