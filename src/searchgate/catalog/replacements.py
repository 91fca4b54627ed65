"""Staged replacements: a collection's new catalog uploaded in batches of any number,
then swapped in atomically.

A replacement stages its records beside the collection (``staged_records``); searches
keep seeing the collection's records until the commit, which in one transaction
replaces them with the staged ones and appends one ``rebuild`` change, so every
server's indexer builds the new index aside and swaps it in at once. Staged records
are keyed by id, so a batch sent again (a resumed upload) stages nothing twice.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from searchgate.audit import AuditLog
from searchgate.audit.tags import Action
from searchgate.catalog import changelog
from searchgate.catalog.models import CollectionRow, RecordRow, ReplacementRow, StagedRecordRow
from searchgate.catalog.service import MAX_REPORTED_INVALID, CatalogService
from searchgate.catalog.settings import CollectionSettings, infer_settings
from searchgate.catalog.validation import InvalidRecord
from searchgate.clock import Clock, aware
from searchgate.db import executemany
from searchgate.errors import Conflict, LimitExceeded, NotFound
from searchgate.permissions import Actor

EXPIRER = Actor.system("replacement-expiry")
# What ``start`` hands out: anything else names no replacement, unlooked-up.
ID_PATTERN = re.compile(r"[0-9a-f]{24}")


@dataclass(frozen=True)
class ReplacementInfo:
    id: str
    collection: str
    state: str  # open, or committed (kept until it expires, for a repeated commit)
    staged: int
    created_at: datetime
    expires_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "collection": self.collection,
            "state": self.state,
            "stagedRecords": self.staged,
            "createdAt": self.created_at.isoformat(),
            "expiresAt": self.expires_at.isoformat(),
        }


@dataclass
class StagedBatch:
    replacement: ReplacementInfo
    staged: int
    invalid: list[InvalidRecord] = field(default_factory=list)
    invalid_count: int = 0


@dataclass(frozen=True)
class Committed:
    collection: str
    replacement_id: str
    records: int
    replaced: int
    created_collection: bool
    seq: int

    def to_json(self) -> list[Any]:
        return [self.records, self.replaced, self.created_collection, self.seq]

    @classmethod
    def from_json(cls, collection: str, rid: str, stored: list[Any]) -> Committed:
        records, replaced, created, seq = stored
        return cls(collection, rid, records, replaced, created, seq)


class ReplacementService:
    def __init__(
        self, catalog: CatalogService, audit: AuditLog, clock: Clock, ttl: timedelta
    ) -> None:
        """``ttl``: a replacement that receives no batch for this long expires, and
        its staged records are removed."""
        self.catalog = catalog
        self.db = catalog.db
        self.audit = audit
        self.clock = clock
        self.ttl = ttl

    # --- reads -----------------------------------------------------------------

    def _staged_count(self, s: Session, rid: str) -> int:
        return int(
            s.scalar(
                select(func.count())
                .select_from(StagedRecordRow)
                .where(StagedRecordRow.replacement_id == rid)
            )
            or 0
        )

    def _info(self, s: Session, row: ReplacementRow) -> ReplacementInfo:
        committed = row.committed_json is not None
        return ReplacementInfo(
            id=row.id,
            collection=row.collection,
            state="committed" if committed else "open",
            staged=(
                Committed.from_json(row.collection, row.id, row.committed_json).records
                if row.committed_json is not None
                else self._staged_count(s, row.id)
            ),
            created_at=aware(row.created_at),
            expires_at=aware(row.expires_at),
        )

    def _find(self, s: Session, collection: str, rid: str, *, lock: bool = True) -> ReplacementRow:
        # Locked to the end of the transaction: a batch staged while the replacement
        # commits waits, then finds it committed.
        row = (
            s.get(ReplacementRow, rid, with_for_update=lock) if ID_PATTERN.fullmatch(rid) else None
        )
        if row is None or row.collection != collection:
            raise NotFound(
                f"no replacement {rid!r} of collection {collection!r} (it was aborted, or "
                f"expired after {self.ttl.total_seconds():.0f} s without a batch)",
                field="replacement",
            )
        return row

    def _open(self, s: Session, collection: str, rid: str) -> ReplacementRow:
        row = self._find(s, collection, rid)
        if row.committed_json is not None:
            raise Conflict(
                f"replacement {rid!r} of collection {collection!r} is committed already; "
                "start a new one to replace the collection again",
                field="replacement",
            )
        return row

    def get(self, collection: str, rid: str) -> ReplacementInfo:
        self.expire()
        with self.db.read() as s:
            return self._info(s, self._find(s, collection, rid, lock=False))

    # --- changes ---------------------------------------------------------------

    def _drop(self, s: Session, rid: str) -> int:
        result = s.execute(delete(StagedRecordRow).where(StagedRecordRow.replacement_id == rid))
        s.execute(delete(ReplacementRow).where(ReplacementRow.id == rid))
        return int(getattr(result, "rowcount", 0) or 0)

    def expire(self) -> int:
        """Removes the replacements that received no batch within the time to live;
        returns how many. Called before every replacement call."""
        now = self.clock()
        with self.db.read() as s:
            stale = s.scalars(
                select(ReplacementRow.id).where(ReplacementRow.expires_at <= now)
            ).all()
        for rid in stale:
            with self.db.write() as s:
                row = s.get(ReplacementRow, rid)
                if row is None or aware(row.expires_at) > now:
                    continue
                committed = row.committed_json is not None
                staged = self._drop(s, rid)
                self.audit.record(
                    s,
                    EXPIRER,
                    Action.DATA_REPLACEMENT_EXPIRE,
                    target=row.collection,
                    details={"replacement": rid, "staged": staged, "committed": committed},
                )
        return len(stale)

    def start(self, collection: str, *, actor: Actor) -> ReplacementInfo:
        """Opens the collection's replacement. One at a time per collection: a second
        start is refused (409) while the first is open; abort it or let it expire."""
        self.catalog._require_name(collection)
        self.expire()
        now = self.clock()
        with self.db.write() as s:
            changelog.lock(s)
            existing = s.scalar(
                select(ReplacementRow.id).where(
                    ReplacementRow.collection == collection,
                    ReplacementRow.committed_json.is_(None),
                )
            )
            if existing is not None:
                raise Conflict(
                    f"collection {collection!r} has an open replacement already; commit or "
                    "abort it (or let it expire) first",
                    field="collection",
                    replacementId=existing,
                )
            current = s.get(CollectionRow, collection)
            row = ReplacementRow(
                id=secrets.token_hex(12),
                collection=collection,
                settings_json=None if current is None else current.settings_json,
                created_at=now,
                expires_at=now + self.ttl,
            )
            s.add(row)
            s.flush()
            self.audit.record(
                s,
                actor,
                Action.DATA_REPLACEMENT_START,
                target=collection,
                details={"replacement": row.id},
            )
            return ReplacementInfo(row.id, collection, "open", 0, now, now + self.ttl)

    def stage(
        self,
        collection: str,
        rid: str,
        records: Sequence[Any],
        *,
        positions: Sequence[int] | None = None,
        position_kind: str = "index",
        unparsable: Sequence[InvalidRecord] = (),
        actor: Actor,
    ) -> StagedBatch:
        """Validates a batch as the records API does and stages its valid records by
        id (a record staged again replaces its earlier version). Renews the
        replacement's time to live."""
        limit = self.catalog.limits.max_records_per_request
        if len(records) > limit:
            raise LimitExceeded(
                f"at most {limit} records per request "
                "(SEARCHGATE_LIMIT_MAX_RECORDS_PER_REQUEST); split the batch",
                field="records",
                limit=limit,
            )
        self.expire()
        now = self.clock()
        with self.db.write() as s:
            row = self._open(s, collection, rid)
            if row.settings_json is None:
                sample = [r for r in records[:1000] if isinstance(r, dict)]
                settings = infer_settings(sample)
            else:
                settings = CollectionSettings.model_validate_json(row.settings_json)
            valid, invalid, invalid_count = self.catalog._validate_all(
                records, settings, positions, position_kind
            )
            if unparsable:
                invalid = sorted([*unparsable, *invalid], key=lambda r: r.position)
                invalid = invalid[:MAX_REPORTED_INVALID]
                invalid_count += len(unparsable)
            by_id = {rec.record_id: rec.data for rec, _raw in valid}
            if by_id and row.settings_json is None:
                # The first records of a new collection decide its settings, as the
                # first upload to it would.
                row.settings_json = settings.model_dump_json(by_alias=True)
            row.expires_at = now + self.ttl
            executemany(
                s,
                "INSERT INTO staged_records (replacement_id, record_id, data) VALUES (?, ?, ?) "
                "ON CONFLICT (replacement_id, record_id) DO UPDATE SET data = excluded.data",
                [(rid, record_id, data) for record_id, data in by_id.items()],
            )
            s.flush()
            self.audit.record(
                s,
                actor,
                Action.DATA_REPLACEMENT_BATCH,
                target=collection,
                details={"replacement": rid, "staged": len(by_id), "invalid": invalid_count},
            )
            return StagedBatch(
                replacement=self._info(s, row),
                staged=len(by_id),
                invalid=invalid,
                invalid_count=invalid_count,
            )

    def commit(self, collection: str, rid: str, *, actor: Actor) -> Committed:
        """Replaces the collection's records with the staged ones in one transaction
        with one ``rebuild`` change: before it commits searches see the old records,
        after it every index rebuilds from exactly the staged ones."""
        self.expire()
        now = self.clock()
        with self.db.write() as s:
            changelog.lock(s)
            row = self._find(s, collection, rid)
            if row.committed_json is not None:
                return Committed.from_json(collection, rid, row.committed_json)
            current = s.get(CollectionRow, collection)
            staged = self._staged_count(s, rid)
            if row.settings_json is None and current is None:
                # Nothing staged for a collection that does not exist: nothing to create.
                done = Committed(collection, rid, 0, 0, False, changelog.current_seq(s))
                self._close(s, row, done, now)
                self._commit_event(s, actor, collection, rid, 0, 0, created=False)
                return done
            if current is not None and row.settings_json is not None:
                was = CollectionSettings.model_validate_json(row.settings_json)
                now_settings = CollectionSettings.model_validate_json(current.settings_json)
                if was != now_settings:
                    raise Conflict(
                        f"the settings of {collection!r} changed while the replacement was "
                        "staged (its records were checked against the earlier ones); abort "
                        "it and start again",
                        field="settings",
                    )
            created = current is None
            if current is None:
                self.catalog._check_room(s)
                s.add(
                    CollectionRow(
                        name=collection,
                        settings_json=row.settings_json,
                        created_at=now,
                        updated_at=now,
                    )
                )
            else:
                current.updated_at = now
            s.flush()
            ops: list[tuple[str, str | None]] = [(changelog.OP_REBUILD, None)]
            if created:
                ops.insert(0, (changelog.OP_CREATE, None))
            seq = changelog.append(s, collection, ops)
            replaced = s.execute(delete(RecordRow).where(RecordRow.collection == collection))
            # The records carry the rebuild's number: no upsert change names them, so
            # an indexer takes them from the rebuild's snapshot alone.
            s.execute(
                text(
                    "INSERT INTO records (collection, record_id, data, seq) "
                    "SELECT :collection, record_id, data, :seq FROM staged_records "
                    "WHERE replacement_id = :rid"
                ),
                {"collection": collection, "seq": seq, "rid": rid},
            )
            removed = int(getattr(replaced, "rowcount", 0) or 0)
            done = Committed(collection, rid, staged, removed, created, seq)
            self._close(s, row, done, now)
            self._commit_event(s, actor, collection, rid, staged, removed, created=created)
            self.catalog._notify_on_commit(s)
            return done

    def _close(self, s: Session, row: ReplacementRow, done: Committed, now: datetime) -> None:
        s.execute(delete(StagedRecordRow).where(StagedRecordRow.replacement_id == row.id))
        row.committed_json = done.to_json()
        row.expires_at = now + self.ttl

    def _commit_event(
        self,
        s: Session,
        actor: Actor,
        collection: str,
        rid: str,
        records: int,
        replaced: int,
        *,
        created: bool,
    ) -> None:
        self.audit.record(
            s,
            actor,
            Action.DATA_REPLACEMENT_COMMIT,
            target=collection,
            details={
                "replacement": rid,
                "records": records,
                "replaced": replaced,
                "createdCollection": created,
            },
        )

    def abort(self, collection: str, rid: str, *, actor: Actor) -> int:
        """Drops the replacement and its staged records; the collection is untouched.
        Returns the staged records removed."""
        self.expire()
        with self.db.write() as s:
            self._open(s, collection, rid)
            staged = self._drop(s, rid)
            self.audit.record(
                s,
                actor,
                Action.DATA_REPLACEMENT_ABORT,
                target=collection,
                details={"replacement": rid, "staged": staged},
            )
            return staged
