"""Record validation against the limits and a collection's settings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from searchgate.catalog.settings import CollectionSettings
from searchgate.config import Limits

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
RECORD_ID_MAX = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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


@dataclass(frozen=True)
class ValidRecord:
    record_id: str
    data: str  # canonical JSON text as stored


def _numeric_ok(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int | float):
        return value == value and abs(value) != float("inf")
    return True


def validate_record(
    raw: Any, settings: CollectionSettings, limits: Limits
) -> tuple[ValidRecord | None, tuple[str | None, str] | None]:
    """Returns the valid record, or (field, reason) for the first problem found."""
    if not isinstance(raw, dict):
        return None, (None, f"a record is a JSON object, not {type(raw).__name__}")
    if len(raw) > limits.max_fields_per_record:
        return None, (
            None,
            f"a record has at most {limits.max_fields_per_record} fields "
            f"(SEARCHGATE_LIMIT_MAX_FIELDS_PER_RECORD); this one has {len(raw)}",
        )
    id_value = raw.get(settings.id_field)
    if isinstance(id_value, bool) or not isinstance(id_value, str | int):
        return None, (settings.id_field, "missing id: a string or an integer is required")
    record_id = str(id_value)
    if not record_id or len(record_id) > RECORD_ID_MAX or _CONTROL.search(record_id):
        return None, (
            settings.id_field,
            f"an id has 1 to {RECORD_ID_MAX} characters and no control characters",
        )
    for key, value in raw.items():
        if not isinstance(key, str) or not key or len(key) > 128:
            return None, (str(key)[:64], "a field name has 1 to 128 characters")
        if isinstance(value, list):
            for item in value:
                if isinstance(item, list | dict):
                    return None, (key, "a list holds strings, numbers or booleans only")
                if not _numeric_ok(item):
                    return None, (key, "numbers must be finite")
        elif not _numeric_ok(value):
            return None, (key, "numbers must be finite")
    for nav in settings.navigations:
        if nav.type == "Range":
            v = raw.get(nav.name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                return None, (nav.name, f"{nav.name!r} is a range navigation: a number is required")
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
    return ValidRecord(record_id=record_id, data=encoded.decode()), None
