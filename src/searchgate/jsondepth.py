"""The one nesting limit of JSON that comes in: request bodies and records.

orjson refuses to write anything nested deeper than 255 levels, and an answer holds a
record (or echoes a search request) a few levels down: a record nested 251 levels
deep was stored, then broke every answer that held it. Refusing deeper JSON where it
comes in keeps everything that was accepted writable, with a wide margin.
"""

from __future__ import annotations

from typing import Any

MAX_JSON_DEPTH = 32
DEPTH_REASON = (
    f"objects and arrays nest at most {MAX_JSON_DEPTH} levels (the record or body "
    "itself is the first)"
)


def too_deep(value: Any, levels: int = MAX_JSON_DEPTH) -> bool:
    """Whether objects and arrays in ``value`` nest more than ``levels`` deep (a value
    that is itself an object or array is the first level; a scalar is none)."""
    # A loop with its own stack rather than recursion: the input chooses the depth.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > levels:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def may_be_too_deep(raw: bytes, levels: int = MAX_JSON_DEPTH) -> bool:
    """False when ``raw`` cannot hold more than ``levels`` levels: it does not open that
    many objects and arrays in all. Counting bytes costs far less than walking the
    decoded value, and most bodies open only a few."""
    return raw.count(b"[") + raw.count(b"{") > levels
