"""The relevance benchmark's arithmetic (NDCG@10, precision@4) against values computed
by hand, and the judging rule of bench/judge.py on hand-made records."""

from __future__ import annotations

import math
from typing import Any

import pytest
from bench.judge import Catalog, normalise
from bench.relevance import dcg, ndcg, precision

LOG2_3 = math.log2(3)


def test_dcg_gains_two_to_the_grade_less_one_discounted_by_log2_of_the_position() -> None:
    # 7/log2(2) + 3/log2(3) + 0/log2(4) + 1/log2(5)
    assert dcg([3, 2, 0, 1]) == pytest.approx(7 + 3 / LOG2_3 + 1 / math.log2(5))
    assert dcg([]) == 0


def test_ndcg_is_the_ranking_over_the_best_top_k_of_the_judged_records() -> None:
    grades = {"a": 3, "b": 2, "c": 0, "d": 3}
    # Shown: a (3), b (2), c (0) = 7 + 3/log2(3) = 8.892789...
    # Best: a or d (3), the other (3), b (2) = 7 + 7/log2(3) + 3/2 = 12.916508...
    assert ndcg(["a", "b", "c"], grades) == pytest.approx(0.688482, abs=1e-6)
    assert ndcg(["d", "a", "b"], grades) == 1.0
    # An unjudged record grades 0, like c.
    assert ndcg(["a", "b", "zzz"], grades) == ndcg(["a", "b", "c"], grades)
    assert ndcg([], grades) == 0
    assert ndcg(["a"], {"a": 0}) == 0


def test_ndcg_counts_only_the_first_k_shown_and_the_best_k_judged() -> None:
    grades = {str(n): 1 for n in range(20)}
    assert ndcg([str(n) for n in range(10)], grades) == 1.0
    shown = ["x"] * 10 + ["0"]
    assert ndcg(shown, grades) == 0
    # One relevant record at position 2 of 10 possible: (1/log2(3)) / sum_{i=1..10} 1/log2(i+1)
    ideal = sum(1 / math.log2(i + 1) for i in range(1, 11))
    assert ndcg(["x", "0"], grades) == pytest.approx((1 / LOG2_3) / ideal)


def test_precision_at_4_counts_previews_graded_2_or_more_over_four_slots() -> None:
    grades = {"a": 3, "b": 2, "c": 1}
    assert precision(["a", "b", "c", "z"], grades) == 0.5
    # An empty slot is not relevant: two good previews of four asked for.
    assert precision(["a", "b"], grades) == 0.5
    assert precision(["a", "b", "a", "b"], grades) == 1.0
    assert precision([], grades) == 0
    # Only the first four count: b in fifth place does not.
    assert precision(["a", "c", "z", "z", "b"], grades) == 0.25


def test_words_are_read_as_the_rule_in_the_file_header_says() -> None:
    assert normalise("Cooktops Electric Cooktops") == ["cooktop", "electric"]
    assert normalise("Television") == ["tv"]
    assert normalise("Wi-Fi and Batteries for the Fridge") == ["wifi", "battery", "refrigerator"]
    assert normalise("Glass") == ["glass"]


def _record(n: int, brand: str, dept: str, cat: str, kind: str, colour: str) -> dict[str, Any]:
    return {
        "id": f"R{n}",
        "brand": brand,
        "category1": dept,
        "category2": cat,
        "category3": kind,
        "colour": colour,
        "description": f"The {brand} {kind} brings smart and bluetooth to your home. "
        'Model A1. Available in 55". Part of our range.',
    }


CATALOG = Catalog(
    [
        _record(1, "Samsung", "TV & Home Theater", "TVs", "QLED TV", "Black"),
        _record(2, "LG", "TV & Home Theater", "TVs", "OLED TV", "White"),
        _record(3, "Samsung", "TV & Home Theater", "Home Audio", "Soundbar", "Black"),
        _record(4, "Samsung", "Cell Phones", "Smartphones", "Galaxy S21", "Blue"),
        _record(5, "Sony", "Audio", "Headphones", "Earbuds", "Black"),
        _record(6, "Sony", "TV & Home Theater", "TVs", "LED TV", "Red"),
    ]
)


def test_kind_and_brand_grade_3_kind_alone_2_the_same_category_or_department_1() -> None:
    assert CATALOG.grades("samsung tv") == {"R1": 3, "R2": 2, "R6": 2, "R3": 1}
    # An attribute the description states counts like the brand: it makes a 3.
    assert CATALOG.grades("white television") == {"R2": 3, "R1": 2, "R6": 2, "R3": 1}
    assert CATALOG.grades("smart tv")["R1"] == 3


def test_a_query_with_no_kind_grades_only_3_or_0() -> None:
    assert CATALOG.grades("samsung") == {"R1": 3, "R3": 3, "R4": 3}
    assert CATALOG.grades("black sony") == {"R5": 3}


def test_a_query_that_does_not_fit_the_catalog_grades_nothing() -> None:
    assert CATALOG.grades("hello kitty") == {}
    assert CATALOG.grades("black") == {}  # an attribute alone names no product
    assert CATALOG.grades("samsung microwave") == {}  # a word the catalog does not have
    assert CATALOG.grades("lg headphones") == {"R5": 2}
