"""Per-key usage: request counts per hour, system and outcome, and the systems seen.

Every data-plane request with a known key is counted in memory (``UsageTracker.record``
runs on the event loop, so it does no I/O and takes one lock for a few dictionary
updates); a background thread writes the counts every ``flush_seconds`` in one short
transaction. Memory is bounded: at most ``max_pairs`` distinct (key, system) pairs per
flush window, further systems are counted as ``(other)``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from searchgate.clock import Clock, aware, utc_now
from searchgate.db import Database
from searchgate.errors import InvalidInput
from searchgate.keys.service import KeyService
from searchgate.keys.usage_models import (
    ROTATION_SYSTEM,
    SYSTEM_MAX,
    KeySystemRow,
    KeyUsageHourRow,
)
from searchgate.logs import redact

log = logging.getLogger("searchgate.usage")

SUCCESS = "success"
REFUSED = "refused"
CLIENT_ERROR = "client_error"
SERVER_ERROR = "server_error"
OUTCOMES = frozenset({SUCCESS, REFUSED, CLIENT_ERROR, SERVER_ERROR})
UNKNOWN_SYSTEM = "unknown"
OTHER_SYSTEM = "(other)"
RETENTION_DAYS = 30
RETENTION = timedelta(days=RETENTION_DAYS)
PRUNE_EVERY = timedelta(hours=1)
HOUR = timedelta(hours=1)
MAX_PAIRS = 10_000
# Count buckets (key, hour, system, outcome) carried over failed flushes: when the
# database is down for hours, the oldest hours are dropped beyond this many.
MAX_RETAINED_BUCKETS = 100_000

Bucket = tuple[str, datetime, str, str]
Pair = tuple[str, str]


def floor_hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def outcome_for(status: int, hint: str | None = None) -> str:
    """The outcome of a request of a known key, from its final status.

    ``hint`` (``request.state.key_outcome_hint``) can only classify a 4xx response
    other than 401/403/429, e.g. a refusal the authenticator answered with 400; it
    never turns a success or a server error into something else.
    """
    if status >= 500:
        return SERVER_ERROR
    if status < 400:
        return SUCCESS
    if status in (401, 403, 429):
        return REFUSED
    if hint in OUTCOMES:
        return str(hint)
    return CLIENT_ERROR


class _Seen:
    """One (key, system) pair within a flush window."""

    __slots__ = ("first", "ip", "last", "requests")

    def __init__(self, at: datetime, ip: str | None) -> None:
        self.first = at
        self.last = at
        self.ip = ip
        self.requests = 0

    def merge(self, other: _Seen) -> None:
        self.first = min(self.first, other.first)
        if other.last >= self.last:
            self.last = other.last
            self.ip = other.ip or self.ip
        self.requests += other.requests


class UsageTracker:
    """One per server process: counts in memory, flushed by a daemon thread.

    ``clock`` returns aware UTC times (hours are stored as UTC on every database).
    """

    def __init__(
        self,
        db: Database,
        keys: KeyService,
        flush_seconds: float = 2.0,
        clock: Clock = utc_now,
        max_pairs: int = MAX_PAIRS,
        max_retained_buckets: int = MAX_RETAINED_BUCKETS,
    ) -> None:
        if flush_seconds <= 0:
            raise ValueError("flush_seconds must be positive")
        self.db = db
        self.keys = keys
        self.flush_seconds = flush_seconds
        self.max_pairs = max_pairs
        self.max_retained_buckets = max_retained_buckets
        self._clock = clock
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._counts: dict[Bucket, int] = {}
        self._seen: dict[Pair, _Seen] = {}
        # The current hour, kept so that record() truncates a time only once an hour.
        self._hour_start = datetime.min.replace(tzinfo=UTC)
        self._hour_end = self._hour_start
        self._next_prune: datetime | None = None
        self._failing = False
        self._prune_failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the hot path ------------------------------------------------------------

    def record(self, key_id: str, system: str, outcome: str, ip: str | None) -> None:
        """Counts one request. O(1), no I/O: it runs on the event loop."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        now = self._clock()
        # Names come from request headers: one holding a key must not store it.
        system = redact(system)[:SYSTEM_MAX] if system else UNKNOWN_SYSTEM
        with self._lock:
            if not self._hour_start <= now < self._hour_end:
                self._hour_start = floor_hour(now)
                self._hour_end = self._hour_start + HOUR
            if system != ROTATION_SYSTEM:
                # The rotation runner's own checks are counted as requests but are not
                # a system of the key: they neither show as one nor hold off a deletion.
                system = self._see(key_id, system, now, ip)
            bucket = (key_id, self._hour_start, system, outcome)
            self._counts[bucket] = self._counts.get(bucket, 0) + 1

    def _see(self, key_id: str, system: str, now: datetime, ip: str | None) -> str:
        """Notes ``system`` as a user of the key (under the lock); returns the name it
        is counted under (``(other)`` beyond ``max_pairs``)."""
        pair = (key_id, system)
        seen = self._seen.get(pair)
        if seen is None:
            if len(self._seen) >= self.max_pairs:
                system = OTHER_SYSTEM
                pair = (key_id, system)
                seen = self._seen.get(pair)
            if seen is None:
                seen = self._seen[pair] = _Seen(now, ip)
        if now >= seen.last:
            seen.last = now
            if ip:
                seen.ip = ip
        seen.requests += 1
        return system

    def pending_requests(self) -> int:
        """Requests counted in memory and not written yet."""
        with self._lock:
            return sum(self._counts.values())

    # --- the flusher -------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="searchgate-usage", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops the thread and writes what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:
                # flush() handles database errors; this keeps the thread alive on a bug.
                log.exception("usage flush failed unexpectedly")

    def flush(self) -> None:
        """Writes the counts; on a database error keeps them for the next attempt.

        Never raises for a database error: it logs once per streak of failures."""
        with self._flush_lock:
            with self._lock:
                counts, seen = self._counts, self._seen
                self._counts, self._seen = {}, {}
            if counts:
                try:
                    self._write(counts, seen)
                except Exception:
                    self._keep(counts, seen)
                    if not self._failing:
                        self._failing = True
                        log.warning(
                            "could not write key usage; counts are kept for the next attempt",
                            exc_info=True,
                        )
                    return
                if self._failing:
                    self._failing = False
                    log.warning("key usage is written again")
            self._maybe_prune()

    def _write(self, counts: dict[Bucket, int], seen: dict[Pair, _Seen]) -> None:
        with self.db.write() as s:
            insert = (
                postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
            )
            # Rows in primary-key order: concurrent flushes of several processes take
            # their row locks in the same order and cannot deadlock on PostgreSQL.
            hourly = insert(KeyUsageHourRow)
            s.execute(
                hourly.on_conflict_do_update(
                    index_elements=[
                        KeyUsageHourRow.key_id,
                        KeyUsageHourRow.hour,
                        KeyUsageHourRow.system,
                        KeyUsageHourRow.outcome,
                    ],
                    set_={"count": KeyUsageHourRow.count + hourly.excluded.count},
                ),
                [
                    {"key_id": k, "hour": h, "system": sy, "outcome": o, "count": n}
                    for (k, h, sy, o), n in sorted(counts.items())
                ],
            )
            if not seen:
                return  # only the rotation runner's checks: no system, no last use
            systems = insert(KeySystemRow)
            new = systems.excluded
            newer = new.last_seen_at > KeySystemRow.last_seen_at
            s.execute(
                systems.on_conflict_do_update(
                    index_elements=[KeySystemRow.key_id, KeySystemRow.system],
                    set_={
                        "first_seen_at": case(
                            (new.first_seen_at < KeySystemRow.first_seen_at, new.first_seen_at),
                            else_=KeySystemRow.first_seen_at,
                        ),
                        "last_seen_at": case(
                            (newer, new.last_seen_at), else_=KeySystemRow.last_seen_at
                        ),
                        "last_ip": case(
                            (newer & new.last_ip.is_not(None), new.last_ip),
                            else_=KeySystemRow.last_ip,
                        ),
                        "requests": KeySystemRow.requests + new.requests,
                    },
                ),
                [
                    {
                        "key_id": k,
                        "system": sy,
                        "first_seen_at": v.first,
                        "last_seen_at": v.last,
                        "last_ip": v.ip[:64] if v.ip else None,
                        "requests": v.requests,
                    }
                    for (k, sy), v in sorted(seen.items())
                ],
            )
            latest: dict[str, tuple[datetime, str | None, str]] = {}
            for (k, sy), v in seen.items():
                if k not in latest or v.last > latest[k][0]:
                    latest[k] = (v.last, v.ip, sy)
            for k in sorted(latest):
                at, ip, sy = latest[k]
                self.keys.record_use(s, k, at, ip, sy)

    def _keep(self, counts: dict[Bucket, int], seen: dict[Pair, _Seen]) -> None:
        """Puts the counts of a failed flush back, within the same memory bounds."""
        with self._lock:
            for (k, sy), old in seen.items():
                pair = (k, sy)
                cur = self._seen.get(pair)
                if cur is None and len(self._seen) >= self.max_pairs:
                    pair = (k, OTHER_SYSTEM)
                    cur = self._seen.get(pair)
                if cur is None:
                    self._seen[pair] = old
                else:
                    cur.merge(old)
            for (k, h, sy, o), n in counts.items():
                system = sy if (k, sy) in self._seen else OTHER_SYSTEM
                bucket = (k, h, system, o)
                self._counts[bucket] = self._counts.get(bucket, 0) + n
            if len(self._counts) > self.max_retained_buckets:
                self._drop_oldest()

    def _drop_oldest(self) -> None:
        """Drops whole hours, oldest first, until the carried counts fit (lock held)."""
        hours = sorted({h for _k, h, _s, _o in self._counts}, reverse=True)
        by_hour: dict[datetime, int] = {}
        for _k, h, _s, _o in self._counts:
            by_hour[h] = by_hour.get(h, 0) + 1
        kept_buckets = 0
        keep: set[datetime] = set()
        for h in hours:
            if kept_buckets + by_hour[h] > self.max_retained_buckets:
                break
            kept_buckets += by_hour[h]
            keep.add(h)
        dropped = sum(n for (_k, h, _s, _o), n in self._counts.items() if h not in keep)
        self._counts = {b: n for b, n in self._counts.items() if b[1] in keep}
        log.warning(
            "key usage: the database has been unavailable for long; "
            "dropped the counts of %d requests of the oldest hours",
            dropped,
        )

    def _maybe_prune(self) -> None:
        now = self._clock()
        if self._next_prune is not None and now < self._next_prune:
            return
        try:
            prune(self.db, now)
        except Exception:
            if not self._prune_failing:
                self._prune_failing = True
                log.warning("could not delete old key usage; will retry", exc_info=True)
            return
        self._prune_failing = False
        self._next_prune = now + PRUNE_EVERY


def prune(db: Database, now: datetime) -> int:
    """Deletes usage older than the retention; returns the hourly rows deleted."""
    cutoff = floor_hour(now - RETENTION)
    with db.write() as s:
        result = s.execute(delete(KeyUsageHourRow).where(KeyUsageHourRow.hour < cutoff))
        s.execute(delete(KeySystemRow).where(KeySystemRow.last_seen_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)


# --- reading ---------------------------------------------------------------------


@dataclass(frozen=True)
class SystemUse:
    system: str
    first_seen_at: datetime
    last_seen_at: datetime
    last_ip: str | None
    requests: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "firstSeenAt": self.first_seen_at.isoformat(),
            "lastSeenAt": self.last_seen_at.isoformat(),
            "lastIp": self.last_ip,
            "requests": self.requests,
        }


@dataclass(frozen=True)
class HourCount:
    hour: datetime
    system: str
    outcome: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "hour": self.hour.isoformat(),
            "system": self.system,
            "outcome": self.outcome,
            "count": self.count,
        }


class DayCount(NamedTuple):
    """Unpacks as (day, system, count)."""

    day: date
    system: str
    requests: int


class UsageQueries:
    """What the console, the admin API and key deletion read about a key's use.

    Figures come from the database: requests of the last ``flush_seconds`` that are
    still in a server's memory are not in them yet.
    """

    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self.db = db
        self.clock = clock

    def systems(self, key_id: str, since: datetime | None = None) -> list[SystemUse]:
        """The systems that used the key (since ``since``), most recently seen first."""
        q = select(KeySystemRow).where(KeySystemRow.key_id == key_id)
        if since is not None:
            q = q.where(KeySystemRow.last_seen_at >= since)
        q = q.order_by(KeySystemRow.last_seen_at.desc(), KeySystemRow.system)
        with self.db.read() as s:
            return [
                SystemUse(
                    system=r.system,
                    first_seen_at=aware(r.first_seen_at),
                    last_seen_at=aware(r.last_seen_at),
                    last_ip=r.last_ip,
                    requests=int(r.requests),
                )
                for r in s.scalars(q)
            ]

    def recent_systems(self, key_id: str, since: datetime) -> list[str]:
        """Names of the systems that used the key since ``since`` (KeyService's
        ``recent_systems`` hook, for the quiet period before a deletion)."""
        return [u.system for u in self.systems(key_id, since)]

    def hourly(self, key_id: str, since: datetime) -> list[HourCount]:
        """Counts per hour, system and outcome, from the hour that contains ``since``."""
        q = (
            select(KeyUsageHourRow)
            .where(KeyUsageHourRow.key_id == key_id, KeyUsageHourRow.hour >= floor_hour(since))
            .order_by(KeyUsageHourRow.hour, KeyUsageHourRow.system, KeyUsageHourRow.outcome)
        )
        with self.db.read() as s:
            return [
                HourCount(aware(r.hour), r.system, r.outcome, int(r.count)) for r in s.scalars(q)
            ]

    def traffic_since(self, key_id: str, since: datetime) -> int:
        """Requests of the key from the hour that contains ``since`` on: whole hours,
        so that it errs towards "still in use"."""
        with self.db.read() as s:
            total = s.scalar(
                select(func.coalesce(func.sum(KeyUsageHourRow.count), 0)).where(
                    KeyUsageHourRow.key_id == key_id,
                    KeyUsageHourRow.hour >= floor_hour(since),
                )
            )
        return int(total or 0)

    def daily_by_system(self, key_id: str, days: int) -> list[DayCount]:
        """Requests per UTC day and system over the last ``days`` days (today
        included), for the console's traffic chart; days without traffic are absent."""
        if not 1 <= days <= RETENTION_DAYS:
            raise InvalidInput(f"days must be 1 to {RETENTION_DAYS}", field="days")
        today = floor_hour(self.clock()).replace(hour=0)
        since = today - timedelta(days=days - 1)
        q = (
            select(KeyUsageHourRow.hour, KeyUsageHourRow.system, func.sum(KeyUsageHourRow.count))
            .where(KeyUsageHourRow.key_id == key_id, KeyUsageHourRow.hour >= since)
            .group_by(KeyUsageHourRow.hour, KeyUsageHourRow.system)
        )
        totals: dict[tuple[date, str], int] = {}
        with self.db.read() as s:
            # Summed per day here: truncating a timestamp to a day differs per database.
            for hour, system, n in s.execute(q):
                k = (aware(hour).date(), str(system))
                totals[k] = totals.get(k, 0) + int(n)
        return [DayCount(d, sy, n) for (d, sy), n in sorted(totals.items())]
