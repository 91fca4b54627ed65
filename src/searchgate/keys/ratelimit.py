"""Per-key request rates: a token bucket per key in each server process.

Every process allows its share of a key's rate (the rate divided by the number of live
server processes), so that the whole deployment allows about the configured rate
without a shared counter on the hot path.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from searchgate.errors import RateLimited

log = logging.getLogger("searchgate.keys")


# A bucket untouched for a minute has refilled whole (its capacity is a minute's
# share): forgetting it changes nothing. Past this many, such buckets are dropped.
MAX_BUCKETS = 100_000
REFILL_SECONDS = 60.0


class RateLimiter:
    def __init__(self, processes: Callable[[], int] = lambda: 1) -> None:
        self._processes = processes
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, at)
        self._lock = threading.Lock()

    def acquire(self, key_id: str, per_minute: int, now: float | None = None) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        at = time.monotonic() if now is None else now
        share = per_minute / max(1, self._processes())
        capacity = max(1.0, share)
        refill = share / 60.0
        with self._lock:
            known = self._buckets.get(key_id)
            if known is None and len(self._buckets) >= MAX_BUCKETS:
                self._forget_full(at)
            tokens, last = known or (capacity, at)
            tokens = min(capacity, tokens + (at - last) * refill)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, at)
                return 0.0
            self._buckets[key_id] = (tokens, at)
            return (1.0 - tokens) / refill

    def sibling(self) -> RateLimiter:
        """Another limiter sharing its rates among the same processes."""
        return RateLimiter(self._processes)

    def _forget_full(self, at: float) -> None:
        self._buckets = {k: v for k, v in self._buckets.items() if at - v[1] < REFILL_SECONDS}
        if len(self._buckets) >= MAX_BUCKETS:
            # More callers than that within a minute: limits start over rather than
            # memory growing without bound.
            self._buckets.clear()

    @staticmethod
    def retry_after(wait: float) -> int:
        return max(1, math.ceil(wait))


class ClientRates:
    """A default request rate per client address, for callers without a key of their
    own: public SAYT (no key at all) and browser tokens (public, in every page of a
    shop). A client key's own rate is set on the key (docs/keys.md)."""

    def __init__(self, limiter: RateLimiter, per_minute: int, what: str, setting: str) -> None:
        self._limiter = limiter
        self.per_minute = per_minute
        self._what = what
        self._setting = setting

    def check(self, ip: str | None) -> None:
        """Raises RateLimited when ``ip`` is over the rate (never when it is 0)."""
        if not self.per_minute:
            return
        wait = self._limiter.acquire(ip or "unknown", self.per_minute)
        if wait > 0:
            after = self._limiter.retry_after(wait)
            raise RateLimited(
                f"{self._what} allows {self.per_minute} requests per minute from one client "
                f"address ({self._setting}); retry in {after} s",
                retryAfter=after,
            )


class CachedCount:
    """A count that is expensive to read (a database query), re-read at most every
    ``seconds``; the rate limiter asks for it on every limited request."""

    def __init__(self, read: Callable[[], int], seconds: float = 10.0) -> None:
        self._read = read
        self._seconds = seconds
        self._value = 1
        self._at = float("-inf")
        self._lock = threading.Lock()

    def __call__(self) -> int:
        now = time.monotonic()
        if now - self._at < self._seconds:
            return self._value
        with self._lock:
            if now - self._at >= self._seconds:
                try:
                    self._value = max(1, self._read())
                except Exception:
                    # A failed read keeps the last count: limits stay enforced.
                    log.warning("could not count live server processes", exc_info=True)
                self._at = now
        return self._value
