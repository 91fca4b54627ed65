"""Record validation against the limits and a collection's settings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from math import isfinite
from typing import Any

import orjson

from searchgate.catalog.settings import CollectionSettings
from searchgate.config import Limits
from searchgate.jsondepth import DEPTH_REASON, MAX_JSON_DEPTH, too_deep

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
RECORD_ID_MAX = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FIELD_NAME_MAX = 128

_ID_REASON = f"an id has 1 to {RECORD_ID_MAX} characters and no control characters"
_KEY_REASON = "a field name has 1 to 128 characters"
_LIST_REASON = "a list holds strings, numbers or booleans only"
_FINITE_REASON = "numbers must be finite"

# Values of these exact types can never hold a non-finite number, so the per-field loop
# skips them without further work. Subclasses (and everything else) take the general path.
_ALWAYS_FINITE: frozenset[type] = frozenset({str, int, bool, type(None), dict})


def check_collection_name(name: str) -> str | None:
    if COLLECTION_NAME.match(name):
        return None
    return (
        "a collection name starts with a letter or digit and has 1 to 64 letters, "
        "digits, '_' or '-'"
    )


@dataclass(frozen=True)
class InvalidRecord:
    position: int  # 0-based index in a JSON array, or 1-based line in NDJSON/CSV
    position_kind: str  # "index" or "line"
    field: str | None
    reason: str
    record_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {self.position_kind: self.position, "reason": self.reason}
        if self.field is not None:
            d["field"] = self.field
        if self.record_id is not None:
            d["id"] = self.record_id
        return d


# Slots: one is built per valid record (100,000 per upload), and without a __dict__ each
# costs less to build and gives the cyclic GC one tracked object fewer.
@dataclass(frozen=True, slots=True)
class ValidRecord:
    record_id: str
    data: str  # canonical JSON text as stored


def _numeric_ok(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int | float):
        return value == value and abs(value) != float("inf")
    return True


def _value_ok(value: Any) -> bool:
    """``_numeric_ok`` with a fast path for the exact JSON types."""
    tv = type(value)
    if tv in _ALWAYS_FINITE:
        return True
    if tv is float:
        return isfinite(value)
    return _numeric_ok(value)


# One upload validates every record against the same settings object, so the range
# navigation names are worked out once per object. A single entry suffices (settings are
# parsed afresh per request, so a dict keyed by id would only grow), and holding the
# object itself rather than its id means a new object can never be mistaken for it. Settings
# are not changed after parsing; comparing the list and its length still catches a
# replaced or extended navigations list at no real cost.
_range_cache: tuple[CollectionSettings, list[Any], int, tuple[str, ...]] | None = None


def _range_names(settings: CollectionSettings) -> tuple[str, ...]:
    global _range_cache
    navs = settings.navigations
    cached = _range_cache
    if (
        cached is not None
        and cached[0] is settings
        and cached[1] is navs
        and cached[2] == len(navs)
    ):
        return cached[3]
    names = tuple(nav.name for nav in navs if nav.type == "Range")
    _range_cache = (settings, navs, len(navs), names)
    return names


def _check_fields(raw: dict[Any, Any]) -> tuple[str | None, str] | None:
    """The first bad field name or value, in field order."""
    always_finite = _ALWAYS_FINITE
    for key, value in raw.items():
        if not isinstance(key, str) or not key or len(key) > _FIELD_NAME_MAX:
            return str(key)[:64], _KEY_REASON
        tv = type(value)
        if tv is dict:
            # The record is the first level, this value the second.
            if too_deep(value, MAX_JSON_DEPTH - 1):
                return key, DEPTH_REASON
            continue
        if tv in always_finite:
            continue
        if tv is float:
            if not isfinite(value):
                return key, _FINITE_REASON
        elif tv is list or isinstance(value, list):
            for item in value:
                if isinstance(item, list | dict):
                    return key, _LIST_REASON
                if not _value_ok(item):
                    return key, _FINITE_REASON
        elif isinstance(value, dict):
            if too_deep(value, MAX_JSON_DEPTH - 1):
                return key, DEPTH_REASON
        elif not _numeric_ok(value):
            return key, _FINITE_REASON
    return None


def validate_record(
    raw: Any, settings: CollectionSettings, limits: Limits
) -> tuple[ValidRecord | None, tuple[str | None, str] | None]:
    """Returns the valid record, or (field, reason) for the first problem found."""
    if not isinstance(raw, dict):
        return None, (None, f"a record is a JSON object, not {type(raw).__name__}")
    max_fields = limits.max_fields_per_record
    if len(raw) > max_fields:
        return None, (
            None,
            f"a record has at most {max_fields} fields "
            f"(SEARCHGATE_LIMIT_MAX_FIELDS_PER_RECORD); this one has {len(raw)}",
        )
    id_field = settings.id_field
    id_value = raw.get(id_field)
    if type(id_value) is str:
        record_id = id_value
        # Every character the regex refuses is non-printable, so a printable id needs
        # no regex search; only the rare non-printable one is searched exactly.
        if (
            not record_id
            or len(record_id) > RECORD_ID_MAX
            or (not record_id.isprintable() and _CONTROL.search(record_id))
        ):
            return None, (id_field, _ID_REASON)
    else:
        if isinstance(id_value, bool) or not isinstance(id_value, str | int):
            return None, (id_field, "missing id: a string or an integer is required")
        record_id = str(id_value)
        if not record_id or len(record_id) > RECORD_ID_MAX or _CONTROL.search(record_id):
            return None, (id_field, _ID_REASON)
    problem = _check_fields(raw)
    if problem is not None:
        return None, problem
    for name in _range_names(settings):
        v = raw.get(name)
        tv = type(v)
        if tv is float or tv is int or v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int | float):
            return None, (name, f"{name!r} is a range navigation: a number is required")
    try:
        encoded = orjson.dumps(raw)
    except (TypeError, orjson.JSONEncodeError) as exc:
        return None, (None, f"not serialisable as JSON: {exc}")
    if len(encoded) > limits.max_record_bytes:
        return None, (
            None,
            f"a record is at most {limits.max_record_bytes} bytes as JSON "
            f"(SEARCHGATE_LIMIT_MAX_RECORD_BYTES); this one has {len(encoded)}",
        )
    return ValidRecord(record_id, encoded.decode()), None
