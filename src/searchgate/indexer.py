"""Feeds one process's search indexes from the database's ordered change log.

The database is the source of truth; an index is derived from it and can always be
rebuilt. Changes become searchable only at transaction boundaries, so an upload is
never half visible, and ``wait_for`` lets a caller return once its upload is
searchable.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

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
        self._applied = threading.Condition()
        self._thread: threading.Thread | None = None
        self._last_heartbeat = 0.0
        self.last_error: str | None = None
        self._settings: dict[str, CollectionSettings | None] = {}

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        self.repair()
        self.catch_up()
        self._thread = threading.Thread(target=self._run, name="searchgate-indexer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def notify(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            try:
                self.catch_up()
                self.last_error = None
            except Exception as exc:  # keep indexing alive; readiness reports the error
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("indexer pass failed; retrying")
                self._stop.wait(1.0)

    # --- state ---------------------------------------------------------------------

    @property
    def applied_seq(self) -> int:
        return self.engine.applied_seq()

    def lag(self) -> int:
        return max(self.catalog.current_seq() - self.applied_seq, 0)

    def wait_for(self, seq: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._applied:
            while self.engine.applied_seq() < seq:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._applied.wait(min(remaining, 0.5))
        return True

    # --- work ----------------------------------------------------------------------

    def repair(self, progress: Progress | None = None) -> None:
        """Brings every index in line with the database after a start or a crash."""
        with self.db.read() as s:
            head = changelog.current_seq(s)
            oldest = changelog.oldest_retained(s)
        applied = self.engine.applied_seq()
        full = applied > head or (oldest is not None and oldest > applied + 1)
        collections = {c.name: c.settings for c in self.catalog.list_collections()}
        for name in self.engine.collections():
            if name not in collections:
                self.engine.drop(name)
        for name, settings in collections.items():
            if full or not self.engine.prepare(name, settings):
                log.info("rebuilding index of collection %s", name)
                self._rebuild(name, settings, progress)
        self.engine.commit(head if full else applied)
        self._heartbeat(force=True)

    def _rebuild(self, name: str, settings: CollectionSettings, progress: Progress | None) -> int:
        total = self.catalog.record_count(name)
        done = 0

        def chunks() -> Iterator[list[tuple[str, str]]]:
            nonlocal done
            for chunk in self.catalog.iter_all_records(name, CHUNK):
                yield chunk
                done += len(chunk)
                if progress is not None:
                    progress(done, total)

        return self.engine.rebuild(name, settings, chunks())

    def _settings_for(self, name: str) -> CollectionSettings | None:
        if name not in self._settings:
            self._settings[name] = self.catalog.settings_of(name)
        return self._settings[name]

    def catch_up(self, progress: Progress | None = None) -> int:
        """Applies every committed change; returns how many were applied."""
        applied = self.engine.applied_seq()
        head = self.catalog.current_seq()
        if head <= applied:
            self._heartbeat()
            return 0
        self._settings.clear()
        count = 0
        pending_commit = False
        while True:
            with self.db.read() as s:
                changes = changelog.read_after(s, applied, CHUNK)
            if not changes:
                break
            for ch in changes:
                self._apply(ch)
                applied = ch.seq
                count += 1
                pending_commit = ch.seq != ch.batch_end
                if not pending_commit:
                    last_boundary = ch.seq
            if progress is not None:
                progress(applied, max(head, applied))
            if not pending_commit:
                self._commit(last_boundary)
        return count

    def _commit(self, seq: int) -> None:
        with self._applied:
            self.engine.commit(seq)
            self._applied.notify_all()
        self._heartbeat(force=True)

    def _apply(self, ch: changelog.Change) -> None:
        name = ch.collection
        if ch.op == changelog.OP_DROP:
            self._settings.pop(name, None)
            self.engine.drop(name)
            return
        if ch.op == changelog.OP_REBUILD:
            self._settings.pop(name, None)
        settings = self._settings_for(name)
        if settings is None:
            return  # deleted later in the log; its drop follows
        if ch.op == changelog.OP_CREATE:
            if not self.engine.prepare(name, settings):
                self.engine.rebuild(name, settings, [])
            return
        if ch.op == changelog.OP_REBUILD or not self.engine.prepare(name, settings):
            self._rebuild(name, settings, None)
            return
        if ch.op == changelog.OP_UPSERT:
            if ch.data is not None and ch.record_id is not None:
                self.engine.upsert(name, ch.record_id, ch.data)
        elif ch.op == changelog.OP_DELETE:
            if ch.record_id is not None:
                self.engine.delete(name, ch.record_id)
        elif ch.op == changelog.OP_CLEAR:
            self.engine.clear(name)

    def _heartbeat(self, force: bool = False) -> None:
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
