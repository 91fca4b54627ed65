"""Whether this process's view of key revocations is recent enough to trust.

A server process caches what it read of each key (``KeyRecords.verify``), and another
process or node may disable or delete a key at any time. A background thread looks at
the head of the signed change log (every change to a key is recorded there in the
transaction that makes it) twice a second, and whenever a key change is announced (PostgreSQL
NOTIFY): when the head moved, the cache is emptied; when the look succeeded, the time
is recorded. The key check compares that time with the bound (``fresh``): a process cut
off from its database stops trusting its cache after ``staleness`` seconds and refuses
client keys with ``revocations_unconfirmed`` until the database answers again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from searchgate.catalog.changelog import HeadReader
from searchgate.clock import Monotonic
from searchgate.db import Database

log = logging.getLogger("searchgate.keys")

AUDIT_HEAD_SQL = "SELECT seq FROM audit_head WHERE id = 1"
# The watch looks at least this often, and four times within the bound, so that one
# slow or lost look does not make a healthy process refuse keys.
MAX_POLL_SECONDS = 0.5


class RevocationWatch:
    def __init__(
        self,
        db: Database,
        forget: Callable[[], None],
        staleness: float,
        *,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self.staleness = staleness
        self.poll_seconds = min(MAX_POLL_SECONDS, staleness / 4)
        self._forget = forget
        self._monotonic = monotonic
        self._head = HeadReader(db, AUDIT_HEAD_SQL)
        self._seen: int | None = None
        # Never confirmed: nothing is trusted before the first successful look.
        self._confirmed_at = -math.inf
        self._failing = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def retry_after(self) -> float:
        """When a refused client may try again: the next look."""
        return max(1.0, self.poll_seconds)

    def fresh(self) -> bool:
        """Whether the view was confirmed within the bound: one clock read, on every
        data-plane request."""
        return self._monotonic() - self._confirmed_at <= self.staleness

    def age(self) -> float:
        """Seconds since the view was last confirmed (infinite before the first time)."""
        return self._monotonic() - self._confirmed_at

    def refresh(self) -> bool:
        """One look at the database; True when it answered."""
        # The view is as recent as the moment the look started, not when it returned.
        started = self._monotonic()
        try:
            head = self._head()
        except Exception as exc:
            if not self._failing:
                log.warning(
                    "cannot confirm key revocations (%s: %s); client keys are refused "
                    "after %.1f s without confirmation",
                    type(exc).__name__,
                    exc,
                    self.staleness,
                )
            self._failing = True
            return False
        if head != self._seen:
            self._forget()
            self._seen = head
        if self._failing:
            log.warning("key revocations confirmed again")
            self._failing = False
        self._confirmed_at = started
        return True

    def wake(self, _payload: str = "") -> None:
        """A key changed somewhere: forget what the cache holds and look now."""
        self._forget()
        self._wake.set()

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(
            target=self._run, name="searchgate-revocations", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._head.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if not self._stop.is_set():
                self.refresh()
