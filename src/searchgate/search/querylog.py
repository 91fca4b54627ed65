"""Counts what people search for (queries that found something), for SAYT suggestions.

Counting happens in memory and is flushed to the database in the background, so a
search never waits on a write. The suggestions a process holds take its own flushed
counts in at once and are reloaded in the background too: only a collection's first
suggestion reads the database on the request path. The flush is one statement: one per
query took a quarter of a second of the interpreter every five seconds on a busy
storefront, which stalled the requests of that moment by tens of milliseconds
(docs/performance.md, the changes of 2026-12-05).
"""

from __future__ import annotations

import bisect
import heapq
import logging
import threading
import time
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from searchgate.catalog.models import QueryStatRow
from searchgate.db import Database
from searchgate.engines.tantivy.layout import words

log = logging.getLogger("searchgate.querylog")
MAX_QUERY = 256
# Distinct queries counted between two flushes; beyond it only known ones are counted,
# so a flood of unique queries cannot grow memory without bound.
MAX_PENDING = 100_000
# The most searched queries of a collection held in memory for suggestions.
MAX_LOADED = 200_000


def normalise(query: str) -> str:
    return " ".join(words(query))[:MAX_QUERY]


class QueryLog:
    def __init__(
        self, db: Database, flush_seconds: float = 5.0, reload_seconds: float = 30.0
    ) -> None:
        self.db = db
        self.flush_seconds = flush_seconds
        self.reload_seconds = reload_seconds
        self._pending: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # collection -> (loaded at, sorted queries, counts aligned with them)
        self._popular: dict[str, tuple[float, list[str], list[int]]] = {}

    def record(self, collection: str, query: str) -> None:
        q = normalise(query)
        if q:
            key = (collection, q)
            with self._lock:
                if key in self._pending or len(self._pending) < MAX_PENDING:
                    self._pending[key] += 1

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="searchgate-querylog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:
                log.warning("could not flush query counts; will retry", exc_info=True)
            try:
                self.refresh(stale_only=True)
            except Exception:
                log.warning("could not reload query counts; will retry", exc_info=True)

    def flush(self) -> int:
        with self._lock:
            pending, self._pending = self._pending, Counter()
        if not pending:
            return 0
        now = datetime.now(UTC)
        # In primary-key order: flushes of several processes lock rows in the same order.
        rows = [
            {"collection": c, "query": q, "count": n, "last_seen": now}
            for (c, q), n in sorted(pending.items())
        ]
        try:
            with self.db.write() as s:
                dialect = s.get_bind().dialect.name
                ins = (
                    postgresql.insert(QueryStatRow)
                    if dialect == "postgresql"
                    else sqlite.insert(QueryStatRow)
                )
                s.execute(
                    ins.on_conflict_do_update(
                        index_elements=[QueryStatRow.collection, QueryStatRow.query],
                        set_={
                            "count": QueryStatRow.count + ins.excluded.count,
                            "last_seen": ins.excluded.last_seen,
                        },
                    ),
                    rows,
                )
        except Exception:
            with self._lock:
                self._pending.update(pending)
            raise
        # This process sees its own counts at once; other processes' after a reload.
        self._take_in(pending)
        return len(pending)

    def _take_in(self, flushed: Counter[tuple[str, str]]) -> None:
        """Adds flushed counts to the suggestions held, as new lists swapped in whole
        (requests read them meanwhile), with small steps rather than one sort: the
        interpreter stays free for the requests."""
        for collection in {c for c, _q in flushed}:
            held = self._popular.get(collection)
            if held is None:
                continue
            expires, queries, counts = held
            queries, counts = list(queries), list(counts)
            for (c, q), n in flushed.items():
                if c != collection:
                    continue
                i = bisect.bisect_left(queries, q)
                if i < len(queries) and queries[i] == q:
                    counts[i] += n
                else:
                    queries.insert(i, q)
                    counts.insert(i, n)
            self._popular[collection] = (expires, queries, counts)

    def refresh(self, stale_only: bool = False) -> None:
        """Reloads the suggestions held (with ``stale_only``, those older than
        ``reload_seconds``): how other processes' counts arrive."""
        now = time.monotonic()
        for collection, (expires, _q, _n) in list(self._popular.items()):
            if not stale_only or expires <= now:
                self._popular[collection] = self._read(collection)

    def add_counts(self, collection: str, counts: dict[str, int]) -> None:
        """Seeds popularity (for the demo, or an import of a storefront's query log)."""
        with self._lock:
            for q, n in counts.items():
                key = normalise(q)
                if key:
                    self._pending[(collection, key)] += n
        self.flush()

    def _load(self, collection: str) -> tuple[list[str], list[int]]:
        cached = self._popular.get(collection)
        # With the background thread running, it reloads; without (a process that
        # never started it), the request that finds the suggestions stale does.
        if cached is not None and (self._thread is not None or cached[0] > time.monotonic()):
            return cached[1], cached[2]
        loaded = self._read(collection)
        self._popular[collection] = loaded
        return loaded[1], loaded[2]

    def _read(self, collection: str) -> tuple[float, list[str], list[int]]:
        now = time.monotonic()
        with self.db.read() as s:
            rows = s.execute(
                select(QueryStatRow.query, QueryStatRow.count)
                .where(QueryStatRow.collection == collection)
                .order_by(QueryStatRow.count.desc(), QueryStatRow.query)
                .limit(MAX_LOADED)
            ).all()
        # Sorted in Python: bisect needs code-point order, which a database collation
        # may not give.
        ordered = sorted((str(r[0]), int(r[1])) for r in rows)
        queries = [q for q, _n in ordered]
        counts = [n for _q, n in ordered]
        return now + self.reload_seconds, queries, counts

    def completions(self, collection: str, prefix: str, limit: int) -> list[tuple[str, int]]:
        """Popular queries that start with ``prefix`` (normalised), most searched first."""
        p = normalise(prefix)
        if not p or limit <= 0:
            return []
        if prefix.endswith(" "):
            p += " "
        queries, counts = self._load(collection)
        lo = bisect.bisect_left(queries, p)
        hi = bisect.bisect_left(queries, p + "\uffff")
        span = range(lo, hi)
        best = heapq.nsmallest(limit, span, key=lambda i: (-counts[i], queries[i]))
        return [(queries[i], counts[i]) for i in best]
