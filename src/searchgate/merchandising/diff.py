"""What changed between two merchandising documents, object by object.

Objects are matched by kind and name (a renamed object is one removed and one added);
the list is in a stable order: the kinds in document order (``KINDS``), then the area's
settings (the default biasing profile), and within a kind by name, case ignored.
The order of objects inside a document is not a change: nothing depends on it (rules
are taken by priority).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from searchgate.merchandising.document import KINDS, MerchandisingDocument

SETTINGS = "settings"
DEFAULT_PROFILE = "defaultBiasingProfile"


@dataclass(frozen=True)
class Change:
    kind: str  # one of KINDS, or "settings"
    name: str  # the object's name ("defaultBiasingProfile" for kind "settings")
    change: str  # "added" | "removed" | "changed"
    before: dict[str, Any] | None  # the object as the API shows it (obj.wire())
    after: dict[str, Any] | None
    fields: tuple[str, ...]  # for "changed": the top-level fields that differ

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "change": self.change,
            "before": self.before,
            "after": self.after,
            "fields": list(self.fields),
        }


def _order(name: str) -> tuple[str, str]:
    return (name.casefold(), name)


def _change(kind: str, name: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> Change:
    """The change from ``old`` to ``new`` (which differ)."""
    if old is None:
        return Change(kind, name, "added", None, new, ())
    if new is None:
        return Change(kind, name, "removed", old, None, ())
    keys = list(new) + [k for k in old if k not in new]
    fields = tuple(k for k in keys if old.get(k) != new.get(k))
    return Change(kind, name, "changed", old, new, fields)


def diff(before: MerchandisingDocument, after: MerchandisingDocument) -> list[Change]:
    changes: list[Change] = []
    for kind in KINDS:
        old = {o.name: o.wire() for o in before.objects(kind)}
        new = {o.name: o.wire() for o in after.objects(kind)}
        for name in sorted(old.keys() | new.keys(), key=_order):
            if old.get(name) != new.get(name):
                changes.append(_change(kind, name, old.get(name), new.get(name)))
    old_default, new_default = before.default_biasing_profile, after.default_biasing_profile
    if old_default != new_default:
        changes.append(
            _change(
                SETTINGS,
                DEFAULT_PROFILE,
                None if old_default is None else {DEFAULT_PROFILE: old_default},
                None if new_default is None else {DEFAULT_PROFILE: new_default},
            )
        )
    return changes
