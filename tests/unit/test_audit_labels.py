"""Every action the change log records has words for people, and a tag recorded by
another package shows as itself."""

from __future__ import annotations

from searchgate.audit.tags import ACTION_LABELS, Action, label_of
from searchgate.console.auth import AUDIT_DENIED


def test_every_action_tag_has_a_label() -> None:
    missing = sorted(a.value for a in Action if not ACTION_LABELS.get(a, "").strip())
    assert not missing, f"no label for: {missing}"
    labels = list(ACTION_LABELS.values())
    assert len(set(labels)) == len(labels), "two actions share a label"
    assert not [label for label in labels if ":" in label or label != label.strip()]


def test_the_console_s_own_refusals_are_a_known_tag() -> None:
    assert AUDIT_DENIED in set(Action)
    assert label_of(AUDIT_DENIED) == "Page refused"


def test_labels_are_looked_up_by_tag() -> None:
    assert label_of("admin:keys:disable") == "Key disabled"
    assert label_of("shop:feeds:import") == "shop:feeds:import"
