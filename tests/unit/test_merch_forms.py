"""The merchandising forms: an object shown in its form and submitted unchanged is the
same object; a model error lands at the form field or row it concerns."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from searchgate.console import merch_forms as mf
from searchgate.merchandising.document import (
    BiasingProfile,
    RelatedQueries,
    Rule,
    StopWords,
    SynonymSet,
)

OBJECTS: list[tuple[str, Any]] = [
    (
        "synonyms",
        SynonymSet(name="tv", kind="one-way", terms=["tv"], to=["television", "flat screen"]),
    ),
    ("stopWords", StopWords(name="en", words=["the", "a"], collections=["default", "b"])),
    ("relatedQueries", RelatedQueries(name="tv", query="tv", related=["tv stand", "hdmi"])),
    (
        "biasingProfiles",
        BiasingProfile.model_validate(
            {
                "name": "rated",
                "influence": 2.5,
                "biases": [
                    {"name": "rating", "content": 5, "strength": "Strong_Increase"},
                    {"name": "inStock", "content": True, "strength": "Absolute_Increase"},
                ],
            }
        ),
    ),
    (
        "rules",
        Rule.model_validate(
            {
                "name": "Summer / TV",
                "priority": 7,
                "enabled": False,
                "activeFrom": "2026-06-01T08:30:15Z",
                "activeTo": "2026-09-01T00:00:00+02:00",
                "collections": ["default"],
                "triggers": [
                    {"type": "queryStartsWith", "value": "tv"},
                    {"type": "navigationSelected", "navigation": "brand", "value": "LG"},
                    {"type": "customUrlParam", "key": "device", "value": ""},
                ],
                "pins": [{"id": "A", "position": 3}],
                "hide": ["B", "C"],
                "biases": [{"name": "brand", "content": 4, "strength": "Weak_Decrease"}],
                "filter": "price:[0 TO 10]",
                "navigations": [],
                "redirect": "https://example.com/tv",
                "template": {
                    "name": "t",
                    "zones": [
                        {"name": "a", "type": "Content", "content": "Hello, world"},
                        {"name": "b", "type": "Record", "ids": ["X", "Y"]},
                    ],
                },
            }
        ),
    ),
]


def _submitted(kind: str, values: mf.FormValues) -> mf.FormValues:
    """What a browser sends back for a form showing ``values``."""
    html: dict[str, list[str]] = {}
    for name, value in values.items():
        if name in mf.ROWS:
            for row in value:
                for column, field in mf.ROWS[name].items():
                    html.setdefault(field, []).append(row[column])
        elif isinstance(value, bool):
            html[name] = ["1"] if value else []
        else:
            html[name] = [value]
    return mf.read(kind, lambda n: (html.get(n) or [""])[0], lambda n: html.get(n, []))


@pytest.mark.parametrize(("kind", "obj"), OBJECTS, ids=[k for k, _ in OBJECTS])
def test_an_object_submitted_unchanged_from_its_form_is_the_same_object(
    kind: str, obj: Any
) -> None:
    values = mf.from_object(kind, obj)
    parsed, errors = mf.parse(kind, _submitted(kind, values), before=obj)
    assert errors == {}
    assert parsed.wire() == obj.wire()


def test_an_empty_form_and_one_started_from_a_query() -> None:
    rule = mf.blank("rules", " tv   stand ")
    assert rule["name"] == "tv stand"
    assert rule["triggers"] == [{"type": "queryEquals", "key": "", "value": "tv stand"}]
    assert mf.blank("synonyms", "tv")["terms"] == "tv"
    assert mf.blank("rules")["triggers"] == []


def test_errors_land_at_their_field_or_row() -> None:
    assert mf.field_of(()) == "form"
    assert mf.field_of(("activeFrom",)) == "active_from"
    assert mf.field_of(("triggers", 2, "queryEquals", "value")) == "triggers-2"
    assert mf.field_of(("template", "zones", 1)) == "zones-1"
    assert mf.field_of(("template", "name")) == "template_name"
    assert mf.field_of(("terms", 0)) == "terms"
    assert mf.service_field("rules[3].pins[0].position") == "pins-0"
    assert mf.service_field("name") == "name"
    assert mf.service_field(None) == "form"
    assert mf.known("synonyms", {"rules": "x", "terms": "y"}) == {"form": "x", "terms": "y"}


@given(
    kind=st.sampled_from(list(mf.SLUGS.values())),
    typed=st.dictionaries(
        st.sampled_from(
            sorted({f for k in mf.SLUGS.values() for f in mf.blank(k) if isinstance(f, str)})
            + [f for cols in mf.ROWS.values() for f in cols.values()]
        ),
        st.lists(st.text(max_size=30), max_size=4),
    ),
)
def test_any_typed_form_is_an_object_or_errors_at_known_fields(
    kind: str, typed: dict[str, list[str]]
) -> None:
    values = mf.read(kind, lambda n: (typed.get(n) or [""])[0], lambda n: typed.get(n, []))
    obj, errors = mf.parse(kind, values)
    assert (obj is None) == bool(errors)
    assert set(mf.known(kind, errors)) <= {"form", *errors}
