"""Time for the services that enforce lifetimes (sessions, tokens, throttling, TOTP).

Services take a ``Clock`` so that tests can move time instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
# Seconds on a clock that only moves forward (``time.monotonic``): what the in-process
# caches (a key's verdict, the stored SAYT settings) expire by.
Monotonic = Callable[[], float]


def utc_now() -> datetime:
    return datetime.now(UTC)


def aware(dt: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)
