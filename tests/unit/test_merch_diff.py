"""The diff between two merchandising documents: by kind and name, in a stable order,
naming the top-level fields of each changed object."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from searchgate.merchandising.diff import Change, diff
from searchgate.merchandising.document import EMPTY, MerchandisingDocument


def doc(**parts: Any) -> MerchandisingDocument:
    return MerchandisingDocument.model_validate(parts)


TV = {"name": "tv", "terms": ["tv", "television"]}
LAPTOP = {"name": "laptop", "terms": ["laptop", "notebook"]}
REDIRECT = {
    "name": "TV redirect",
    "triggers": [{"type": "queryEquals", "value": "tv"}],
    "redirect": "/tv",
}
PROFILE = {
    "name": "new",
    "biases": [{"name": "brand", "content": "Acme", "strength": "Weak_Increase"}],
}


def test_equal_documents_have_no_changes() -> None:
    assert diff(EMPTY, EMPTY) == []
    assert diff(doc(synonyms=[TV, LAPTOP]), doc(synonyms=[LAPTOP, TV])) == []


def test_added_removed_and_changed_objects_by_kind_then_name() -> None:
    before = doc(synonyms=[TV, LAPTOP], rules=[REDIRECT])
    after = doc(
        synonyms=[{**TV, "terms": ["tv", "television", "telly"], "collections": ["shop"]}],
        rules=[REDIRECT, {**REDIRECT, "name": "A pin", "redirect": None, "hide": ["x"]}],
        stopWords=[{"name": "en", "words": ["the"]}],
    )
    changes = diff(before, after)
    assert [(c.kind, c.name, c.change) for c in changes] == [
        ("synonyms", "laptop", "removed"),
        ("synonyms", "tv", "changed"),
        ("rules", "A pin", "added"),
        ("stopWords", "en", "added"),
    ]
    laptop, tv, pin, _ = changes
    assert laptop.before == doc(synonyms=[LAPTOP]).synonyms[0].wire() and laptop.after is None
    assert laptop.fields == ()
    # The fields in the order the object shows them.
    assert tv.fields == ("collections", "terms")
    assert tv.after is not None and tv.after["terms"] == ["tv", "television", "telly"]
    assert pin.before is None and pin.after is not None and pin.after["hide"] == ["x"]


def test_the_default_biasing_profile_is_a_settings_change() -> None:
    with_profile = doc(biasingProfiles=[PROFILE])
    chosen = doc(biasingProfiles=[PROFILE], defaultBiasingProfile="new")
    assert diff(with_profile, chosen) == [
        Change(
            kind="settings",
            name="defaultBiasingProfile",
            change="added",
            before=None,
            after={"defaultBiasingProfile": "new"},
            fields=(),
        )
    ]
    [removed] = diff(chosen, with_profile)
    assert (removed.change, removed.before, removed.after) == (
        "removed",
        {"defaultBiasingProfile": "new"},
        None,
    )
    other = {**PROFILE, "name": "other"}
    [changed] = diff(
        doc(biasingProfiles=[PROFILE, other], defaultBiasingProfile="new"),
        doc(biasingProfiles=[PROFILE, other], defaultBiasingProfile="other"),
    )
    assert changed.change == "changed" and changed.fields == ("defaultBiasingProfile",)
    # Settings come after every kind of object.
    changes = diff(EMPTY, chosen)
    assert [(c.kind, c.change) for c in changes] == [
        ("biasingProfiles", "added"),
        ("settings", "added"),
    ]


def test_a_change_reads_as_the_api_shows_it() -> None:
    [change] = diff(EMPTY, doc(synonyms=[TV]))
    assert change.to_dict() == {
        "kind": "synonyms",
        "name": "tv",
        "change": "added",
        "before": None,
        "after": change.after,
        "fields": [],
    }


NAMES = st.sampled_from(["a", "b", "c", "d"])
SETS = st.dictionaries(
    NAMES, st.lists(st.sampled_from(["x", "y", "z", "w"]), min_size=2, max_size=3, unique=True)
)


@given(before=SETS, after=SETS)
def test_the_diff_names_exactly_the_objects_that_differ(
    before: dict[str, list[str]], after: dict[str, list[str]]
) -> None:
    def of(sets: dict[str, list[str]]) -> MerchandisingDocument:
        return doc(synonyms=[{"name": n, "terms": t} for n, t in sets.items()])

    changes = diff(of(before), of(after))
    expected = sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n))
    assert [c.name for c in changes] == expected
    for c in changes:
        assert c.change == (
            "added" if c.name not in before else "removed" if c.name not in after else "changed"
        )
    # Backwards is the mirror image.
    back = diff(of(after), of(before))
    assert [(c.name, c.before, c.after) for c in back] == [
        (c.name, c.after, c.before) for c in changes
    ]
