"""Validators of typed query parameters: ``Annotated[int, Query(), BeforeValidator(v)]``.

The framework's own readings differ from what the API documents (docs/api.md, Limits):
its integers take signs, underscores and other scripts' digits, its booleans refuse
words the API ignores, and an empty parameter is an error rather than absent. These
keep the documented readings, with errors the validation handler turns into a 400
naming the parameter (never quoting the value: a query string may hold a secret).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic_core import PydanticCustomError

from searchgate.params import read_whole_number, whole_number_rule

TRUE = frozenset({"true", "1", "yes"})
INSTANT_RULE = "an ISO 8601 date or time, like 2026-01-31 or 2026-01-31T12:00:00Z"


def _blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def whole_number_between(low: int, high: int, default: int | None = None) -> Callable[[Any], Any]:
    """ASCII digits only, from ``low`` to ``high``; empty or absent is ``default``."""

    def check(raw: Any) -> Any:
        if _blank(raw):
            return default
        value = read_whole_number(raw, low, high) if isinstance(raw, str) else None
        if value is None:
            raise PydanticCustomError("whole_number", whole_number_rule(low, high))
        return value

    return check


def flag(raw: Any) -> Any:
    """true, 1 or yes (any case) is true; anything else, or nothing, is false."""
    if isinstance(raw, bool):
        return raw
    return isinstance(raw, str) and raw.strip().lower() in TRUE


def instant(raw: Any) -> Any:
    """An ISO 8601 date or time, in UTC unless it names its offset; empty is absent."""
    if _blank(raw):
        return None
    if isinstance(raw, datetime):
        parsed = raw
    else:
        try:
            parsed = datetime.fromisoformat(str(raw))
        except ValueError:
            raise PydanticCustomError("instant", INSTANT_RULE) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def optional_text(raw: Any) -> Any:
    """An empty parameter is an absent one."""
    return None if _blank(raw) else raw
