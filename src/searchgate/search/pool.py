"""The pool of threads searches run in, with a bounded queue shared fairly by callers.

A search costs about a millisecond, but a deep or sorted page of a large collection
costs a hundred times that, most of it inside the engine, which releases the
interpreter while it works: run on the event loop, a few such searches held up every
other request of the process. Here each runs on one of a few threads, and:

- each caller (a client key, or a browser token per client address) holds at most
  ``caller_threads`` threads at once; waiting searches are taken in turn from each
  caller, so a caller who sends many slow searches waits behind its own;
- a caller with ``caller_concurrency`` searches in flight (running or waiting) is
  refused the next one (429 ``too_many_concurrent``);
- at most ``queue`` searches wait; past that every caller is refused (503
  ``overloaded``): a queue without a bound turns overload into timeouts for all;
- a search has ``budget_seconds`` from its arrival: one still waiting then is dropped
  unrun, and its caller is answered 503 ``time_budget_exceeded`` (one already running
  finishes, since the engine cannot be interrupted, and keeps its caller's thread
  until then).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from searchgate.clock import Monotonic
from searchgate.errors import Overloaded, TimeBudgetExceeded, TooManyConcurrent

T = TypeVar("T")


@dataclass(frozen=True)
class PoolLimits:
    threads: int = 4
    queue: int = 64
    caller_threads: int = 2
    caller_concurrency: int = 8
    budget_seconds: float = 2.0


@dataclass(eq=False)
class _Job(Generic[T]):
    caller: str
    run: Callable[[], T]
    deadline: float
    future: Future[T] = field(default_factory=Future)


class SearchPool:
    def __init__(self, limits: PoolLimits, monotonic: Monotonic = time.monotonic) -> None:
        self.limits = limits
        self._monotonic = monotonic
        self._cond = threading.Condition()
        # Caller -> its waiting jobs, in the order callers are served (round robin).
        self._waiting: OrderedDict[str, deque[_Job[object]]] = OrderedDict()
        self._queued = 0
        self._running: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"search-{i}", daemon=True)
            for i in range(limits.threads)
        ]
        for t in self._threads:
            t.start()

    # --- admission (the event loop) ----------------------------------------------------

    def submit(self, caller: str, run: Callable[[], T]) -> Future[T]:
        """Queues ``run`` for ``caller``; refuses it at once when the caller or the
        pool is full."""
        lim = self.limits
        with self._cond:
            if self._stopping:
                raise Overloaded("the server is stopping; retry on another", retryAfter=1)
            if self._in_flight.get(caller, 0) >= lim.caller_concurrency:
                raise TooManyConcurrent(
                    f"at most {lim.caller_concurrency} searches in flight per caller "
                    "(SEARCHGATE_SEARCH_CALLER_CONCURRENCY); wait for an answer first",
                    limit=lim.caller_concurrency,
                    retryAfter=1,
                )
            if self._queued >= lim.queue and not self._may_start(caller):
                raise Overloaded(
                    "this server has more searches waiting than it takes "
                    "(SEARCHGATE_SEARCH_QUEUE); retry shortly",
                    retryAfter=1,
                )
            job: _Job[T] = _Job(caller, run, self._monotonic() + lim.budget_seconds)
            self._in_flight[caller] = self._in_flight.get(caller, 0) + 1
            self._waiting.setdefault(caller, deque()).append(job)  # type: ignore[arg-type]
            self._queued += 1
            self._cond.notify()
        return job.future

    async def run(self, caller: str, run: Callable[[], T]) -> T:
        """``run``'s result, computed on the pool, awaited within the time budget."""
        future = self.submit(caller, run)
        waiting = asyncio.wrap_future(future)
        # A timer rather than ``asyncio.wait_for``, which costs a task per search.
        expired: list[bool] = []
        timer = asyncio.get_running_loop().call_later(
            self.limits.budget_seconds, _expire, waiting, expired
        )
        try:
            return await waiting
        except asyncio.CancelledError:
            if not expired:
                raise
            # Still waiting: dropped unrun, and no longer counted against its caller;
            # running: it ends on its own and only then frees its caller's thread.
            self._withdraw(caller, future)
            raise self.over_budget() from None
        finally:
            timer.cancel()

    def over_budget(self) -> TimeBudgetExceeded:
        budget = self.limits.budget_seconds
        return TimeBudgetExceeded(
            f"the search did not finish within {budget:g} s "
            "(SEARCHGATE_SEARCH_TIME_BUDGET_SECONDS); ask for less (a smaller page, "
            "fewer navigations) or retry",
            limit=budget,
            retryAfter=1,
        )

    def stats(self) -> dict[str, int]:
        """How many searches run and wait now."""
        with self._cond:
            return {"running": sum(self._running.values()), "waiting": self._queued}

    def stop(self) -> None:
        """Ends the threads once their current searches end; waiting ones are refused."""
        with self._cond:
            self._stopping = True
            waiting = [job for jobs in self._waiting.values() for job in jobs]
            self._waiting.clear()
            self._queued = 0
            self._cond.notify_all()
        for job in waiting:
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(Overloaded("the server is stopping", retryAfter=1))
        for t in self._threads:
            t.join(timeout=5)

    def _withdraw(self, caller: str, future: Future[T]) -> None:
        with self._cond:
            jobs = self._waiting.get(caller)
            job = next((j for j in jobs if j.future is future), None) if jobs else None
            if jobs is None or job is None:
                return
            jobs.remove(job)
            if not jobs:
                del self._waiting[caller]
            self._queued -= 1
            self._release(self._in_flight, caller)
        future.cancel()

    # --- the threads ---------------------------------------------------------------

    def _may_start(self, caller: str) -> bool:
        """Whether a job of ``caller`` would start at once (an idle thread it may use)."""
        running = sum(self._running.values())
        return (
            running < self.limits.threads
            and self._running.get(caller, 0) < self.limits.caller_threads
            and caller not in self._waiting
        )

    def _next(self) -> _Job[object] | None:
        """The first waiting job of the first caller in turn below its thread share."""
        if sum(self._running.values()) >= self.limits.threads:
            return None
        for caller, jobs in self._waiting.items():
            if self._running.get(caller, 0) < self.limits.caller_threads:
                job = jobs.popleft()
                if jobs:
                    self._waiting.move_to_end(caller)
                else:
                    del self._waiting[caller]
                self._queued -= 1
                return job
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                job = self._next()
                while job is None:
                    if self._stopping:
                        return
                    self._cond.wait()
                    job = self._next()
                self._running[job.caller] = self._running.get(job.caller, 0) + 1
            try:
                self._run(job)
            finally:
                with self._cond:
                    self._release(self._running, job.caller)
                    self._release(self._in_flight, job.caller)
                    # A caller at its share may have jobs waiting for this thread.
                    self._cond.notify_all()

    def _run(self, job: _Job[object]) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        if self._monotonic() > job.deadline:
            job.future.set_exception(self.over_budget())
            return
        try:
            result = job.run()
        except BaseException as exc:
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)

    @staticmethod
    def _release(counts: dict[str, int], caller: str) -> None:
        left = counts[caller] - 1
        if left:
            counts[caller] = left
        else:
            del counts[caller]


def _expire(waiting: asyncio.Future[Any], expired: list[bool]) -> None:
    if not waiting.done():
        expired.append(True)
        waiting.cancel()
