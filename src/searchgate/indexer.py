"""Feeds one process's search indexes from the database's ordered change log.

The database is the source of truth; an index is derived from it and can always be
rebuilt. Changes become searchable only at transaction boundaries, so an upload is
never half visible, and ``wait_for`` lets a caller return once its upload is
searchable.

The log holds which records changed, not their past versions: an upsert is applied
with the record's current version, or skipped when a later change replaced it. So the
index matches the database at a boundary only once every such later change is applied
too; the indexer commits only at boundaries where that holds (see ``_consistent``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from searchgate.catalog import changelog
from searchgate.catalog.models import IndexNodeRow
from searchgate.catalog.service import CatalogReader, CommittedBatch
from searchgate.catalog.settings import CollectionSettings
from searchgate.db import Database
from searchgate.engines.tantivy.engine import TantivyEngine

log = logging.getLogger("searchgate.indexer")

CHUNK = 5000
Progress = Callable[[int, int], None]
# A process whose index position is older than this is taken to be gone.
NODE_LIVE_SECONDS = 10.0
# The change log keeps at least this many changes beyond what every live process has
# indexed, so that a process restarting after a short stop catches up instead of
# rebuilding; older changes are pruned every PRUNE_SECONDS.
RETAIN_CHANGES = 100_000
PRUNE_SECONDS = 60.0
# How often the indexing thread lets searches use segments merged in the background.
MERGE_CHECK_SECONDS = 2.0
# Batches handed over by this process's uploads, kept while an earlier change is missing.
HANDOFF_BATCHES = 8


class Indexer:
    def __init__(
        self,
        db: Database,
        catalog: CatalogReader,
        engine: TantivyEngine,
        node: str,
        poll_seconds: float = 0.05,
        commit_seconds: float = 1.0,
        idle_seconds: float = 0.15,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.engine = engine
        self.node = node
        self.poll_seconds = poll_seconds
        self.commit_seconds = commit_seconds
        self.idle_seconds = idle_seconds
        self.monotonic = monotonic
        # The highest change someone waits for (``wait_for``), since when changes
        # applied here wait for a commit, and when the last one was applied. The
        # indexing thread commits once no change came for ``idle_seconds`` (an upload
        # is searchable soon after it is answered), and under a steady stream at most
        # every ``commit_seconds``, unless someone waits: each commit ends tantivy
        # segments that are merged later, so committing after every upload batch of a
        # bulk load costs a fifth of the indexing throughput.
        self._waiting = 0
        self._dirty_since: float | None = None
        self._changed_at = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._applied = threading.Condition()
        # One pass at a time: the background thread, ``searchgate reindex`` and tests
        # may all drive the same index writers.
        self._work = threading.RLock()
        self._thread: threading.Thread | None = None
        self._last_heartbeat = 0.0
        self._last_prune = time.monotonic()
        self._last_merge_check = time.monotonic()
        self.last_error: str | None = None
        # The change a failed pass left unapplied: ``last_error`` stays until it is.
        self._failed_seq = 0
        self._settings: dict[str, CollectionSettings | None] = {}
        # Upserts skipped because a later change replaced the record, until that change
        # is applied; and the position a rebuilt index (read from a newer snapshot)
        # needs before the index again matches the database at some boundary.
        self._outstanding: set[tuple[str, str]] = set()
        self._not_before = 0
        # Collection -> change-log position of the snapshot its index was rebuilt from.
        self._rebuilt_at: dict[str, int] = {}
        # Every change up to here is in the index writers, committed or not.
        self._position = engine.applied_seq()
        # Consecutive upserts of one collection, indexed together (one delete for all).
        self._group: list[tuple[str, dict[str, Any], str]] = []
        self._group_collection = ""
        # Batches committed by this process, by first sequence number (see write_ended).
        self._handoff: dict[int, CommittedBatch] = {}
        # Held by an upload of this process from its start to its hand-over, and by
        # the indexing thread while it builds documents (see ``write_started``).
        self._feeding = threading.RLock()
        # Where the log ends, read cheaply: the indexing thread looks 20 times a second.
        self._head = changelog.HeadReader(db)

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Repairs and catches up in the background: the process answers /healthz at
        once, and /readyz reports ready once the first pass is done."""
        self._thread = threading.Thread(target=self._run, name="searchgate-indexer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._work:
            self._head.close()
        self._forget_nodes({self.node})

    def notify(self, _payload: str = "") -> None:
        """The change log moved (this process's write, or another's NOTIFY)."""
        self._wake.set()

    def want(self, seq: int) -> None:
        """Someone waits for change ``seq`` (here, or an upload with ``?wait=true`` on
        another node): it is committed as soon as it is applied, not at the timed commit."""
        with self._applied:
            self._waiting = max(self._waiting, seq)
        self._wake.set()

    def want_payload(self, payload: str) -> None:
        """``want`` for a WAITING notification's payload."""
        if payload.isdigit():
            self.want(int(payload))

    @property
    def ready(self) -> bool:
        """True once the index was repaired and caught up with the log after start."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._ready.is_set():
                    self.repair()
                    self._forget_dead_twins()
                # The first pass after a start makes its changes searchable at once.
                self.catch_up(timed=self._ready.is_set())
                if time.monotonic() - self._last_prune >= PRUNE_SECONDS:
                    self.prune()
                if time.monotonic() - self._last_merge_check >= MERGE_CHECK_SECONDS:
                    self._last_merge_check = time.monotonic()
                    self.engine.pick_up_merges()
                if not self._ready.is_set():
                    with self._applied:
                        self._ready.set()
                        self._applied.notify_all()
                with self._work:  # not between a hand-over's failure and its report
                    if self._position >= self._failed_seq:
                        self.last_error = None
                        self._failed_seq = 0
            except Exception as exc:  # keep indexing alive; readiness reports the error
                self._failed(exc, 0)
                self._stop.wait(1.0)
            self._wake.wait(self._next_wait())
            self._wake.clear()

    def _next_wait(self) -> float:
        """Until the next poll, or the timed commit of what is applied, if sooner: the
        poll may be slow when notifications wake this thread (``notify``)."""
        if self._dirty_since is None:
            return self.poll_seconds
        due = (
            min(self._dirty_since + self.commit_seconds, self._changed_at + self.idle_seconds)
            - self.monotonic()
        )
        # Overdue after a pass: the commit waits for a transaction boundary, which
        # only a further change brings (it wakes this thread).
        return self.poll_seconds if due <= 0 else min(self.poll_seconds, due)

    def _failed(self, exc: Exception, seq: int) -> None:
        """Reports a failed pass (readiness shows ``last_error`` until a pass applies
        change ``seq``) and starts again from the last commit."""
        with self._work:
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._failed_seq = max(self._failed_seq, seq)
        log.error("indexing failed; retrying from the last commit", exc_info=exc)
        self._recover()

    def _recover(self) -> None:
        """Drops what the failed pass applied but did not commit: the next pass starts
        again from the last committed position."""
        with self._work:
            self._settings.clear()
            self._rebuilt_at.clear()
            self._outstanding.clear()
            self._group.clear()
            self._handoff.clear()
            try:
                self.engine.reset()
            except Exception:
                log.exception("could not reset the index writers")
            self._position = self.engine.applied_seq()
            self._dirty_since = None

    # --- state ---------------------------------------------------------------------

    @property
    def applied_seq(self) -> int:
        return self.engine.applied_seq()

    def lag(self) -> int:
        return max(self.catalog.current_seq() - self.applied_seq, 0)

    def wait_for(self, seq: int, timeout: float) -> bool:
        """True once change ``seq`` is searchable in this process's indexes."""
        deadline = time.monotonic() + timeout
        self.want(seq)
        with self._applied:
            # Before the first pass the position read from disk may not belong to this
            # database (it is rebuilt then), so it proves nothing.
            while not self._ready.is_set() or self.engine.applied_seq() < seq:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._applied.wait(min(remaining, 0.5))
        return True

    # --- work ----------------------------------------------------------------------

    def repair(self, progress: Progress | None = None) -> None:
        """Brings every index in line with the database after a start or a crash."""
        with self._feeding, self._work:
            if self._position != self.engine.applied_seq():
                # Uncommitted changes are applied again below, or rebuilt over.
                self._recover()
            with self.db.read() as s:
                head = changelog.current_seq(s)
                oldest = changelog.oldest_retained(s)
            applied = self.engine.applied_seq()
            # When the log no longer holds every change after this index's position
            # (pruned, or another database), only a rebuild from the records is right.
            full = applied > head or (applied < head and (oldest is None or oldest > applied + 1))
            collections = {c.name: c.settings for c in self.catalog.list_collections()}
            for name in self.engine.collections():
                if name not in collections:
                    self.engine.drop(name)
            for name, settings in collections.items():
                if full or not self.engine.prepare(name, settings):
                    log.info("rebuilding index of collection %s", name)
                    self._rebuild(name, settings, progress)
            # Rebuilt indexes hold at least every change up to ``head``; changes after
            # it are applied again by the catch-up, which is idempotent.
            self._commit(head if full else applied)

    def _rebuild(self, name: str, settings: CollectionSettings, progress: Progress | None) -> int:
        total = self.catalog.record_count(name)
        done = 0

        snapshot: int | None = None

        def chunks() -> Iterator[list[tuple[str, str]]]:
            nonlocal done, snapshot
            for seq, chunk in self.catalog.iter_snapshot(name, CHUNK):
                snapshot = seq
                yield chunk
                done += len(chunk)
                if progress is not None:
                    progress(done, max(total, done))

        count = self.engine.rebuild(name, settings, chunks())
        if snapshot is not None:
            # Changes of this collection up to the snapshot are in the rebuilt index
            # already: applying them again (a catch-up after a repair) is wasted work.
            self._rebuilt_at[name] = snapshot
        # The records were read from a snapshot at least this recent.
        self._not_before = max(self._not_before, self.catalog.current_seq())
        self._resolve_all(name)
        return count

    def _settings_for(self, name: str) -> CollectionSettings | None:
        if name not in self._settings:
            self._settings[name] = self.catalog.settings_of(name)
        return self._settings[name]

    def catch_up(self, progress: Progress | None = None, timed: bool = False) -> int:
        """Applies every committed change; returns how many were applied.

        Commits at the end of the log, and during a long pass every ``CHUNK`` changes
        or so, always at a transaction boundary where the index matches the database.
        ``timed`` (the indexing thread): the commit at the end waits until it is due
        (see ``_commit_due``); a one-off pass (reindex, tests) commits at once.
        The final commit waits for tantivy's indexing threads: it runs without holding
        off this process's uploads.
        """
        with self._feeding:
            count = self._apply_log(progress)
        with self._work:
            position = self._position
            if (
                position > self.engine.applied_seq()
                and self._at_boundary(position)
                and (not timed or self._commit_due())
            ):
                self._commit(position)
            else:
                if position == self.engine.applied_seq():
                    self._dirty_since = None
                self._heartbeat()
        return count

    def _commit_due(self) -> bool:
        if self.commit_seconds <= 0 or self._waiting > self.engine.applied_seq():
            return True
        now = self.monotonic()
        if self._dirty_since is None:
            self._dirty_since = self._changed_at = now
        return (
            now - self._changed_at >= self.idle_seconds
            or now - self._dirty_since >= self.commit_seconds
        )

    def _changed(self) -> None:
        """Changes were applied, to be committed when due (``_commit_due``)."""
        self._changed_at = self.monotonic()
        if self._dirty_since is None:
            self._dirty_since = self._changed_at

    def _apply_log(self, progress: Progress | None) -> int:
        with self._work:
            self._take_handoff()
            applied = self._position
            head = self._head()
            if head <= applied:
                return 0
            self._settings.clear()
            count = 0
            uncommitted = applied - self.engine.applied_seq()
            while True:
                if self._handoff:
                    self._take_handoff()
                    applied = self._position
                with self.db.read() as s:
                    changes = changelog.read_after(s, applied, CHUNK)
                if not changes:
                    break
                if changes[0].seq > applied + 1:
                    # Sequence numbers have no gaps, so the log was pruned past this
                    # index (it was stopped, or stalled, for long): rebuild from records.
                    log.warning("change log pruned past this index; rebuilding")
                    self.repair()
                    return count
                for ch in changes:
                    self._apply(ch)
                    applied = self._position = ch.seq
                    count += 1
                    uncommitted += 1
                    if uncommitted >= CHUNK and self._consistent(ch):
                        self._commit(applied)
                        uncommitted = 0
                if progress is not None:
                    progress(applied, max(head, applied))
                if len(changes) < CHUNK:
                    break
            self._flush_group()
            if count:
                self._changed()
            return count

    # --- batches written by this process --------------------------------------------

    def write_started(self) -> None:
        """Holds off the indexing thread's document building until ``write_ended``.

        Both are Python work, and tantivy releases the GIL at every document it is
        given: run side by side, the indexing thread would wait for the GIL at every
        document while the upload is validated.
        """
        self._feeding.acquire()

    def write_ended(self, batch: CommittedBatch | None) -> None:
        """Indexes a batch this process just committed, from the records it holds: it
        need not be read back from the database. The indexing thread commits it (or,
        when an earlier change is missing, reads it from the database like any other).
        """
        try:
            if batch is not None:
                with self._work:
                    try:
                        self._handoff[batch.first_seq] = batch
                        self._take_handoff()
                    except Exception as exc:
                        # The batch is committed: its writer is answered all the same,
                        # and the indexing thread applies it again from the change log.
                        self._failed(exc, batch.last_seq)
        finally:
            self._feeding.release()
            self._wake.set()

    def _take_handoff(self) -> None:
        """Applies the handed-over batches that continue the log from ``_position``."""
        while True:
            batch = self._handoff.pop(self._position + 1, None)
            if batch is None or not self._apply_batch(batch):
                break
            self._position = batch.last_seq
            self._changed()
        for first in [f for f in self._handoff if f <= self._position]:
            del self._handoff[first]
        while len(self._handoff) > HANDOFF_BATCHES:
            del self._handoff[min(self._handoff)]

    def _apply_batch(self, batch: CommittedBatch) -> bool:
        """False, with nothing applied, when the batch needs the general path."""
        self._flush_group()
        name = batch.collection
        rebuilt = self._rebuilt_at.get(name)
        if rebuilt is not None:
            if batch.last_seq <= rebuilt:
                return True
            del self._rebuilt_at[name]
        # After a clear, or in an index just created, no document of these ids is left
        # to replace.
        fresh = batch.replaced
        if batch.created and not self.engine.prepare(name, batch.settings):
            self.engine.rebuild(name, batch.settings, [])
            fresh = True
        elif not self.engine.prepare(name, batch.settings):
            return False
        self._settings[name] = batch.settings
        if batch.replaced:
            self._resolve_all(name)
            self.engine.clear(name)
        elif self._outstanding:
            for record_id, _record, _source in batch.records:
                self._outstanding.discard((name, record_id))
        self.engine.upsert_many(name, batch.records, replace=not fresh)
        return True

    def _at_boundary(self, seq: int) -> bool:
        return seq >= self._not_before and not self._outstanding

    def _consistent(self, ch: changelog.Change) -> bool:
        """Whether the index, with every change up to ``ch`` applied, matches the
        database as it was when ``ch``'s transaction committed."""
        return ch.seq == ch.batch_end and self._at_boundary(ch.seq)

    def _commit(self, seq: int) -> None:
        self._flush_group()
        with self._applied:
            self.engine.commit(seq)
            self._applied.notify_all()
        self._position = seq
        self._dirty_since = None
        self._heartbeat(force=True)

    def _flush_group(self) -> None:
        if self._group:
            group, self._group = self._group, []
            self.engine.upsert_many(self._group_collection, group)

    def _apply(self, ch: changelog.Change) -> None:
        name = ch.collection
        if self._group and (
            ch.op != changelog.OP_UPSERT or ch.data is None or name != self._group_collection
        ):
            self._flush_group()
        rebuilt = self._rebuilt_at.get(name)
        if rebuilt is not None:
            if ch.seq <= rebuilt:
                return
            del self._rebuilt_at[name]
        if ch.op == changelog.OP_DROP:
            self._settings.pop(name, None)
            self._resolve_all(name)
            self.engine.drop(name)
            return
        if ch.op == changelog.OP_REBUILD:
            self._settings.pop(name, None)
        settings = self._settings_for(name)
        if settings is None:
            # Deleted later in the log; its drop follows and resolves what is pending.
            if ch.op == changelog.OP_UPSERT and ch.record_id is not None:
                self._outstanding.add((name, ch.record_id))
            return
        if ch.op == changelog.OP_CREATE:
            if not self.engine.prepare(name, settings):
                self.engine.rebuild(name, settings, [])
            return
        if ch.op == changelog.OP_REBUILD or not self.engine.prepare(name, settings):
            self._rebuild(name, settings, None)
            return
        if ch.op == changelog.OP_UPSERT and ch.record_id is not None:
            key = (name, ch.record_id)
            if ch.data is None:
                # A later change replaced or deleted this version; it follows.
                self._outstanding.add(key)
            else:
                self._outstanding.discard(key)
                # Only the change that wrote a record's current version carries its
                # data, so the ids of a group are distinct.
                self._group_collection = name
                self._group.append((ch.record_id, orjson.loads(ch.data), ch.data))
        elif ch.op == changelog.OP_DELETE and ch.record_id is not None:
            self._outstanding.discard((name, ch.record_id))
            self.engine.delete(name, ch.record_id)
        elif ch.op == changelog.OP_CLEAR:
            self._resolve_all(name)
            self.engine.clear(name)

    def _resolve_all(self, collection: str) -> None:
        self._outstanding = {k for k in self._outstanding if k[0] != collection}

    def prune(self, retain: int = RETAIN_CHANGES) -> int:
        """Deletes changes that every live process has indexed, keeping ``retain``."""
        self._last_prune = time.monotonic()
        cutoff = datetime.now(UTC) - timedelta(seconds=NODE_LIVE_SECONDS)
        try:
            with self.db.write() as s:
                live = s.scalar(
                    select(func.min(IndexNodeRow.applied_seq)).where(
                        IndexNodeRow.heartbeat_at >= cutoff
                    )
                )
                head = changelog.current_seq(s)
                # Every change up to ``floor`` is in every live index, and outside the
                # retained tail.
                floor = min(int(live) if live is not None else head, head - retain)
                if floor < 1:
                    return 0
                removed = changelog.prune_before(s, floor + 1)
        except Exception:
            log.warning("could not prune the change log", exc_info=True)
            return 0
        if removed:
            log.info("pruned %d indexed changes from the change log", removed)
        return removed

    # --- index positions of the server processes -------------------------------------

    def _heartbeat(self, force: bool = False) -> None:
        if self._thread is None:
            # Not a serving process (``searchgate reindex``, a one-off pass): nobody
            # searches this copy, so ``?wait=true`` must not wait for it.
            return
        now = time.monotonic()
        if not force and now - self._last_heartbeat < 2.0:
            return
        self._last_heartbeat = now
        values = {
            "node": self.node,
            "applied_seq": self.engine.applied_seq(),
            "heartbeat_at": datetime.now(UTC),
        }
        try:
            with self.db.write() as s:
                dialect = s.get_bind().dialect.name
                ins = (
                    postgresql.insert(IndexNodeRow)
                    if dialect == "postgresql"
                    else sqlite.insert(IndexNodeRow)
                )
                s.execute(
                    ins.values(**values).on_conflict_do_update(
                        index_elements=[IndexNodeRow.node],
                        set_={
                            "applied_seq": values["applied_seq"],
                            "heartbeat_at": values["heartbeat_at"],
                        },
                    )
                )
        except Exception:
            log.warning("could not record index position", exc_info=True)

    def _forget_dead_twins(self) -> None:
        """Forgets earlier processes that held this index slot on this host.

        Node names are ``host:pid:slot`` and a slot is locked by one process at a time,
        so such a process is gone (killed, most likely); without this, ``?wait=true``
        would wait for it until its heartbeat expires.
        """
        host, _, rest = self.node.partition(":")
        slot = rest.rpartition(":")[2]
        if not rest or not slot:
            return
        with self.db.read() as s:
            nodes = list(s.scalars(select(IndexNodeRow.node)))
        dead = set()
        for other in nodes:
            o_host, _, o_rest = other.partition(":")
            if other != self.node and o_host == host and o_rest.rpartition(":")[2] == slot:
                dead.add(other)
        self._forget_nodes(dead)

    def _forget_nodes(self, nodes: set[str]) -> None:
        if not nodes:
            return
        try:
            with self.db.write() as s:
                s.execute(delete(IndexNodeRow).where(IndexNodeRow.node.in_(sorted(nodes))))
        except Exception:
            log.warning("could not forget index positions", exc_info=True)
