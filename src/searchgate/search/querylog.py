"""Counts what people search for: queries that found something, for SAYT suggestions,
and every search per UTC day, area, collection and query, with whether it found
nothing, and the merchandising rules that fired on it and redirected it, for search
analytics (``search/analytics.py``; off with ``analytics=False``, where only the
suggestions learn).

Counting happens in memory and is flushed to the database in the background, so a
search never waits on a write. The suggestions a process holds take its own flushed
counts in at once and are reloaded in the background too: only a collection's first
suggestion reads the database on the request path. The flush is one statement: one per
query took a quarter of a second of the interpreter every five seconds on a busy
storefront, which stalled the requests of that moment by tens of milliseconds
(docs/performance.md, the changes of 2026-12-05). A search's day is the day of the
flush that writes it (at most ``flush_seconds`` late at midnight). Days older than the
retention are deleted in the background, once an hour.
"""

from __future__ import annotations

import bisect
import heapq
import logging
import threading
import time
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from searchgate.catalog.models import (
    QueryStatRow,
    SearchDayRow,
    SearchQueryDayRow,
    SearchRuleDayRow,
)
from searchgate.clock import Clock, utc_now
from searchgate.db import Base, Database
from searchgate.engines.tantivy.layout import words

log = logging.getLogger("searchgate.querylog")
MAX_QUERY = 256
# The longest name of a merchandising rule (merchandising/document.py), the column's
# width: a longer one would fail every flush after it.
MAX_RULE = 80
# Distinct queries counted between two flushes; beyond it only known ones are counted,
# so a flood of unique queries cannot grow memory without bound.
MAX_PENDING = 100_000
# The most searched queries of a collection held in memory for suggestions.
MAX_LOADED = 200_000
DEFAULT_RETENTION_DAYS = 90
PRUNE_EVERY = timedelta(hours=1)

# (area, collection, normalised query, found nothing)
SearchKey = tuple[str, str, str, bool]
# (area, collection, rule name, the rule's redirect was the one returned)
RuleKey = tuple[str, str, str, bool]


def normalise(query: str) -> str:
    return " ".join(words(query))[:MAX_QUERY]


class QueryLog:
    def __init__(
        self,
        db: Database,
        flush_seconds: float = 5.0,
        reload_seconds: float = 30.0,
        clock: Clock = utc_now,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        analytics: bool = True,
    ) -> None:
        if retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        self.db = db
        self.analytics = analytics
        self.flush_seconds = flush_seconds
        self.reload_seconds = reload_seconds
        self.retention_days = retention_days
        self._clock = clock
        self._pending: Counter[tuple[str, str]] = Counter()
        self._searches: Counter[SearchKey] = Counter()
        # Searches whose query was not admitted (MAX_PENDING distinct ones already):
        # still in the day's totals, per (area, collection, found nothing).
        self._unlisted: Counter[tuple[str, str, bool]] = Counter()
        self._rules: Counter[RuleKey] = Counter()
        self._next_prune: datetime | None = None
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

    def count_search(
        self,
        area: str,
        collection: str,
        query: str,
        corrected: str | None,
        total: int,
        rules: tuple[str, ...] = (),
        redirect: str | None = None,
    ) -> None:
        """Counts one storefront search (``corrected``: the query autocorrection ran
        instead, which is what SAYT learns from; ``rules``: the names of the
        merchandising rules that fired; ``redirect``: the name of the rule whose
        redirect was returned, which fired too). Dictionary increments, no I/O."""
        q = normalise(query)
        # A search a rule redirected was answered (with a page), not a search that
        # found nothing: it must not read as a vocabulary gap.
        zero = not total and not redirect
        key = (area, collection, q, zero)
        popular = (normalise(corrected) if corrected is not None else q) if total else ""
        fired: set[str] = set()
        if self.analytics and (rules or redirect):
            # A rule counts once per search, however often the caller names it.
            fired = {r[:MAX_RULE] for r in rules if r}
            if redirect:
                redirect = redirect[:MAX_RULE]
                fired.discard(redirect)
        with self._lock:
            if self.analytics:
                if key in self._searches or len(self._searches) < MAX_PENDING:
                    self._searches[key] += 1
                else:
                    self._unlisted[(area, collection, zero)] += 1
                for rule in fired:
                    self._count_rule((area, collection, rule, False))
                if redirect:
                    self._count_rule((area, collection, redirect, True))
            if popular:
                pkey = (collection, popular)
                if pkey in self._pending or len(self._pending) < MAX_PENDING:
                    self._pending[pkey] += 1

    def _count_rule(self, key: RuleKey) -> None:
        # Rules are few (a thousand an area at most), but the names come from the
        # caller: the same bound as the queries'.
        if key in self._rules or len(self._rules) < MAX_PENDING:
            self._rules[key] += 1

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
            try:
                self._maybe_prune()
            except Exception:
                log.warning("could not delete old search analytics; will retry", exc_info=True)

    def flush(self) -> int:
        """Writes the counts held; returns how many distinct queries SAYT learnt."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
            searches, self._searches = self._searches, Counter()
            unlisted, self._unlisted = self._unlisted, Counter()
            rules, self._rules = self._rules, Counter()
        if not pending and not searches and not unlisted and not rules:
            return 0
        now = self._clock()
        day = now.date()
        # In primary-key order: flushes of several processes lock rows in the same order.
        rows = [
            {"collection": c, "query": q, "count": n, "last_seen": now}
            for (c, q), n in sorted(pending.items())
        ]
        try:
            with self.db.write() as s:
                if rows:
                    self._upsert(
                        s,
                        QueryStatRow,
                        rows,
                        {"count": QueryStatRow.count},
                        {"last_seen"},
                    )
                if searches or unlisted:
                    days, queries = _day_rows(day, searches, unlisted)
                    added = {
                        "searches": SearchDayRow.searches,
                        "zero_results": SearchDayRow.zero_results,
                    }
                    self._upsert(s, SearchDayRow, days, added, set())
                    if queries:
                        added = {
                            "searches": SearchQueryDayRow.searches,
                            "zero_results": SearchQueryDayRow.zero_results,
                        }
                        self._upsert(s, SearchQueryDayRow, queries, added, set())
                if rules:
                    added = {
                        "searches": SearchRuleDayRow.searches,
                        "redirects": SearchRuleDayRow.redirects,
                    }
                    self._upsert(s, SearchRuleDayRow, _rule_rows(day, rules), added, set())
        except Exception:
            with self._lock:
                self._pending.update(pending)
                self._searches.update(searches)
                self._unlisted.update(unlisted)
                self._rules.update(rules)
            raise
        # This process sees its own counts at once; other processes' after a reload.
        self._take_in(pending)
        return len(pending)

    @staticmethod
    def _upsert(
        s: Session,
        model: type[Base],
        rows: list[dict[str, Any]],
        added: dict[str, Any],
        replaced: set[str],
    ) -> None:
        """One statement for all ``rows``: ``added`` columns add up, ``replaced`` ones
        take the new value."""
        dialect = s.get_bind().dialect.name
        ins = postgresql.insert(model) if dialect == "postgresql" else sqlite.insert(model)
        keys = [c.name for c in inspect(model).primary_key]
        set_ = {name: column + ins.excluded[name] for name, column in added.items()}
        set_.update({name: ins.excluded[name] for name in replaced})
        s.execute(ins.on_conflict_do_update(index_elements=keys, set_=set_), rows)

    def _maybe_prune(self) -> None:
        now = self._clock()
        if self._next_prune is not None and now < self._next_prune:
            return
        self.prune()
        self._next_prune = now + PRUNE_EVERY

    def first_kept_day(self) -> date:
        """The oldest day the retention keeps (today counts as one of its days)."""
        return self._clock().date() - timedelta(days=self.retention_days - 1)

    def prune(self) -> int:
        """Deletes search analytics older than the retention; returns the days' rows
        deleted (of every area and collection)."""
        cutoff = self.first_kept_day()
        with self.db.write() as s:
            result = s.execute(delete(SearchDayRow).where(SearchDayRow.day < cutoff))
            s.execute(delete(SearchQueryDayRow).where(SearchQueryDayRow.day < cutoff))
            s.execute(delete(SearchRuleDayRow).where(SearchRuleDayRow.day < cutoff))
            return int(getattr(result, "rowcount", 0) or 0)

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


def _day_rows(
    day: date, searches: Counter[SearchKey], unlisted: Counter[tuple[str, str, bool]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The day's totals per (area, collection), and per query (a search without words,
    a browse, is in the totals only), in primary-key order."""
    totals: dict[tuple[str, str], list[int]] = {}
    per_query: dict[tuple[str, str, str], list[int]] = {}
    for (area, collection, q, zero), n in searches.items():
        t = totals.setdefault((area, collection), [0, 0])
        t[0] += n
        t[1] += n if zero else 0
        if q:
            pq = per_query.setdefault((area, collection, q), [0, 0])
            pq[0] += n
            pq[1] += n if zero else 0
    for (area, collection, zero), n in unlisted.items():
        t = totals.setdefault((area, collection), [0, 0])
        t[0] += n
        t[1] += n if zero else 0
    days = [
        {"day": day, "area": a, "collection": c, "searches": n, "zero_results": z}
        for (a, c), (n, z) in sorted(totals.items())
    ]
    queries = [
        {"day": day, "area": a, "collection": c, "query": q, "searches": n, "zero_results": z}
        for (a, c, q), (n, z) in sorted(per_query.items())
    ]
    return days, queries


def _rule_rows(day: date, rules: Counter[RuleKey]) -> list[dict[str, Any]]:
    """The day's searches per (area, collection, rule), and how many the rule
    redirected, in primary-key order."""
    per_rule: dict[tuple[str, str, str], list[int]] = {}
    for (area, collection, rule, redirected), n in rules.items():
        r = per_rule.setdefault((area, collection, rule), [0, 0])
        r[0] += n
        r[1] += n if redirected else 0
    return [
        {"day": day, "area": a, "collection": c, "rule": r, "searches": n, "redirects": z}
        for (a, c, r), (n, z) in sorted(per_rule.items())
    ]
