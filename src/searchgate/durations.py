"""Durations as people type them (``90d``, ``24h``, ``15m``, ``30s``, ``500ms``, ``2w``)
and as Searchgate writes them back: the one grammar of the CLI, the console, the admin
API and the environment."""

from __future__ import annotations

import re
from datetime import timedelta

from searchgate.errors import InvalidInput

# ASCII digits only: "²" is a digit to ``str.isdigit`` and to ``\d`` without the flag.
_DURATION = re.compile(r"\s*(\d{1,12}(?:\.\d{1,9})?)\s*(ms|s|min|m|h|d|w)?\s*", re.ASCII)
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
TEN_YEARS = timedelta(days=10 * 366)


def looks_like_duration(text: str) -> bool:
    """Whether ``text`` is written as a duration (a number and a unit), not a time."""
    m = _DURATION.fullmatch(text)
    return m is not None and m.group(2) is not None


def parse_duration(
    text: str,
    field: str = "duration",
    *,
    bare_seconds: bool = False,
    longest: timedelta = TEN_YEARS,
) -> timedelta:
    """``text`` as a timedelta: a number and a unit (ms, s, m or min, h, d, w). A bare
    number is seconds only where ``bare_seconds`` says so (an environment variable that
    other tools read that way); elsewhere it is refused, since "15" could mean anything."""
    m = _DURATION.fullmatch(text or "")
    if m is None or (m.group(2) is None and not bare_seconds):
        raise InvalidInput(
            f"{field}: {text!r} is not a duration; write a number and a unit, like 90d, "
            "2h, 15m, 30s or 500ms",
            field=field,
        )
    seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2) or "s"]
    if seconds > longest.total_seconds():
        raise InvalidInput(
            f"{field}: {text!r} is longer than {format_duration(longest)}", field=field
        )
    return timedelta(seconds=seconds)


def format_duration(d: timedelta | float) -> str:
    seconds = d.total_seconds() if isinstance(d, timedelta) else float(d)
    if seconds < 0:
        seconds = 0.0
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 or seconds == int(seconds) else f"{seconds:.1f}s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s" if sec else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    return f"{hours // 24}d"
