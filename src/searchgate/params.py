"""Whole numbers typed into query strings and forms: the one parser for them.

``str.isdigit`` says yes to "²" and "١٢" (which ``int`` then refuses or reads), ``int``
refuses more than 4,300 digits, and databases store at most a signed 64-bit integer:
each of those was a 500. Here only ASCII digits pass, and only within bounds.
"""

from __future__ import annotations

import re
from typing import overload

from searchgate.errors import InvalidInput

# The largest integer SQLite and PostgreSQL (BIGINT) columns hold.
SQL_INT_MAX = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


@overload
def whole_number(raw: str | None, field: str, *, low: int, high: int, default: int) -> int: ...


@overload
def whole_number(
    raw: str | None, field: str, *, low: int, high: int, default: None = None
) -> int | None: ...


def whole_number(
    raw: str | None, field: str, *, low: int, high: int, default: int | None = None
) -> int | None:
    """``raw`` as an integer from ``low`` to ``high``; ``default`` when it is None.
    Anything else is an InvalidInput naming ``field`` (the value is not echoed: a
    query string may hold anything, a secret included)."""
    if raw is None:
        return default
    value = read_whole_number(raw, low, high)
    if value is None:
        raise InvalidInput(f"{field}: {whole_number_rule(low, high)}", field=field)
    return value


def read_whole_number(raw: str, low: int, high: int) -> int | None:
    """``raw`` as an integer from ``low`` to ``high``, or None when it is not one."""
    text = raw.strip()
    if _DIGITS.fullmatch(text):
        value = int(text)
        if low <= value <= high:
            return value
    return None


def whole_number_rule(low: int, high: int) -> str:
    return f"a whole number from {low} to {high}"


def size_choice(raw: str | None, field: str, sizes: tuple[int, ...], default: int) -> int:
    """A page size that must be one of ``sizes`` (the page's own links offer no other)."""
    size = whole_number(raw, field, low=min(sizes), high=max(sizes), default=default)
    if size not in sizes:
        raise InvalidInput(f"{field}: one of {', '.join(map(str, sizes))}", field=field)
    return size
