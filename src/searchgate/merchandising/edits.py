"""The changes a merchandiser makes to a draft, as functions from the current document
to the new one and the change log details that name what changed (names only, never
whole objects). Each result is checked whole again: unique names, the default profile."""

from __future__ import annotations

from typing import Any

from searchgate.errors import Conflict, InvalidInput, NotFound
from searchgate.logs import redact
from searchgate.merchandising.diff import Change, diff
from searchgate.merchandising.document import MerchandisingDocument
from searchgate.merchandising.inputs import model_of, parse_document

# A change log event lists this many changed objects at most (an import can change
# thousands); the rest are counted.
MAX_LISTED = 100

Edited = tuple[MerchandisingDocument, dict[str, Any]]


def listed(changes: list[Change]) -> dict[str, Any]:
    """Change log details of a change to many objects: how many, and which."""
    out: dict[str, Any] = {
        "changes": len(changes),
        "objects": [
            {"kind": c.kind, "name": redact(c.name), "change": c.change}
            for c in changes[:MAX_LISTED]
        ],
    }
    if len(changes) > MAX_LISTED:
        out["more"] = len(changes) - MAX_LISTED
    return out


def replace_all(current: MerchandisingDocument, document: MerchandisingDocument) -> Edited:
    return document, listed(diff(current, document))


def put(current: MerchandisingDocument, kind: str, obj: Any, replacing: str | None) -> Edited:
    """Adds ``obj``, or replaces the object of its name; with ``replacing``, the object
    of that name becomes ``obj`` (a rename: it keeps its place)."""
    model = model_of(kind)
    name = getattr(obj, "name", None)
    if not isinstance(obj, model) or not isinstance(name, str):
        raise InvalidInput(f"an object of {kind} is a {model.__name__}", field="kind")
    objects = list(current.objects(kind))
    names = [o.name for o in objects]
    old = name if replacing is None else replacing
    details: dict[str, Any] = {"kind": kind, "name": redact(name)}
    if old not in names and replacing is not None:
        raise NotFound(f"{kind}: there is no {replacing!r} to rename", field="replacing")
    if old != name and name in names:
        raise Conflict(f"{kind}: {name!r} exists already", field="name")
    if old in names:
        objects[names.index(old)] = obj
        details["change"] = "changed" if old == name else "renamed"
        if old != name:
            details["from"] = redact(old)
    else:
        objects.append(obj)
        details["change"] = "added"
    fields: dict[str, Any] = {kind: [o.wire() for o in objects]}
    # A renamed default profile stays the default.
    if kind == "biasingProfiles" and current.default_biasing_profile == old:
        fields["defaultBiasingProfile"] = name
    return _with(current, fields), details


def remove(current: MerchandisingDocument, kind: str, name: str) -> Edited:
    model_of(kind)
    objects = current.objects(kind)
    if name not in {o.name for o in objects}:
        raise NotFound(f"{kind}: there is no {name!r} in the draft", field="name")
    if kind == "biasingProfiles" and current.default_biasing_profile == name:
        raise Conflict(
            f"the biasing profile {name!r} is the area's default: choose another default "
            "(or none) first",
            field="name",
        )
    kept = [o.wire() for o in objects if o.name != name]
    return _with(current, {kind: kept}), {"kind": kind, "name": redact(name), "change": "removed"}


def set_default(current: MerchandisingDocument, name: str | None) -> Edited:
    before = current.default_biasing_profile
    details = {
        "kind": "settings",
        "name": "defaultBiasingProfile",
        "before": None if before is None else redact(before),
        "after": None if name is None else redact(name),
    }
    return _with(current, {"defaultBiasingProfile": name}), details


def _with(document: MerchandisingDocument, fields: dict[str, Any]) -> MerchandisingDocument:
    """``document`` with some fields (by their wire names) replaced, checked whole."""
    return parse_document({**document.wire(), **fields})
