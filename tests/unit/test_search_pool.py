"""The search pool: per-caller shares and in-flight limits, a bounded queue, the time
budget. Jobs here block on events the test sets, so nothing depends on timing."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future

import pytest

from searchgate.errors import Overloaded, TimeBudgetExceeded, TooManyConcurrent
from searchgate.search.pool import PoolLimits, SearchPool

WAIT = 10.0


class Gate:
    """Jobs that block until the test opens them, and say when they started."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.started: list[str] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def job(self, name: str) -> Callable[[], str]:
        def run() -> str:
            with self._changed:
                self.started.append(name)
                self._changed.notify_all()
            assert self.open.wait(WAIT)
            return name

        return run

    def wait_started(self, count: int) -> list[str]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.started) >= count, WAIT)
            return list(self.started)


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate()
    yield g
    g.open.set()


def make(**limits: float) -> SearchPool:
    return SearchPool(PoolLimits(**limits))  # type: ignore[arg-type]


def test_a_caller_over_its_concurrency_is_refused_and_others_are_not(gate: Gate) -> None:
    pool = make(threads=2, queue=10, caller_threads=1, caller_concurrency=2)
    try:
        pool.submit("a", gate.job("a1"))
        pool.submit("a", gate.job("a2"))
        with pytest.raises(TooManyConcurrent) as refused:
            pool.submit("a", gate.job("a3"))
        assert refused.value.code == "too_many_concurrent"
        assert refused.value.retry_after == 1
        b = pool.submit("b", gate.job("b1"))
        gate.open.set()
        assert b.result(WAIT) == "b1"
    finally:
        pool.stop()


def test_one_caller_never_takes_every_thread(gate: Gate) -> None:
    pool = make(threads=2, queue=10, caller_threads=1, caller_concurrency=10)
    try:
        slow = [pool.submit("greedy", gate.job(f"g{i}")) for i in range(5)]
        assert gate.wait_started(1) == ["g0"]
        # The greedy caller's other four wait for its one thread; another caller's
        # search starts on the free one at once, ahead of them.
        other = pool.submit("other", gate.job("o"))
        assert gate.wait_started(2) == ["g0", "o"]
        assert pool.stats() == {"running": 2, "waiting": 4}
        gate.open.set()
        assert other.result(WAIT) == "o"
        assert [f.result(WAIT) for f in slow] == [f"g{i}" for i in range(5)]
    finally:
        pool.stop()


def test_callers_take_turns_in_the_queue(gate: Gate) -> None:
    pool = make(threads=1, queue=10, caller_threads=1, caller_concurrency=10)
    try:
        first = pool.submit("a", gate.job("a0"))
        gate.wait_started(1)
        for i in (1, 2, 3):
            pool.submit("a", gate.job(f"a{i}"))
        pool.submit("b", gate.job("b1"))
        pool.submit("b", gate.job("b2"))
        gate.open.set()
        first.result(WAIT)
        assert gate.wait_started(6) == ["a0", "a1", "b1", "a2", "b2", "a3"]
    finally:
        pool.stop()


def test_a_full_queue_answers_overloaded(gate: Gate) -> None:
    pool = make(threads=1, queue=2, caller_threads=1, caller_concurrency=10)
    try:
        pool.submit("a", gate.job("a0"))
        gate.wait_started(1)
        pool.submit("b", gate.job("b0"))
        pool.submit("c", gate.job("c0"))
        with pytest.raises(Overloaded) as refused:
            pool.submit("d", gate.job("d0"))
        assert refused.value.code == "overloaded"
    finally:
        pool.stop()


def test_a_search_waiting_past_its_budget_is_dropped_unrun(gate: Gate) -> None:
    now = [0.0]
    pool = SearchPool(
        PoolLimits(threads=1, queue=10, caller_threads=1, caller_concurrency=10, budget_seconds=2),
        monotonic=lambda: now[0],
    )
    try:
        running = pool.submit("a", gate.job("a0"))
        gate.wait_started(1)
        waiting: Future[str] = pool.submit("b", gate.job("b0"))
        now[0] = 2.5
        gate.open.set()
        running.result(WAIT)
        with pytest.raises(TimeBudgetExceeded) as dropped:
            waiting.result(WAIT)
        assert dropped.value.code == "time_budget_exceeded"
        assert gate.started == ["a0"]
        # Its caller's count is back: it may search again.
        assert pool.submit("b", lambda: "again").result(WAIT) == "again"
    finally:
        pool.stop()


def test_run_answers_over_budget_and_frees_the_caller_when_the_search_ends(
    gate: Gate,
) -> None:
    pool = make(threads=1, queue=10, caller_threads=1, caller_concurrency=1, budget_seconds=0.05)
    try:
        with pytest.raises(TimeBudgetExceeded):
            asyncio.run(pool.run("a", gate.job("slow")))
        # The engine cannot be interrupted: the search still holds its thread.
        with pytest.raises(TooManyConcurrent):
            pool.submit("a", gate.job("next"))
        gate.open.set()
        done = threading.Event()

        def freed() -> bool:
            try:
                pool.submit("a", done.set)
            except TooManyConcurrent:
                return False
            return True

        deadline = time.monotonic() + WAIT
        while not freed():
            assert time.monotonic() < deadline, "the caller was never freed"
            time.sleep(0.005)
        assert done.wait(WAIT)
    finally:
        pool.stop()


def test_errors_of_the_search_reach_the_caller() -> None:
    pool = make(threads=1)

    def fails() -> None:
        raise ValueError("bad")

    try:
        with pytest.raises(ValueError, match="bad"):
            asyncio.run(pool.run("a", fails))
        assert pool.stats() == {"running": 0, "waiting": 0}
    finally:
        pool.stop()


def test_a_search_answered_over_budget_while_waiting_no_longer_counts(gate: Gate) -> None:
    pool = make(threads=1, queue=10, caller_threads=1, caller_concurrency=1, budget_seconds=0.05)
    try:
        pool.submit("other", gate.job("holds the thread"))
        gate.wait_started(1)
        with pytest.raises(TimeBudgetExceeded):
            asyncio.run(pool.run("a", gate.job("never runs")))
        # Dropped from the queue at once: its caller may send the next one.
        assert pool.stats() == {"running": 1, "waiting": 0}
        follow = pool.submit("a", gate.job("next"))
        gate.open.set()
        assert follow.result(WAIT) == "next"
        assert "never runs" not in gate.started
    finally:
        pool.stop()
