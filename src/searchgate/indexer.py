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

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from searchgate.catalog import changelog
from searchgate.catalog.models import IndexNodeRow
from searchgate.catalog.service import CatalogService
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


class Indexer:
    def __init__(
        self,
        db: Database,
        catalog: CatalogService,
        engine: TantivyEngine,
        node: str,
        poll_seconds: float = 0.05,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.engine = engine
        self.node = node
        self.poll_seconds = poll_seconds
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
        self.last_error: str | None = None
        self._settings: dict[str, CollectionSettings | None] = {}
        # Upserts skipped because a later change replaced the record, until that change
        # is applied; and the position a rebuilt index (read from a newer snapshot)
        # needs before the index again matches the database at some boundary.
        self._outstanding: set[tuple[str, str]] = set()
        self._not_before = 0
        # Collection -> change-log position of the snapshot its index was rebuilt from.
        self._rebuilt_at: dict[str, int] = {}

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
        self._forget_nodes({self.node})

    def notify(self) -> None:
        self._wake.set()

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
                self.catch_up()
                if time.monotonic() - self._last_prune >= PRUNE_SECONDS:
                    self.prune()
                if not self._ready.is_set():
                    with self._applied:
                        self._ready.set()
                        self._applied.notify_all()
                self.last_error = None
            except Exception as exc:  # keep indexing alive; readiness reports the error
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("indexer pass failed; retrying from the last commit")
                self._recover()
                self._stop.wait(1.0)
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def _recover(self) -> None:
        """Drops what the failed pass applied but did not commit: the next pass starts
        again from the last committed position."""
        with self._work:
            self._settings.clear()
            self._rebuilt_at.clear()
            try:
                self.engine.reset()
            except Exception:
                log.exception("could not reset the index writers")

    # --- state ---------------------------------------------------------------------

    @property
    def applied_seq(self) -> int:
        return self.engine.applied_seq()

    def lag(self) -> int:
        return max(self.catalog.current_seq() - self.applied_seq, 0)

    def wait_for(self, seq: int, timeout: float) -> bool:
        """True once change ``seq`` is searchable in this process's indexes."""
        deadline = time.monotonic() + timeout
        self._wake.set()
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
        with self._work:
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

    def catch_up(self, progress: Progress | None = None) -> int:
        """Applies every committed change; returns how many were applied.

        Commits at the end of the log, and during a long pass every ``CHUNK`` changes
        or so, always at a transaction boundary where the index matches the database.
        """
        with self._work:
            applied = self.engine.applied_seq()
            head = self.catalog.current_seq()
            if head <= applied:
                self._heartbeat()
                return 0
            self._settings.clear()
            # This pass starts again from the last commit, where nothing was outstanding.
            self._outstanding.clear()
            count = 0
            uncommitted = 0
            while True:
                with self.db.read() as s:
                    changes = changelog.read_after(s, applied, CHUNK)
                if not changes:
                    break
                if changes[0].seq > applied + 1:
                    # Sequence numbers have no gaps, so the log was pruned past this
                    # index (it was stopped, or stalled, for long): rebuild from records.
                    log.warning("change log pruned past this index; rebuilding")
                    self._outstanding.clear()
                    self.repair()
                    return count
                for ch in changes:
                    self._apply(ch)
                    applied = ch.seq
                    count += 1
                    uncommitted += 1
                    if uncommitted >= CHUNK and self._consistent(ch):
                        self._commit(applied)
                        uncommitted = 0
                if progress is not None:
                    progress(applied, max(head, applied))
                if uncommitted and self._consistent(changes[-1]):
                    self._commit(applied)
                    uncommitted = 0
                if len(changes) < CHUNK and not uncommitted:
                    break
            return count

    def _consistent(self, ch: changelog.Change) -> bool:
        """Whether the index, with every change up to ``ch`` applied, matches the
        database as it was when ``ch``'s transaction committed."""
        return ch.seq == ch.batch_end and ch.seq >= self._not_before and not self._outstanding

    def _commit(self, seq: int) -> None:
        with self._applied:
            self.engine.commit(seq)
            self._applied.notify_all()
        self._heartbeat(force=True)

    def _apply(self, ch: changelog.Change) -> None:
        name = ch.collection
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
                self.engine.upsert(name, ch.record_id, ch.data)
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
