"""Uploads of a process handed to its own indexer (no read-back from the database),
and the commit interval of the indexing thread.

Real catalog (SQLite and PostgreSQL) and real tantivy indexes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from searchgate.catalog import changelog
from searchgate.catalog.service import parse_settings
from searchgate.config import Settings
from searchgate.engines.base import Ids, MatchAll, SearchPlan
from searchgate.runtime import Runtime, build_runtime

SETTINGS = parse_settings(
    {"idField": "id", "titleField": "title", "searchable": [{"name": "title"}]}
)


def rows(prefix: str, n: int, version: str = "") -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{i}", "title": f"{prefix} item {i} {version}"} for i in range(n)]


def titles(rt: Runtime, ids: list[str]) -> dict[str, str]:
    """Record id -> stored JSON of the searchable documents among ``ids``."""
    found = rt.engine.search("c", SearchPlan(text=None, filter=Ids(tuple(ids)), limit=100))
    return {hit.record_id: hit.source for hit in found.hits}


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = build_runtime(settings)
    try:
        yield runtime
    finally:
        runtime.stop()


def _count_change_reads(rt: Runtime) -> list[int]:
    """Counts the statements that read changes back from the database."""
    reads: list[int] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM changes" in statement and "LEFT OUTER JOIN records" in statement:
            reads.append(1)

    event.listen(rt.services.db.engine, "before_cursor_execute", before)
    return reads


def test_an_upload_is_indexed_from_the_records_it_holds(rt: Runtime) -> None:
    rt.indexer.repair()
    rt.services.catalog.put_settings("c", SETTINGS)
    rt.indexer.catch_up()
    reads = _count_change_reads(rt)
    result = rt.services.catalog.write_records("c", rows("a", 50))
    # Applied in the writing thread, not yet committed: nothing searchable yet.
    assert rt.indexer._position == result.seq
    assert rt.engine.count("c", None, MatchAll()) == 0
    rt.indexer.catch_up()
    assert rt.engine.applied_seq() == result.seq
    assert rt.engine.count("c", None, MatchAll()) == 50
    assert reads == [], "the upload was read back from the database"


def test_updates_and_replace_through_the_handoff_leave_one_document_per_id(
    rt: Runtime,
) -> None:
    rt.indexer.repair()
    rt.services.catalog.write_records("c", rows("a", 30, "v1"))
    rt.services.catalog.write_records("c", rows("a", 10, "v2"))
    rt.indexer.catch_up()
    assert rt.engine.count("c", None, MatchAll()) == 30
    got = titles(rt, ["a0", "a9", "a10"])
    assert "v2" in got["a0"] and "v2" in got["a9"] and "v1" in got["a10"]
    rt.services.catalog.write_records("c", rows("b", 5), replace=True)
    rt.indexer.catch_up()
    assert rt.engine.count("c", None, MatchAll()) == 5
    assert set(titles(rt, ["a0", "b0", "b4"])) == {"b0", "b4"}


def test_a_batch_after_a_change_of_another_kind_is_read_from_the_log(rt: Runtime) -> None:
    rt.indexer.repair()
    rt.services.catalog.write_records("c", rows("a", 20))
    rt.indexer.catch_up()
    # A delete is not handed over: the next upload is not the next change for the
    # indexer, which must apply both from the log, in order.
    rt.services.catalog.delete_records("c", ["a1", "a2"])
    result = rt.services.catalog.write_records("c", [*rows("a", 2, "again"), *rows("n", 3)])
    assert rt.indexer._position < result.seq
    rt.indexer.catch_up()
    assert rt.engine.applied_seq() == result.seq
    # a0 and a1 were written again, a2 stays deleted, n0-n2 are new.
    assert rt.engine.count("c", None, MatchAll()) == 20 - 2 + 1 + 3
    got = titles(rt, ["a0", "a1", "a2"])
    assert set(got) == {"a0", "a1"} and "again" in got["a1"]


def test_a_collection_deleted_and_created_again_keeps_no_old_document(rt: Runtime) -> None:
    rt.indexer.repair()
    rt.services.catalog.write_records("c", rows("a", 10))
    rt.indexer.catch_up()
    rt.services.catalog.delete_collection("c")
    rt.indexer.catch_up()
    rt.services.catalog.write_records("c", rows("z", 4))
    rt.indexer.catch_up()
    assert rt.engine.count("c", None, MatchAll()) == 4
    assert rt.indexer.lag() == 0


def test_the_indexing_thread_commits_within_the_interval_or_at_once_for_a_waiter(
    settings: Settings,
) -> None:
    runtime = build_runtime(
        settings.model_copy(update={"index_commit_seconds": 3.0, "index_commit_idle_seconds": 3.0})
    )
    runtime.start()
    try:
        assert runtime.indexer.wait_ready(30)
        first = runtime.services.catalog.write_records("c", rows("a", 10))
        runtime.indexer.notify()
        time.sleep(0.5)
        # Applied but not committed: the interval has not passed.
        assert runtime.indexer._position == first.seq
        assert runtime.engine.applied_seq() < first.seq
        started = time.monotonic()
        assert runtime.wait_searchable(first.seq, 30)
        assert time.monotonic() - started < 2.0, "a waiter should not wait for the interval"
        assert runtime.engine.count("c", None, MatchAll()) == 10
        second = runtime.services.catalog.write_records("c", rows("b", 5))
        runtime.indexer.notify()
        deadline = time.monotonic() + 10
        while runtime.engine.applied_seq() < second.seq and time.monotonic() < deadline:
            time.sleep(0.05)
        # Nobody waited: searchable once the interval passed.
        assert runtime.engine.applied_seq() == second.seq
        assert runtime.engine.count("c", None, MatchAll()) == 15
    finally:
        runtime.stop()


def test_a_failed_upload_releases_the_indexer(rt: Runtime) -> None:
    rt.indexer.repair()
    rt.services.catalog.write_records("c", rows("a", 3))
    with pytest.raises(Exception, match="failOnFirstError"):
        rt.services.catalog.write_records("c", [{"id": "x"}, {"nope": 1}], fail_on_first_error=True)
    # The indexer's lock was released: a pass runs and commits.
    assert rt.indexer.catch_up() == 0
    assert rt.engine.count("c", None, MatchAll()) == 3
    with rt.services.db.read() as s:
        assert changelog.current_seq(s) == rt.engine.applied_seq()


def test_searches_move_to_the_segments_merged_in_the_background(rt: Runtime) -> None:
    rt.indexer.repair()
    ci = None
    merged_later = False
    for n in range(40):
        rt.services.catalog.write_records("c", rows(f"b{n}-", 200))
        rt.indexer.catch_up()
        ci = rt.engine._indexes["c"]
        time.sleep(0.3)
        ci.index.reload()
        if ci.index.searcher().num_segments < ci.searcher.num_segments:
            # A merge finished after the last commit: the searcher still has the
            # segments it replaced.
            merged_later = True
            break
    assert ci is not None and merged_later, "no background merge was seen"
    stale = ci.searcher.num_segments
    assert rt.engine.pick_up_merges() == 1
    assert ci.searcher.num_segments < stale
    assert rt.engine.count("c", None, MatchAll()) == (n + 1) * 200


class Ticks:
    """A monotonic clock the test moves (by binary fractions, which add up exactly)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _timed_runtime(settings: Settings, ticks: Ticks) -> Runtime:
    runtime = build_runtime(
        settings.model_copy(
            update={"index_commit_seconds": 1.0, "index_commit_idle_seconds": 0.25}
        ),
        monotonic=ticks,
    )
    runtime.indexer.repair()
    return runtime


def test_a_change_stream_gone_quiet_is_committed_after_the_idle_delay(
    settings: Settings,
) -> None:
    ticks = Ticks()
    runtime = _timed_runtime(settings, ticks)
    try:
        first = runtime.services.catalog.write_records("c", rows("a", 10))
        runtime.indexer.catch_up(timed=True)
        # Applied, not committed: more changes may follow at once.
        assert runtime.indexer._position == first.seq
        assert runtime.engine.applied_seq() < first.seq
        ticks.now += 0.125
        runtime.indexer.catch_up(timed=True)
        assert runtime.engine.applied_seq() < first.seq
        ticks.now += 0.125
        runtime.indexer.catch_up(timed=True)
        # Quiet for the idle delay: searchable, long before the commit interval.
        assert runtime.engine.applied_seq() == first.seq
        assert runtime.engine.count("c", None, MatchAll()) == 10
    finally:
        runtime.stop()


def test_a_sustained_change_stream_is_committed_once_per_interval(settings: Settings) -> None:
    ticks = Ticks()
    runtime = _timed_runtime(settings, ticks)
    try:
        committed_at: list[int] = []
        for n in range(25):
            result = runtime.services.catalog.write_records("c", rows(f"s{n}-", 3))
            runtime.indexer.catch_up(timed=True)
            if runtime.engine.applied_seq() == result.seq:
                committed_at.append(n)
            # A change every 0.125 s: never quiet for the idle delay.
            ticks.now += 0.125
        # The first uncommitted changes at 0 s and 1.125 s: a commit 1 s after each.
        assert committed_at == [8, 17]
        ticks.now += 0.25
        runtime.indexer.catch_up(timed=True)
        assert runtime.engine.count("c", None, MatchAll()) == 25 * 3
    finally:
        runtime.stop()


def test_a_waiter_is_committed_at_once_within_a_quiet_delay(settings: Settings) -> None:
    ticks = Ticks()
    runtime = _timed_runtime(settings, ticks)
    try:
        result = runtime.services.catalog.write_records("c", rows("w", 4))
        runtime.indexer.want(result.seq)
        runtime.indexer.catch_up(timed=True)
        assert runtime.engine.applied_seq() == result.seq
    finally:
        runtime.stop()
