"""Settings inferred from the first records, on the demo catalog and on edge cases."""

from __future__ import annotations

from typing import Any

import pytest

from searchgate.catalog.settings import CollectionSettings, infer_settings
from searchgate.demo import generate


@pytest.fixture(scope="module")
def demo() -> CollectionSettings:
    return infer_settings(list(generate(2000)))


def test_identity_fields(demo: CollectionSettings) -> None:
    assert demo.id_field == "id"
    assert demo.title_field == "title"
    assert demo.url_field == "url"


def test_searchable_fields_and_weights(demo: CollectionSettings) -> None:
    weights = {f.name: f.weight for f in demo.searchable}
    assert weights["title"] == max(weights.values())
    assert weights["brand"] > weights["description"]
    assert weights["category1"] > weights["description"]
    # Identifiers, links and images are not searched.
    assert not {"id", "url", "imageUrl"} & set(weights)


def test_navigations(demo: CollectionSettings) -> None:
    navs = {n.name: n for n in demo.navigations}
    for name in ("brand", "category1", "category2", "category3", "colour", "inStock"):
        assert navs[name].type == "Value", name
    assert navs["category1"].display_name == "Category 1"
    assert navs["inStock"].display_name == "In Stock"
    # Long free text and unique titles are no navigation.
    assert "description" not in navs and "title" not in navs and "id" not in navs
    for name in ("price", "rating"):
        nav = navs[name]
        assert nav.type == "Range"
        lows = [b.low for b in nav.ranges]
        highs = [b.high for b in nav.ranges]
        assert lows[0] is None and highs[-1] is None
        # Contiguous, increasing buckets: each one starts where the previous ends.
        assert lows[1:] == highs[:-1]
        cuts = [h for h in highs if h is not None]
        assert cuts == sorted(set(cuts)) and len(cuts) >= 1
    price_cuts = [b.high for b in navs["price"].ranges if b.high is not None]
    assert all(c == round(c) for c in price_cuts)  # round figures people read easily


def test_sortable_and_sayt(demo: CollectionSettings) -> None:
    assert {"title", "price", "rating"} <= set(demo.sortable)
    assert "description" not in demo.sortable
    assert demo.sayt.public is False
    assert demo.sayt.completion_fields == ["title"]
    assert demo.sayt.navigations == ["brand", "category1", "category2"]
    assert set(demo.sayt.public_fields) == {"title", "url"}


def test_inferred_settings_are_valid_settings(demo: CollectionSettings) -> None:
    raw = demo.model_dump(by_alias=True)
    assert CollectionSettings.model_validate(raw) == demo


@pytest.mark.parametrize(
    "records",
    [
        [],
        [{}],
        [{"price": 5}],
        [{"price": 0}, {"price": 0}],
        [{"price": -3.5}],
        [{"x": None}],
        [{"tags": ["a", "b"]}, {"tags": ["b"]}],
        [{"sizes": [1, 2]}],
        [{"mixed": 1}, {"mixed": "one"}],
        [{"bad name!": "x", "ok": "y"}],
    ],
)
def test_edge_cases_give_valid_settings(records: list[dict[str, Any]]) -> None:
    settings = infer_settings(records)
    assert CollectionSettings.model_validate(settings.model_dump(by_alias=True)) == settings


def test_edge_case_details() -> None:
    single = infer_settings([{"id": "1", "price": 5}]).navigation("price")
    assert single is not None
    assert [(b.low, b.high) for b in single.ranges] == [(None, 5.0), (5.0, None)]
    lists = infer_settings([{"tags": ["a", "b"]}, {"tags": ["b"]}])
    assert lists.navigation("tags") is not None
    numeric_lists = infer_settings([{"sizes": [1, 2]}])
    assert numeric_lists.navigation("sizes") is None
    assert "sizes" in numeric_lists.sortable
    mixed = infer_settings([{"mixed": 1}, {"mixed": "one"}])
    assert mixed.navigation("mixed") is None
    assert infer_settings([{"sku": "A1", "name": "Lamp", "link": "/l"}]).id_field == "sku"
    named = infer_settings([{"sku": "A1", "name": "Lamp", "link": "/l"}])
    assert (named.title_field, named.url_field) == ("name", "link")
    assert infer_settings([{"bad name!": "x"}]).navigations == []


def test_unique_short_strings_are_searchable_but_no_navigation() -> None:
    records = [{"id": str(i), "mpn": f"MPN-{i:05d}", "brand": f"B{i % 5}"} for i in range(400)]
    settings = infer_settings(records)
    assert settings.navigation("mpn") is None
    assert settings.navigation("brand") is not None
    assert "mpn" in {f.name for f in settings.searchable}
