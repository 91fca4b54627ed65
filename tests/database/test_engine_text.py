"""Query text in the tantivy engine: words are split as the index splits them, any text
searches without failing, and SAYT's product previews rank by the fields' weights."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from searchgate.catalog.service import parse_settings
from searchgate.engines.base import MatchAll, SearchPlan, TextQuery
from searchgate.engines.tantivy.engine import TantivyEngine
from searchgate.engines.tantivy.layout import words

SETTINGS = parse_settings(
    {
        "idField": "id",
        "titleField": "title",
        "searchable": [
            {"name": "title", "weight": 3},
            {"name": "sku", "weight": 2},
            {"name": "description", "weight": 1.5},
        ],
        "sayt": {"completionFields": ["title"]},
    }
)
RECORDS = [
    {"id": "p1", "title": "USB-C hub", "sku": "SKU_0000539", "description": "Four ports"},
    {"id": "p2", "title": "usb_c cable", "sku": "SKU_0000540", "description": "One metre"},
    {"id": "p3", "title": "Café crème mug", "sku": "MUG-1", "description": "Smørrebrød plate"},
    {"id": "p4", "title": "Desk lamp", "sku": "LAMP-2", "description": "Warm light"},
]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[TantivyEngine]:
    slot = tmp_path / "slot-0"
    slot.mkdir()
    eng = TantivyEngine(slot, 50_000_000, 1)
    index(eng, RECORDS)
    yield eng
    eng.close()


def index(eng: TantivyEngine, records: list[dict[str, Any]]) -> None:
    rows = [(r["id"], orjson.dumps(r).decode()) for r in records]
    eng.rebuild("default", SETTINGS, [rows])
    eng.commit(eng.applied_seq() + 1)


def found(eng: TantivyEngine, text: TextQuery, limit: int = 10) -> list[str]:
    plan = SearchPlan(text=text, filter=MatchAll(), limit=limit)
    return [h.record_id for h in eng.search("default", plan).hits]


def test_query_words_are_split_as_the_index_splits_them() -> None:
    assert words("usb_c SKU_0000539") == ["usb", "c", "sku", "0000539"]
    assert words("USB-C, Café!") == ["usb", "c", "cafe"]
    assert words("Smørrebrød") == ["smorrebrod"]


@pytest.mark.parametrize("query", ["usb_c", "USB_C", "sku_0000539", "SKU_0000539 usb_c"])
def test_a_word_with_an_underscore_searches(engine: TantivyEngine, query: str) -> None:
    ws = tuple(words(query))
    # "usb_c" finds both spellings: the index holds "USB-C" and "usb_c" as usb, c.
    expected = {"p1"} if "0000539" in query else {"p1", "p2"}
    assert set(found(engine, TextQuery(words=ws))) == expected
    assert set(found(engine, TextQuery(words=ws, prefix_last=True))) >= expected
    assert set(found(engine, TextQuery(words=ws, every_word_prefix=True))) >= expected


def test_accented_prefixes_find_what_the_index_folded(engine: TantivyEngine) -> None:
    for typed in ("smør", "crè", "cafe"):
        assert found(engine, TextQuery(words=tuple(words(typed)), every_word_prefix=True)) == [
            "p3"
        ], typed


def test_any_text_searches_without_failing(engine: TantivyEngine) -> None:
    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(text=st.text(max_size=60) | st.text(alphabet="aAzZ09_-éß.İ ", max_size=30))
    def check(text: str) -> None:
        ws = tuple(words(text))
        for query in (
            TextQuery(words=ws),
            TextQuery(words=ws, prefix_last=True),
            TextQuery(words=ws, every_word_prefix=True),
        ):
            found(engine, query)
        engine.complete_words("default", text, 5, TextQuery(words=ws, every_word_prefix=True))
        engine.similar_words("default", text, 3)
        if ws:
            engine.correct_word("default", ws[0])

    check()


def test_prefix_matches_rank_by_the_weight_of_the_field(tmp_path: Path) -> None:
    slot = tmp_path / "slot-1"
    slot.mkdir()
    eng = TantivyEngine(slot, 50_000_000, 1)
    try:
        index(
            eng,
            [
                {"id": "in-description", "title": "Fan", "sku": "F1", "description": "Sonic"},
                {"id": "in-sku", "title": "Big desk fan", "sku": "SONIC-2", "description": "Air"},
                {
                    "id": "in-title",
                    "title": "Sonic toothbrush with two heads and a travel case",
                    "sku": "TB-3",
                    "description": "Charges in four hours, lasts three weeks",
                },
                {
                    "id": "in-title-and-sku",
                    "title": "Sonic toothbrush with three heads and a travel case",
                    "sku": "SONATA-4",
                    "description": "Charges in four hours, lasts three weeks",
                },
            ],
        )
        for typed in ("so", "son"):
            # Title and SKU (3 + 2) before title (3), before SKU (2), before a description
            # (1.5), however short the weaker fields are.
            assert found(eng, TextQuery(words=(typed,), every_word_prefix=True)) == [
                "in-title-and-sku",
                "in-title",
                "in-sku",
                "in-description",
            ], typed
    finally:
        eng.close()
