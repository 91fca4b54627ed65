"""Per-key usage: in-memory counting, flushing, bounds, failures and retention, on
SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, text

from searchgate.errors import InvalidInput
from searchgate.keys.scopes import Scope
from searchgate.keys.usage import (
    OTHER_SYSTEM,
    UsageQueries,
    UsageTracker,
    outcome_for,
)
from searchgate.keys.usage_models import ROTATION_SYSTEM, KeySystemRow, KeyUsageHourRow
from searchgate.runtime import Services
from tests.conftest import ManualClock
from tests.keyhelp import SYSTEM

T0 = datetime(2026, 3, 2, 9, 10, 0, tzinfo=UTC)


def new_key(services: Services, name: str) -> str:
    return services.keys.create(SYSTEM, name, frozenset({Scope.SEARCH})).info.id


def hourly_totals(services: Services) -> Counter[tuple[str, str, str]]:
    with services.db.read() as s:
        rows = s.scalars(select(KeyUsageHourRow)).all()
    out: Counter[tuple[str, str, str]] = Counter()
    for r in rows:
        out[(r.key_id, r.system, r.outcome)] += r.count
    return out


@contextmanager
def table_away(services: Services, table: str) -> Iterator[None]:
    """The table is renamed for the duration: every write to it fails, as when a
    database is broken, without any mock."""
    with services.db.write() as s:
        s.execute(text(f"ALTER TABLE {table} RENAME TO {table}_away"))
    try:
        yield
    finally:
        with services.db.write() as s:
            s.execute(text(f"ALTER TABLE {table}_away RENAME TO {table}"))


@pytest.fixture
def at_t0(clock: ManualClock) -> ManualClock:
    clock.now = T0
    return clock


def test_outcome_mapping() -> None:
    assert outcome_for(200) == "success"
    assert outcome_for(304) == "success"
    assert outcome_for(401) == "refused"
    assert outcome_for(403) == "refused"
    assert outcome_for(429) == "refused"
    assert outcome_for(404) == "client_error"
    assert outcome_for(400, "refused") == "refused"
    assert outcome_for(400, "nonsense") == "client_error"
    # A hint never turns a success or a server error into something else.
    assert outcome_for(200, "refused") == "success"
    assert outcome_for(503, "refused") == "server_error"
    assert outcome_for(500) == "server_error"


def test_record_rejects_an_unknown_outcome(accounts: Services) -> None:
    tracker = UsageTracker(accounts.db, accounts.keys)
    with pytest.raises(ValueError, match="unknown outcome"):
        tracker.record("key_x", "web-1", "ok", None)
    assert tracker.pending_requests() == 0


def test_concurrent_records_are_exact_after_flush(accounts: Services) -> None:
    keys = [new_key(accounts, "k-a"), new_key(accounts, "k-b")]
    systems = ["web-1", "web-2", "batch"]
    outcomes = ["success", "refused"]
    # The flusher runs all the time, swapping the counts out while threads record.
    tracker = UsageTracker(accounts.db, accounts.keys, flush_seconds=0.01)
    tracker.start()
    per_thread = 3000
    start = threading.Barrier(4)

    def work(n: int) -> None:
        start.wait()
        for i in range(per_thread):
            tracker.record(keys[(i + n) % 2], systems[i % 3], outcomes[(i // 3) % 2], f"10.0.0.{n}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tracker.stop()
    assert tracker.pending_requests() == 0

    expected: Counter[tuple[str, str, str]] = Counter()
    for n in range(4):
        for i in range(per_thread):
            expected[(keys[(i + n) % 2], systems[i % 3], outcomes[(i // 3) % 2])] += 1
    assert hourly_totals(accounts) == expected
    queries = UsageQueries(accounts.db)
    for k in keys:
        uses = {u.system: u.requests for u in queries.systems(k)}
        assert uses == {
            sy: sum(v for (kk, ss, _o), v in expected.items() if kk == k and ss == sy)
            for sy in systems
        }


def test_hourly_buckets_add_up_across_flushes(accounts: Services, at_t0: ManualClock) -> None:
    key = new_key(accounts, "hours")
    tracker = UsageTracker(accounts.db, accounts.keys, clock=at_t0)
    for _ in range(3):
        tracker.record(key, "web-1", "success", "192.0.2.1")
    at_t0.now = T0.replace(minute=59, second=59, microsecond=999_999)
    tracker.record(key, "web-1", "success", "192.0.2.1")
    at_t0.now = T0.replace(hour=10, minute=0)
    tracker.record(key, "web-1", "refused", "192.0.2.1")
    tracker.record(key, "web-1", "refused", "192.0.2.1")
    tracker.flush()
    # A second window lands on existing rows: the counts are added, not replaced.
    at_t0.now = T0.replace(hour=10, minute=5)
    tracker.record(key, "web-1", "refused", "192.0.2.1")
    tracker.record(key, "web-1", "success", "192.0.2.1")
    tracker.flush()

    queries = UsageQueries(accounts.db, at_t0)
    nine, ten = T0.replace(minute=0), T0.replace(hour=10, minute=0)
    got = [(h.hour, h.system, h.outcome, h.count) for h in queries.hourly(key, T0)]
    assert got == [
        (nine, "web-1", "success", 4),
        (ten, "web-1", "refused", 3),
        (ten, "web-1", "success", 1),
    ]
    assert all(h.hour.tzinfo is not None for h in queries.hourly(key, T0))
    # From 10:30: the hour that contains it is counted whole.
    assert [h.hour for h in queries.hourly(key, ten + timedelta(minutes=30))] == [ten, ten]
    assert queries.traffic_since(key, ten + timedelta(minutes=30)) == 4
    assert queries.traffic_since(key, T0 - timedelta(days=1)) == 8
    assert queries.traffic_since(key, ten + timedelta(hours=1)) == 0
    assert queries.hourly(key, T0)[0].to_dict() == {
        "hour": "2026-03-02T09:00:00+00:00",
        "system": "web-1",
        "outcome": "success",
        "count": 4,
    }


def test_systems_first_and_last_seen_and_the_key_row(
    accounts: Services, at_t0: ManualClock
) -> None:
    key = new_key(accounts, "systems")
    tracker = UsageTracker(accounts.db, accounts.keys, clock=at_t0)
    tracker.record(key, "web-1", "success", "192.0.2.1")
    tracker.flush()
    at_t0.advance(minutes=5)
    tracker.record(key, "web-1", "success", "192.0.2.2")
    at_t0.advance(minutes=1)
    tracker.record(key, "batch-2", "client_error", "198.51.100.9")
    tracker.flush()

    queries = UsageQueries(accounts.db, at_t0)
    uses = queries.systems(key)
    assert [(u.system, u.first_seen_at, u.last_seen_at, u.last_ip, u.requests) for u in uses] == [
        ("batch-2", T0 + timedelta(minutes=6), T0 + timedelta(minutes=6), "198.51.100.9", 1),
        ("web-1", T0, T0 + timedelta(minutes=5), "192.0.2.2", 2),
    ]
    assert [u.system for u in queries.systems(key, since=T0 + timedelta(minutes=6))] == ["batch-2"]
    assert queries.recent_systems(key, T0 + timedelta(minutes=5)) == ["batch-2", "web-1"]
    assert queries.recent_systems(key, T0 + timedelta(minutes=7)) == []
    info = accounts.keys.get(key)
    assert info.last_used_at == T0 + timedelta(minutes=6)
    assert info.last_ip == "198.51.100.9"
    assert info.last_system == "batch-2"

    # Another process flushing older observations later moves nothing backwards.
    late = UsageTracker(accounts.db, accounts.keys, clock=lambda: T0 - timedelta(minutes=30))
    late.record(key, "web-1", "success", "203.0.113.5")
    late.flush()
    web = next(u for u in queries.systems(key) if u.system == "web-1")
    assert web.first_seen_at == T0 - timedelta(minutes=30)
    assert web.last_seen_at == T0 + timedelta(minutes=5)
    assert web.last_ip == "192.0.2.2"
    assert web.requests == 3


def test_the_rotation_runners_checks_are_counted_but_are_no_system_of_the_key(
    accounts: Services, at_t0: ManualClock
) -> None:
    key = new_key(accounts, "checked")
    tracker = UsageTracker(accounts.db, accounts.keys, clock=at_t0)
    tracker.record(key, ROTATION_SYSTEM, "success", "192.0.2.1")
    tracker.flush()
    assert hourly_totals(accounts) == Counter({(key, ROTATION_SYSTEM, "success"): 1})
    with accounts.db.read() as s:
        assert s.scalars(select(KeySystemRow)).all() == []
    info = accounts.keys.get(key)
    assert info.last_used_at is None and accounts.keys.in_use(info) == []

    tracker.record(key, ROTATION_SYSTEM, "success", "192.0.2.1")
    tracker.record(key, "web-1", "success", "192.0.2.2")
    tracker.flush()
    assert [u.system for u in UsageQueries(accounts.db).systems(key)] == ["web-1"]
    assert accounts.keys.get(key).last_system == "web-1"


def test_long_systems_are_cut_and_empty_ones_are_unknown(
    accounts: Services, at_t0: ManualClock
) -> None:
    key = new_key(accounts, "names")
    tracker = UsageTracker(accounts.db, accounts.keys, clock=at_t0)
    tracker.record(key, "x" * 200, "success", None)
    tracker.record(key, "", "success", None)
    tracker.flush()
    got = {u.system: u.last_ip for u in UsageQueries(accounts.db).systems(key)}
    assert got == {"x" * 64: None, "unknown": None}


def test_distinct_systems_per_window_are_bounded(accounts: Services, at_t0: ManualClock) -> None:
    key = new_key(accounts, "bounded")
    tracker = UsageTracker(accounts.db, accounts.keys, clock=at_t0, max_pairs=3)
    for n in range(6):
        tracker.record(key, f"agent-{n}", "success", None)
    tracker.record(key, "agent-0", "success", None)
    tracker.record(key, "agent-5", "refused", None)
    tracker.flush()
    totals = hourly_totals(accounts)
    assert totals == Counter(
        {
            (key, "agent-0", "success"): 2,
            (key, "agent-1", "success"): 1,
            (key, "agent-2", "success"): 1,
            (key, OTHER_SYSTEM, "success"): 3,
            (key, OTHER_SYSTEM, "refused"): 1,
        }
    )
    # A new window has room again.
    tracker.record(key, "agent-5", "success", None)
    tracker.flush()
    assert hourly_totals(accounts)[(key, "agent-5", "success")] == 1


def test_a_failed_flush_keeps_the_counts_and_logs_once(
    accounts: Services, at_t0: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key(accounts, "failing")
    tracker = UsageTracker(accounts.db, accounts.keys, clock=at_t0)
    tracker.record(key, "web-1", "success", "192.0.2.1")
    tracker.record(key, "web-1", "success", "192.0.2.1")
    caplog.set_level(logging.WARNING, logger="searchgate.usage")
    # The second table fails: the first table's rows of the same transaction roll back.
    with table_away(accounts, "key_systems"):
        tracker.flush()
        tracker.record(key, "web-1", "refused", "192.0.2.3")
        tracker.flush()
        assert tracker.pending_requests() == 3
        assert hourly_totals(accounts) == Counter()
    failures = [r for r in caplog.records if "could not write key usage" in r.getMessage()]
    assert len(failures) == 1
    tracker.flush()
    assert tracker.pending_requests() == 0
    assert hourly_totals(accounts) == Counter(
        {(key, "web-1", "success"): 2, (key, "web-1", "refused"): 1}
    )
    (web,) = UsageQueries(accounts.db).systems(key)
    assert (web.requests, web.last_ip) == (3, "192.0.2.3")
    assert any("written again" in r.getMessage() for r in caplog.records)


def test_counts_kept_over_failures_are_bounded(accounts: Services, at_t0: ManualClock) -> None:
    key = new_key(accounts, "bounded-retry")
    tracker = UsageTracker(accounts.db, accounts.keys, clock=at_t0, max_retained_buckets=4)
    with table_away(accounts, "key_usage_hourly"):
        for _hour in range(6):
            tracker.record(key, "web-1", "success", None)
            tracker.record(key, "web-1", "refused", None)
            tracker.flush()
            at_t0.advance(hours=1)
        # Two buckets per hour, at most four kept: the two newest hours.
        assert tracker.pending_requests() == 4
    tracker.flush()
    hours = sorted({h.hour for h in UsageQueries(accounts.db).hourly(key, T0)})
    assert hours == [T0.replace(minute=0) + timedelta(hours=n) for n in (4, 5)]


def test_stop_flushes_the_remainder(accounts: Services) -> None:
    key = new_key(accounts, "stopping")
    tracker = UsageTracker(accounts.db, accounts.keys, flush_seconds=3600)
    tracker.start()
    tracker.record(key, "web-1", "success", "192.0.2.1")
    tracker.record(key, "web-1", "server_error", "192.0.2.1")
    assert hourly_totals(accounts) == Counter()
    tracker.stop()
    assert hourly_totals(accounts) == Counter(
        {(key, "web-1", "success"): 1, (key, "web-1", "server_error"): 1}
    )


def test_the_background_thread_flushes(accounts: Services) -> None:
    key = new_key(accounts, "thread")
    tracker = UsageTracker(accounts.db, accounts.keys, flush_seconds=0.05)
    tracker.start()
    try:
        tracker.record(key, "web-1", "success", None)
        deadline = time.monotonic() + 30
        while not hourly_totals(accounts) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert hourly_totals(accounts) == Counter({(key, "web-1", "success"): 1})
    finally:
        tracker.stop()


def test_retention_deletes_old_rows_at_most_hourly(accounts: Services, at_t0: ManualClock) -> None:
    key = new_key(accounts, "retention")
    tracker = UsageTracker(accounts.db, accounts.keys, clock=at_t0)
    tracker.record(key, "old-system", "success", None)
    tracker.flush()
    at_t0.advance(days=31)
    tracker.record(key, "web-1", "success", None)
    tracker.flush()
    # The first flush pruned (nothing yet); 31 days later the next one prunes again.
    assert hourly_totals(accounts) == Counter({(key, "web-1", "success"): 1})
    assert [u.system for u in UsageQueries(accounts.db).systems(key)] == ["web-1"]

    # Rows that turn up now (a process with a late clock) stay until an hour has
    # passed since the last pruning.
    stale = at_t0.now - timedelta(days=40)
    with accounts.db.write() as s:
        s.add(
            KeyUsageHourRow(
                key_id=key, hour=stale.replace(minute=0), system="late", outcome="success", count=5
            )
        )
        s.add(
            KeySystemRow(
                key_id=key,
                system="late",
                first_seen_at=stale,
                last_seen_at=stale,
                last_ip=None,
                requests=5,
            )
        )
    at_t0.advance(minutes=30)
    tracker.flush()
    assert hourly_totals(accounts)[(key, "late", "success")] == 5
    at_t0.advance(minutes=31)
    tracker.flush()
    assert (key, "late", "success") not in hourly_totals(accounts)
    assert [u.system for u in UsageQueries(accounts.db).systems(key)] == ["web-1"]


def test_daily_by_system(accounts: Services, at_t0: ManualClock) -> None:
    key = new_key(accounts, "daily")
    tracker = UsageTracker(accounts.db, accounts.keys, clock=at_t0)
    for day, system, n in [(0, "web-1", 2), (1, "web-1", 3), (1, "batch", 1), (2, "web-1", 4)]:
        at_t0.now = T0 + timedelta(days=day)
        for i in range(n):
            tracker.record(key, system, "success" if i else "refused", None)
        at_t0.now += timedelta(hours=10)  # another hour, the same day
        tracker.record(key, system, "success", None)
    tracker.flush()
    queries = UsageQueries(accounts.db, at_t0)
    assert queries.daily_by_system(key, 2) == [
        (date(2026, 3, 3), "batch", 2),
        (date(2026, 3, 3), "web-1", 4),
        (date(2026, 3, 4), "web-1", 5),
    ]
    assert queries.daily_by_system(key, 3)[0] == (date(2026, 3, 2), "web-1", 3)
    assert queries.daily_by_system(new_key(accounts, "idle"), 30) == []
    for bad in (0, 31):
        with pytest.raises(InvalidInput) as err:
            queries.daily_by_system(key, bad)
        assert err.value.field == "days"
