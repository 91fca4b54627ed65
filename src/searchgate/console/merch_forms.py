"""The merchandising forms of the Command Center: what a person types, as the document
model's wire shape, and back.

A form is held as plain values (strings, and lists of row dicts for the repeated parts
of rules and biasing profiles) so that a refused form is shown again exactly as it was
typed. The document model (``merchandising.document``) judges the values; its errors
are put next to the form field or row they concern.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from itertools import zip_longest
from typing import Any, get_args

from pydantic import ValidationError

from searchgate.console.forms import Errors, sentence
from searchgate.merchandising.document import KINDS, OBJECT_MODELS
from searchgate.search.request import Strength

FormValues = dict[str, Any]

# URL slug -> the document's kind, in the order the overview shows them.
SLUGS: dict[str, str] = {
    "synonyms": "synonyms",
    "rules": "rules",
    "biasing-profiles": "biasingProfiles",
    "stop-words": "stopWords",
    "related-queries": "relatedQueries",
}
SLUG_OF = {kind: slug for slug, kind in SLUGS.items()}
# (one, many) as a person says them.
LABELS: dict[str, tuple[str, str]] = {
    "synonyms": ("synonym set", "Synonyms"),
    "rules": ("rule", "Rules"),
    "biasingProfiles": ("biasing profile", "Biasing profiles"),
    "stopWords": ("stop word list", "Stop words"),
    "relatedQueries": ("related queries set", "Related queries"),
}

STRENGTHS: tuple[str, ...] = get_args(Strength)
TRIGGER_TYPES = (
    ("queryEquals", "Query equals"),
    ("queryContains", "Query contains the words"),
    ("queryStartsWith", "Query starts with"),
    ("navigationSelected", "Navigation value selected"),
    ("customUrlParam", "customUrlParams key has the value"),
)
ZONE_TYPES = ("Content", "Rich_Content", "Record")

# Repeated rows: form list -> the HTML field name of each of its columns.
ROWS: dict[str, dict[str, str]] = {
    "triggers": {"type": "trigger_type", "key": "trigger_key", "value": "trigger_value"},
    "pins": {"id": "pin_id", "position": "pin_position"},
    "biases": {"name": "bias_name", "content": "bias_content", "strength": "bias_strength"},
    "zones": {"name": "zone_name", "type": "zone_type", "content": "zone_content"},
}
# The columns a row must fill for it to count (an empty row is left out).
_ROW_KEYS = {"triggers": ("key", "value"), "pins": ("id",), "biases": ("name", "content")}
_ROW_KEYS["zones"] = ("name", "content")
ROWS_OF_KIND: dict[str, tuple[str, ...]] = {
    "rules": ("triggers", "pins", "biases", "zones"),
    "biasingProfiles": ("biases",),
}
MAX_ROWS = 100

_TEXT = {
    "synonyms": ("name", "collections", "kind", "terms", "to"),
    "rules": (
        "name",
        "collections",
        "priority",
        "active_from",
        "active_to",
        "hide",
        "filter",
        "nav_mode",
        "navigations",
        "redirect",
        "template_name",
    ),
    "biasingProfiles": ("name", "influence"),
    "stopWords": ("name", "collections", "words"),
    "relatedQueries": ("name", "collections", "query", "related"),
}
_CHECKS = {"rules": ("enabled",), "biasingProfiles": ("make_default",)}

_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$")


# --- values of an empty form, of an object, of a submitted form -------------------------


def blank_row(rows: str) -> dict[str, str]:
    row = dict.fromkeys(ROWS[rows], "")
    if rows == "triggers":
        row["type"] = "queryEquals"
    elif rows == "biases":
        row["strength"] = "Strong_Increase"
    elif rows == "zones":
        row["type"] = "Content"
    return row


def blank(kind: str, term: str = "") -> FormValues:
    """An empty form of ``kind``; ``term``: a query a person came from (analytics), put
    where it starts a synonym set or a rule for that query."""
    values: FormValues = dict.fromkeys(_TEXT[kind], "")
    values.update(dict.fromkeys(_CHECKS.get(kind, ()), False))
    for rows in ROWS_OF_KIND.get(kind, ()):
        values[rows] = []
    term = " ".join(term.split())[:100]
    if kind == "synonyms":
        values.update(kind="two-way", name=term, terms=term)
    elif kind == "rules":
        values.update(priority="100", enabled=True, nav_mode="keep", name=term)
        if term:
            values["triggers"] = [{"type": "queryEquals", "key": "", "value": term}]
    elif kind == "relatedQueries":
        values.update(name=term, query=term)
    return values


def _lines(items: list[str]) -> str:
    return "\n".join(items)


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def local_time(value: datetime | None) -> str:
    """A UTC time as a ``datetime-local`` input holds it (seconds only when set)."""
    if value is None:
        return ""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S" if value.second else "%Y-%m-%dT%H:%M")


def from_object(kind: str, obj: Any, default_profile: str | None = None) -> FormValues:
    """The form showing ``obj`` (a model of ``kind``) as it is."""
    w = obj.wire()
    values = blank(kind)
    values["name"] = w["name"]
    if "collections" in values:
        values["collections"] = ", ".join(w.get("collections", []))
    if kind == "synonyms":
        values.update(kind=w["kind"], terms=_lines(w["terms"]), to=_lines(w["to"]))
    elif kind == "stopWords":
        values["words"] = _lines(w["words"])
    elif kind == "relatedQueries":
        values.update(query=w["query"], related=_lines(w["related"]))
    elif kind == "biasingProfiles":
        values["influence"] = _plain(w["influence"])
        values["biases"] = [_bias_row(b) for b in w["biases"]]
        values["make_default"] = default_profile == w["name"]
    elif kind == "rules":
        values.update(
            priority=str(w["priority"]),
            enabled=w["enabled"],
            active_from=local_time(obj.active_from),
            active_to=local_time(obj.active_to),
            hide=_lines(w["hide"]),
            filter=w["filter"] or "",
            nav_mode="keep" if w["navigations"] is None else "only",
            navigations=_lines(w["navigations"] or []),
            redirect=w["redirect"] or "",
            template_name=(w["template"] or {}).get("name", ""),
            triggers=[_trigger_row(t) for t in w["triggers"]],
            pins=[{"id": p["id"], "position": str(p["position"])} for p in w["pins"]],
            biases=[_bias_row(b) for b in w["biases"]],
            zones=[_zone_row(z) for z in (w["template"] or {}).get("zones", [])],
        )
    return values


def _bias_row(b: dict[str, Any]) -> dict[str, str]:
    return {"name": b["name"], "content": _plain(b["content"]), "strength": b["strength"]}


def _trigger_row(t: dict[str, Any]) -> dict[str, str]:
    key = t.get("navigation") or t.get("key") or ""
    return {"type": t["type"], "key": key, "value": t["value"]}


def _zone_row(z: dict[str, Any]) -> dict[str, str]:
    content = _lines(z["ids"]) if z["type"] == "Record" else (z["content"] or "")
    return {"name": z["name"], "type": z["type"], "content": content}


def read(kind: str, field: Any, fields: Any) -> FormValues:
    """The values of a submitted form of ``kind``: ``field(name)`` gives one value,
    ``fields(name)`` every value of a repeated one (``Ctx.field`` and ``Ctx.fields``)."""
    values: FormValues = {name: field(name) for name in _TEXT[kind]}
    for name in _CHECKS.get(kind, ()):
        values[name] = bool(field(name))
    for rows in ROWS_OF_KIND.get(kind, ()):
        columns = ROWS[rows]
        lists = [fields(html_name)[: MAX_ROWS + 1] for html_name in columns.values()]
        values[rows] = [
            dict(zip(columns, (v or "" for v in cells), strict=True))
            for cells in zip_longest(*lists, fillvalue="")
        ]
    return values


def filled_rows(values: FormValues, rows: str) -> list[dict[str, str]]:
    return [r for r in values.get(rows, []) if any(r[k].strip() for k in _ROW_KEYS[rows])]


def without_blank_rows(kind: str, values: FormValues) -> FormValues:
    """``values`` with the rows a person left empty taken out: the rows the model sees,
    so that an error about row ``i`` is shown at the ``i``-th row on the page."""
    out = dict(values)
    for rows in ROWS_OF_KIND.get(kind, ()):
        out[rows] = filled_rows(values, rows)
    return out


# --- values -> the document model's wire shape ----------------------------------------


def _split(text: str, commas: bool) -> list[str]:
    parts = re.split(r"[\n,]" if commas else r"\n", text)
    return [p.strip() for p in parts if p.strip()]


def _time(text: str) -> str | None:
    """A time typed in the form: without an offset it is UTC (the form says so)."""
    text = text.strip()
    if not text:
        return None
    return text + "Z" if _LOCAL_TIME.match(text) else text


def _scalar(text: str, original: Iterable[Any]) -> Any:
    """A bias value as typed, or the original JSON value when the text still shows it
    (so that re-saving a profile made through the API leaves ``4`` a number)."""
    for value in original:
        if _plain(value) == text:
            return value
    return text


def to_wire(kind: str, values: FormValues, before: Any = None) -> dict[str, Any]:
    """The wire shape of the object the form describes (the model then judges it).
    ``before``: the object being edited, if any."""
    v = without_blank_rows(kind, values)
    w: dict[str, Any] = {"name": v["name"]}
    if "collections" in v:
        w["collections"] = _split(v["collections"], commas=True)
    if kind == "synonyms":
        w.update(kind=v["kind"], terms=_split(v["terms"], True), to=_split(v["to"], True))
        if v["kind"] == "two-way" and not w["to"]:
            del w["to"]
    elif kind == "stopWords":
        w["words"] = _split(v["words"], commas=True)
    elif kind == "relatedQueries":
        w.update(query=v["query"], related=_split(v["related"], commas=False))
    elif kind == "biasingProfiles":
        if v["influence"].strip():
            w["influence"] = v["influence"].strip()
        w["biases"] = _biases(v["biases"], before)
    elif kind == "rules":
        _rule_wire(v, w, before)
    return w


def _biases(rows: list[dict[str, str]], before: Any) -> list[dict[str, Any]]:
    old = list(getattr(before, "biases", None) or [])
    out = []
    for row in rows:
        name = row["name"].strip()
        same = [b.content for b in old if b.name == name]
        out.append(
            {"name": name, "content": _scalar(row["content"], same), "strength": row["strength"]}
        )
    return out


def _trigger(row: dict[str, str]) -> dict[str, Any]:
    kind = row["type"]
    if kind == "navigationSelected":
        return {"type": kind, "navigation": row["key"].strip(), "value": row["value"].strip()}
    if kind == "customUrlParam":
        return {"type": kind, "key": row["key"].strip(), "value": row["value"]}
    return {"type": kind, "value": row["value"]}


def _rule_wire(v: FormValues, w: dict[str, Any], before: Any) -> None:
    w["priority"] = v["priority"].strip() or "100"
    w["enabled"] = v["enabled"]
    w["activeFrom"] = _time(v["active_from"])
    w["activeTo"] = _time(v["active_to"])
    w["triggers"] = [_trigger(r) for r in v["triggers"]]
    w["pins"] = [
        {"id": r["id"].strip(), **({"position": p} if (p := r["position"].strip()) else {})}
        for r in v["pins"]
    ]
    w["hide"] = _split(v["hide"], commas=False)
    w["biases"] = _biases(v["biases"], before)
    w["filter"] = v["filter"].strip() or None
    w["navigations"] = _split(v["navigations"], False) if v["nav_mode"] == "only" else None
    w["redirect"] = v["redirect"].strip() or None
    zones = [
        {"name": z["name"].strip(), "type": z["type"], "ids": _split(z["content"], True)}
        if z["type"] == "Record"
        else {"name": z["name"].strip(), "type": z["type"], "content": z["content"]}
        for z in v["zones"]
    ]
    name = v["template_name"].strip()
    w["template"] = {"name": name, "zones": zones} if name or zones else None


def parse(kind: str, values: FormValues, before: Any = None) -> tuple[Any, Errors]:
    """The model object the form describes, or None and the errors by form field."""
    wire = to_wire(kind, values, before)
    try:
        return OBJECT_MODELS[kind].model_validate(wire), {}
    except ValidationError as exc:
        return None, validation_errors(exc)


# --- errors -----------------------------------------------------------------------------

_FIELD_OF = {
    "activeFrom": "active_from",
    "activeTo": "active_to",
    "navigations": "navigations",
    "triggers": "triggers",
}


def field_of(loc: tuple[int | str, ...]) -> str:
    """The form field (or row, ``triggers-2``) a model error location points at;
    ``form`` for the object as a whole."""
    if not loc:
        return "form"
    head = str(loc[0])
    if head == "template":
        if len(loc) >= 3 and loc[1] == "zones" and isinstance(loc[2], int):
            return f"zones-{loc[2]}"
        return "zones" if len(loc) >= 2 and loc[1] == "zones" else "template_name"
    if head in ROWS:
        return f"{head}-{loc[1]}" if len(loc) >= 2 and isinstance(loc[1], int) else head
    return _FIELD_OF.get(head, head)


def _message(msg: str) -> str:
    return sentence(msg.removeprefix("Value error, ").removeprefix("Assertion failed, "))


def validation_errors(exc: ValidationError) -> Errors:
    """Every error of the model, each at its field (the first one per field)."""
    errors: Errors = {}
    for err in exc.errors():
        errors.setdefault(field_of(tuple(err["loc"])), _message(str(err["msg"])))
    return errors


_PATH = re.compile(rf"^(?:(?:{'|'.join(KINDS)})\[\d+\]\.)?(?P<rest>.*)$")


def known(kind: str, errors: Errors) -> Errors:
    """``errors`` with every key the form does not show (a field of the document
    rather than of this object) moved to ``form``, the message at the form's top."""
    fields = {"form", "name", *_TEXT[kind], *_CHECKS.get(kind, ())}
    rows = ROWS_OF_KIND.get(kind, ())
    out: Errors = {}
    for key, message in errors.items():
        head = key.split("-", 1)[0]
        shown = key in fields or head in rows
        out.setdefault(key if shown else "form", message)
    return out


def service_field(path: str | None) -> str:
    """The form field of a service error's field path (``rules[3].triggers[0].value``
    or ``triggers[0].value``); ``form`` when it names none of the form's fields."""
    if not path:
        return "form"
    rest = _PATH.match(path)
    tail = rest.group("rest") if rest else path
    parts: list[int | str] = []
    for token in re.findall(r"[^.\[\]]+", tail):
        parts.append(int(token) if token.isdigit() else token)
    return field_of(tuple(parts))
