"""The query log's counts and suggestions, on SQLite and PostgreSQL: a flush is one
statement, and suggestions never read the database on the request path once loaded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, func, select

from searchgate.catalog.models import SearchRuleDayRow
from searchgate.runtime import Services
from searchgate.search.analytics import SearchAnalytics
from searchgate.search.querylog import QueryLog


@contextmanager
def statements(services: Services) -> Iterator[list[tuple[str, bool]]]:
    """The SQL statements run meanwhile on either engine, with whether each was an
    executemany."""
    seen: list[tuple[str, bool]] = []

    def listen(_c: Any, _cur: Any, sql: str, _p: Any, _ctx: Any, many: bool) -> None:
        seen.append((sql, many))

    engines = {services.db.engine, services.db.write_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", listen)


def test_a_flush_writes_all_counts_in_one_statement(services: Services) -> None:
    log = QueryLog(services.db)
    for i in range(50):
        log.record("default", f"red shoes {i}")
    log.record("default", "red shoes 1")
    with statements(services) as seen:
        assert log.flush() == 50
    upserts = [sql for sql, _many in seen if "query_stats" in sql.lower()]
    assert len(upserts) == 1
    log.record("default", "red shoes 1")
    log.flush()
    assert log.completions("default", "red shoes 1", 3)[0] == ("red shoes 1", 3)


def test_suggestions_take_a_flush_in_without_reading_on_the_request_path(
    services: Services,
) -> None:
    log = QueryLog(services.db)
    log.record("default", "blue jeans")
    log.flush()
    assert log.completions("default", "blue", 5) == [("blue jeans", 1)]
    for _ in range(3):
        log.record("default", "blue shirt")
    log.record("default", "blue jeans")
    log.flush()
    with statements(services) as seen:
        got = log.completions("default", "blue", 5)
    assert seen == []
    assert got == [("blue shirt", 3), ("blue jeans", 2)]


def test_a_reload_brings_other_processes_counts_outside_the_request_path(
    services: Services,
) -> None:
    here, there = QueryLog(services.db), QueryLog(services.db)
    here.record("default", "green hat")
    here.flush()
    assert here.completions("default", "green", 5) == [("green hat", 1)]
    there.record("default", "green coat")
    there.record("default", "green coat")
    there.flush()
    here.refresh()
    with statements(services) as seen:
        got = here.completions("default", "green", 5)
    assert seen == []
    assert got == [("green coat", 2), ("green hat", 1)]


def test_a_flush_writes_the_days_search_figures_in_one_statement_per_table(
    services: Services,
) -> None:
    log = QueryLog(services.db)
    for i in range(30):
        log.count_search("Production", "default", f"Red Shoes {i}", None, i % 3)
    log.count_search("Production", "default", "", None, 0)
    log.count_search("Staging", "default", "red shoes 1", None, 0)
    with statements(services) as seen:
        log.flush()
    assert len([sql for sql, _many in seen if "into search_days" in sql.lower()]) == 1
    assert len([sql for sql, _many in seen if "into search_query_days" in sql.lower()]) == 1
    report = SearchAnalytics(services.db).report(7)
    assert (report.searches, report.zero_results) == (32, 12)
    # Found something only when the search did: the zero-result ones feed no suggestion.
    assert log.completions("default", "red shoes 1", 5)[0] == ("red shoes 1", 1)
    assert log.completions("default", "red shoes 0", 5) == []
    top = {q.query: (q.searches, q.zero_results) for q in report.top}
    assert top["red shoes 1"] == (2, 1) and top["red shoes 0"] == (1, 1)
    staging = SearchAnalytics(services.db).report(7, area="Staging")
    assert [(q.query, q.searches, q.zero_results) for q in staging.top_zero] == [
        ("red shoes 1", 1, 1)
    ]


def test_rule_and_redirect_hits_are_counted_per_day_in_one_statement(services: Services) -> None:
    log = QueryLog(services.db)
    # A rule named twice in one search fired on that search once; a redirect's rule
    # fired even when the caller lists it only as the redirect.
    for _ in range(3):
        log.count_search("Production", "default", "tv", None, 5, ("TV boost",))
    log.count_search("Production", "default", "tv", None, 5, ("TV boost", "TV boost"))
    log.count_search("Production", "default", "telly", None, 0, ("TV boost",), "TV redirect")
    log.count_search("Production", "default", "tv", None, 0, (), "TV redirect")
    log.count_search("Production", "spare", "tv", None, 2, ("TV boost", "Spare pin"))
    log.count_search("Staging", "default", "tv", None, 2, ("TV boost",))
    log.count_search("Production", "default", "socks", None, 3)
    with statements(services) as seen:
        log.flush()
    assert len([sql for sql, _many in seen if "into search_rule_days" in sql.lower()]) == 1
    analytics = SearchAnalytics(services.db)
    everything = analytics.report(7)
    assert [(r.area, r.rule, r.searches, r.redirects) for r in everything.rules] == [
        ("Production", "TV boost", 6, 0),
        ("Production", "TV redirect", 2, 2),
        ("Production", "Spare pin", 1, 0),
        ("Staging", "TV boost", 1, 0),
    ]
    assert [(r.area, r.rule, r.redirects) for r in everything.redirects] == [
        ("Production", "TV redirect", 2)
    ]
    spare = analytics.report(7, area="Production", collection="spare")
    assert [(r.rule, r.searches) for r in spare.rules] == [("Spare pin", 1), ("TV boost", 1)]
    assert spare.redirects == ()
    # A second flush adds up.
    log.count_search("Production", "default", "tv", None, 0, ("TV redirect",), "TV redirect")
    log.flush()
    again = analytics.report(7, area="Production", collection="default")
    assert [(r.rule, r.searches, r.redirects) for r in again.redirects] == [("TV redirect", 3, 3)]


def test_rule_days_older_than_the_retention_are_deleted(services: Services) -> None:
    now = [datetime(2026, 3, 1, 12, tzinfo=UTC)]
    log = QueryLog(services.db, clock=lambda: now[0], retention_days=2)
    log.count_search("Production", "default", "tv", None, 0, ("TV boost",), "TV redirect")
    log.flush()
    analytics = SearchAnalytics(services.db, clock=lambda: now[0], retention_days=2)
    assert len(analytics.report(7).rules) == 2
    now[0] += timedelta(days=1)
    assert log.prune() == 0
    assert len(analytics.report(7).rules) == 2
    now[0] += timedelta(days=1)
    assert log.prune() == 1
    with services.db.read() as s:
        assert s.scalar(select(func.count()).select_from(SearchRuleDayRow)) == 0


def test_with_analytics_off_searches_are_not_counted_but_suggestions_still_learn(
    services: Services,
) -> None:
    log = QueryLog(services.db, analytics=False)
    log.count_search("Production", "default", "Red Shoes", None, 4, ("Shoe boost",), "Shoe page")
    log.count_search("Production", "default", "qqxxzzv", None, 0)
    with statements(services) as seen:
        log.flush()
    assert not [sql for sql, _many in seen if "search_" in sql.lower()]
    report = SearchAnalytics(services.db).report(7)
    assert (report.searches, report.top, report.rules, report.redirects) == (0, (), (), ())
    assert log.completions("default", "red", 5) == [("red shoes", 1)]
