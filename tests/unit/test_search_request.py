"""Parsing the wire search request: defaults, field names in errors, the echo."""

from __future__ import annotations

from typing import Any

import pytest

from searchgate.errors import InvalidInput
from searchgate.search.request import MAX_LIST, SearchRequest, parse_search_request


def test_defaults() -> None:
    req = parse_search_request({})
    assert req.collection == "default" and req.area == "Production"
    assert req.query == "" and req.skip == 0 and req.page_size == 10
    assert req.prune_refinements is True and req.wildcard_search_enabled is False
    assert req.disable_autocorrection is False and req.refinements == []
    assert req.sorts() == [] and req.wanted_fields() is None
    assert parse_search_request({"query": None}).query == ""
    assert parse_search_request(b"{}").page_size == 10


def test_wire_names_and_unknown_fields() -> None:
    req = parse_search_request(
        {
            "pageSize": 3,
            "pre-filter": "brand:x",
            "orFields": ["brand"],
            "refinements": [{"navigationName": "price", "type": "Range", "low": 1, "high": "9"}],
            "restrictNavigation": {"name": "brand", "count": 4},
            "biasing": {"bringToTop": ["a"], "biases": [{"name": "brand", "content": "x"}]},
            "userId": "u1",
            "returnBinary": False,
            "somethingNew": {"x": 1},
        }
    )
    assert req.page_size == 3 and req.pre_filter == "brand:x" and req.or_fields == ["brand"]
    ref = req.refinements[0]
    assert (ref.navigation_name, ref.type, ref.low, ref.high) == ("price", "Range", 1, "9")
    assert req.restrict_navigation is not None and req.restrict_navigation.count == 4
    assert req.biasing is not None and req.biasing.biases[0].strength == "Leave_Unchanged"


def test_sorts_one_or_many() -> None:
    one = parse_search_request({"sort": {"field": "price", "order": "Descending"}})
    assert [(s.field, s.order) for s in one.sorts()] == [("price", "Descending")]
    many = parse_search_request(
        {"sort": [{"field": "a"}, {"type": "ByIds", "ids": ["x", "y"]}, {"field": "_relevance"}]}
    )
    assert [s.field for s in many.sorts()] == ["a", None, "_relevance"]
    assert many.sorts()[1].ids == ["x", "y"]


def test_fields_mask() -> None:
    assert parse_search_request({"fields": ["*"]}).wanted_fields() is None
    assert parse_search_request({"fields": []}).wanted_fields() is None
    assert parse_search_request({"fields": ["a", "*"]}).wanted_fields() is None
    assert parse_search_request({"fields": ["a", "b"]}).wanted_fields() == {"a", "b"}


def test_received_is_the_body_without_the_key() -> None:
    body: dict[str, Any] = {"clientKey": "sgk_secret", "query": "x", "userId": "u", "skip": 0}
    req = parse_search_request(body)
    assert req.received() == {"query": "x", "userId": "u", "skip": 0}
    # Copies (the refinements endpoint makes some) keep it.
    assert req.model_copy(update={"page_size": 0}).received() == req.received()
    built = SearchRequest.model_validate({"clientKey": "k", "query": "y"})
    assert built.received() == {"query": "y"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": 5}, "query"),
        ({"query": ["a"]}, "query"),
        ({"skip": -1}, "skip"),
        ({"skip": "x"}, "skip"),
        ({"skip": 1.5}, "skip"),
        ({"pageSize": -3}, "pageSize"),
        ({"pageSize": None}, "pageSize"),
        ({"collection": ""}, "collection"),
        ({"collection": "c" * 129}, "collection"),
        ({"area": 1}, "area"),
        ({"refinements": {}}, "refinements"),
        ({"refinements": [{}]}, "refinements[0].navigationName"),
        ({"refinements": [{"navigationName": ""}]}, "refinements[0].navigationName"),
        ({"refinements": [{"navigationName": "b", "type": "Text"}]}, "refinements[0].type"),
        ({"refinements": [{"navigationName": "b", "value": [1]}]}, "refinements[0].value"),
        ({"refinements": [{"navigationName": "b", "low": {}}]}, "refinements[0].low"),
        ({"refinements": [{"navigationName": "b", "exclude": "maybe"}]}, "refinements[0].exclude"),
        ({"refinements": [{"navigationName": "b"}] * (MAX_LIST + 1)}, "refinements"),
        ({"sort": 3}, "sort"),
        ({"sort": [{"order": "Sideways"}]}, "sort[0].order"),
        ({"sort": [{"field": "a"}] * 17}, "sort"),
        ({"fields": [1]}, "fields[0]"),
        ({"orFields": "brand"}, "orFields"),
        ({"pruneRefinements": "perhaps"}, "pruneRefinements"),
        ({"restrictNavigation": {"count": 2}}, "restrictNavigation.name"),
        ({"restrictNavigation": {"name": "b", "count": 10_001}}, "restrictNavigation.count"),
        ({"biasing": []}, "biasing"),
        ({"biasing": {"influence": -1}}, "biasing.influence"),
        (
            {"biasing": {"biases": [{"name": "b", "strength": "Mega"}]}},
            "biasing.biases[0].strength",
        ),
        ({"biasing": {"biases": [{"name": "b"}] * 101}}, "biasing.biases"),
        ({"biasing": {"bringToTop": "a"}}, "biasing.bringToTop"),
        ({"pre-filter": 5}, "pre-filter"),
    ],
)
def test_errors_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_search_request(body)
    assert info.value.field == field, info.value.message
    assert info.value.message.startswith(f"{field}: ")


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'"x"', b"null", b"\xff"])
def test_bodies_that_are_not_objects(raw: bytes) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_search_request(raw)
    assert info.value.field == "body"
