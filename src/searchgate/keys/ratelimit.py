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

log = logging.getLogger("searchgate.keys")


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
            tokens, last = self._buckets.get(key_id, (capacity, at))
            tokens = min(capacity, tokens + (at - last) * refill)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, at)
                return 0.0
            self._buckets[key_id] = (tokens, at)
            return (1.0 - tokens) / refill

    @staticmethod
    def retry_after(wait: float) -> int:
        return max(1, math.ceil(wait))


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
