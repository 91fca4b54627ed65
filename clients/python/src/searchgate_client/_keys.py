"""Where the SDK gets its client key: a source (usually the secret store) behind a cache.

Rotation replaces the key in the store; systems pick the new one up either when the
cached copy reaches its maximum age or, at the latest, when the server answers 401 to
the old one (the client then refreshes once and retries), so a rotation never shows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from searchgate_client._errors import KeySourceError
from searchgate_client.keyformat import check_key_format
from searchgate_client.sources import KeySource

log = logging.getLogger("searchgate_client")


@dataclass(frozen=True)
class _Held:
    value: str
    generation: int
    fetched_at: float
    # After a failed background refresh the old value is kept until then.
    next_attempt_at: float | None = None


class CachedKey:
    """The current client key from ``source``, re-read after ``max_age_seconds`` and on
    ``refresh()``. Thread-safe: one source call at a time, and callers that all saw the
    same stale key share one refresh."""

    def __init__(
        self,
        source: KeySource,
        max_age_seconds: float = 300,
        *,
        retry_seconds: float = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_age_seconds < 0:
            raise ValueError("max_age_seconds is 0 or more")
        if retry_seconds <= 0:
            raise ValueError("retry_seconds is more than 0")
        self._source = source
        self.max_age_seconds = float(max_age_seconds)
        self.retry_seconds = float(retry_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._held: _Held | None = None
        self.source_calls = 0

    def get(self) -> str:
        return self.current()[0]

    def current(self) -> tuple[str, int]:
        """The key and its generation (which grows with every source read)."""
        cached = self.cached()
        if cached is not None:
            return cached
        with self._lock:
            held = self._held
            if held is not None and self._fresh(held):
                return held.value, held.generation
            if held is None:
                return self._fetch()
            try:
                return self._fetch()
            except KeySourceError as exc:
                # The cached key may well still be valid: keep serving it rather than
                # fail every request while the store is briefly unreachable. A 401
                # forces a real refresh, which does raise.
                log.warning("client key source failed, keeping the cached key: %s", exc.message)
                self._held = _Held(
                    held.value,
                    held.generation,
                    held.fetched_at,
                    self._clock() + self.retry_seconds,
                )
                return held.value, held.generation

    def cached(self) -> tuple[str, int] | None:
        """``current()`` when that needs no source read, else None: an event loop asks
        this first and reads the source (which may block) in a worker thread."""
        held = self._held
        if held is not None and self._fresh(held):
            return held.value, held.generation
        return None

    def refresh(self, after: int | None = None) -> str:
        """Reads the source now. With ``after`` (a generation from ``current()``), a
        refresh that some other caller made since then is reused instead."""
        with self._lock:
            held = self._held
            if after is not None and held is not None and held.generation > after:
                return held.value
            return self._fetch()[0]

    def _fresh(self, held: _Held) -> bool:
        now = self._clock()
        if held.next_attempt_at is not None:
            return now < held.next_attempt_at
        return now - held.fetched_at < self.max_age_seconds

    def _fetch(self) -> tuple[str, int]:
        self.source_calls += 1
        try:
            raw = self._source()
        except Exception as exc:
            raise KeySourceError(
                0,
                "key_source_failed",
                f"reading the client key from its source failed ({type(exc).__name__})",
            ) from exc
        if not isinstance(raw, str):
            raise KeySourceError(0, "key_source_invalid", "the key source did not return a string")
        # Key files and environment variables often end with a newline.
        value = raw.strip()
        problem = check_key_format(value)
        if problem is not None:
            raise KeySourceError(
                0,
                "key_source_invalid",
                f"the key source returned something that is not a client key: {problem}",
            )
        generation = self._held.generation + 1 if self._held is not None else 1
        self._held = _Held(value, generation, self._clock())
        return value, generation
