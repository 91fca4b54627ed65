"""SAYT's ``~`` forms: ``refinements`` (``~Brand=Bose~price:20..80``) and ``productSort``
(``~price:A~rating:D``), parsed into engine filters and sort keys, or a 400 that names
the parameter and the part that is wrong."""

from __future__ import annotations

import math
import re

from searchgate.catalog.settings import CollectionSettings, NavigationSetting
from searchgate.engines.base import Filter, MatchAll, Or, Range, SortKey, Terms, and_
from searchgate.errors import InvalidInput

MAX_SORT_KEYS = 8
_SORT = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\-]*):([AaDd])$")


def _navigation(settings: CollectionSettings, name: str) -> NavigationSetting | None:
    """Exact name first; else a unique case-insensitive match (``~Brand=`` for ``brand``)."""
    nav = settings.navigation(name)
    if nav is None:
        same = [n for n in settings.navigations if n.name.lower() == name.lower()]
        nav = same[0] if len(same) == 1 else None
    return nav


def _names(settings: CollectionSettings, kind: str) -> str:
    names = [n.name for n in settings.navigations if n.type == kind]
    return ", ".join(names[:20]) or "none"


def parse_product_sort(text: str | None, settings: CollectionSettings) -> tuple[SortKey, ...]:
    """``~price:A~rating:D``: sortable fields, A(scending) or D(escending)."""
    if not text:
        return ()
    parts = [p for p in text.split("~") if p]
    if len(parts) > MAX_SORT_KEYS:
        raise InvalidInput(f"productSort: at most {MAX_SORT_KEYS} fields", field="productSort")
    keys = []
    for part in parts:
        m = _SORT.fullmatch(part)
        if m is None:
            raise InvalidInput(
                f"productSort: {part[:80]!r} is not field:A or field:D", field="productSort"
            )
        if m.group(1) not in settings.sortable:
            sortable = ", ".join(settings.sortable) or "none"
            raise InvalidInput(
                f"productSort: {m.group(1)!r} is not sortable (sortable: {sortable})",
                field="productSort",
            )
        keys.append(SortKey(m.group(1), m.group(2).upper() == "D"))
    return tuple(keys)


def _bound(text: str, item: str) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InvalidInput(
            f"refinements: {item[:80]!r}: {text[:40]!r} is not a number", field="refinements"
        )
    return value


def parse_refinements(
    text: str | None, settings: CollectionSettings, max_refinements: int = 100
) -> Filter:
    """``~Brand=Bose~price:20..80``: values with ``=``, numeric ranges with ``:low..high``
    (low inclusive, high exclusive, either may be left out). Selections in one
    multi-select (``or``) navigation widen the result; in any other they narrow it."""
    if not text:
        return MatchAll()
    items = [p for p in text.split("~") if p]
    if len(items) > max_refinements:
        raise InvalidInput(
            f"refinements: at most {max_refinements} refinements", field="refinements"
        )
    chosen: dict[str, list[Filter]] = {}
    for item in items:
        if "=" in item:
            name, value = item.split("=", 1)
            nav = _navigation(settings, name)
            if nav is None or nav.type != "Value":
                raise InvalidInput(
                    f"refinements: {name[:64]!r} is not a value navigation "
                    f"(value navigations: {_names(settings, 'Value')})",
                    field="refinements",
                )
            if not value:
                raise InvalidInput(f"refinements: {name}= needs a value", field="refinements")
            chosen.setdefault(nav.name, []).append(Terms(nav.name, (value,)))
        elif ":" in item:
            name, span = item.split(":", 1)
            nav = _navigation(settings, name)
            if nav is None or nav.type != "Range":
                raise InvalidInput(
                    f"refinements: {name[:64]!r} is not a range navigation "
                    f"(range navigations: {_names(settings, 'Range')})",
                    field="refinements",
                )
            if ".." not in span:
                raise InvalidInput(
                    f"refinements: {item[:80]!r} is not name:low..high", field="refinements"
                )
            low_s, high_s = span.split("..", 1)
            low, high = _bound(low_s, item), _bound(high_s, item)
            if low is None and high is None:
                raise InvalidInput(
                    f"refinements: {item[:80]!r} needs a low or a high bound", field="refinements"
                )
            if low is not None and high is not None and low > high:
                raise InvalidInput(
                    f"refinements: {item[:80]!r}: low is above high", field="refinements"
                )
            chosen.setdefault(nav.name, []).append(Range(nav.name, low, high))
        else:
            raise InvalidInput(
                f"refinements: {item[:80]!r} is neither Name=value nor name:low..high",
                field="refinements",
            )
    parts: list[Filter] = []
    for name, filters in chosen.items():
        nav = settings.navigation(name)
        if nav is not None and nav.multi_select and len(filters) > 1:
            parts.append(Or(tuple(filters)))
        else:
            parts.extend(filters)
    return and_(*parts)
