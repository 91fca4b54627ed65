"""Edge cases of record validation, pinned so that speed work cannot change behaviour."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from searchgate.catalog.service import parse_settings
from searchgate.catalog.settings import CollectionSettings
from searchgate.catalog.validation import RECORD_ID_MAX, ValidRecord, validate_record
from searchgate.config import Limits
from searchgate.demo import demo_settings, generate

SETTINGS = parse_settings(demo_settings())
LIMITS = Limits()
ID_REASON = "an id has 1 to 256 characters and no control characters"
MISSING_ID = "missing id: a string or an integer is required"
FINITE = "numbers must be finite"
KEY_REASON = "a field name has 1 to 128 characters"
LIST_REASON = "a list holds strings, numbers or booleans only"


def problem(
    raw: Any, settings: CollectionSettings = SETTINGS, limits: Limits = LIMITS
) -> tuple[str | None, str] | None:
    rec, prob = validate_record(raw, settings, limits)
    assert (rec is None) != (prob is None)
    return prob


def valid(raw: Any, settings: CollectionSettings = SETTINGS) -> ValidRecord:
    rec, prob = validate_record(raw, settings, LIMITS)
    assert prob is None
    assert rec is not None
    return rec


def test_demo_records_are_valid_and_stored_as_orjson_text() -> None:
    for raw in generate(200, seed=7):
        rec = valid(raw)
        assert rec.record_id == raw["id"]
        assert rec.data == orjson.dumps(raw).decode()


def test_data_is_exact_orjson_text_for_awkward_values() -> None:
    raw = {"id": "a", "n": None, "d": {"x": [1, 2]}, "u": "é\u2028", "f": 1e300, "b": False}
    assert valid(raw).data == orjson.dumps(raw).decode()


def test_not_a_dict() -> None:
    assert problem([{"id": "a"}]) == (None, "a record is a JSON object, not list")
    assert problem("x") == (None, "a record is a JSON object, not str")


def test_too_many_fields() -> None:
    limits = Limits(max_fields_per_record=3)
    raw = {"id": "a", "b": 1, "c": 2, "d": 3}
    assert problem(raw, limits=limits) == (
        None,
        "a record has at most 3 fields (SEARCHGATE_LIMIT_MAX_FIELDS_PER_RECORD); this one has 4",
    )
    assert problem({"id": "a", "b": 1, "c": 2}, limits=limits) is None


def test_int_id_accepted_as_text() -> None:
    rec = valid({"id": 42, "title": "x"})
    assert rec.record_id == "42"
    assert rec.data == '{"id":42,"title":"x"}'


@pytest.mark.parametrize("id_value", [True, False, None, 1.5, ["a"], {"a": 1}])
def test_id_of_wrong_type_refused(id_value: Any) -> None:
    assert problem({"id": id_value}) == ("id", MISSING_ID)


def test_missing_id_refused_before_field_problems() -> None:
    assert problem({"price": float("nan")}) == ("id", MISSING_ID)


def test_id_length() -> None:
    assert valid({"id": "a" * RECORD_ID_MAX}).record_id == "a" * 256
    assert problem({"id": "a" * 257}) == ("id", ID_REASON)
    assert problem({"id": ""}) == ("id", ID_REASON)


@pytest.mark.parametrize("rid", ["a\x1f", "\x00", "a\nb", "x\x7f"])
def test_id_control_characters_refused(rid: str) -> None:
    assert problem({"id": rid}) == ("id", ID_REASON)


@pytest.mark.parametrize("rid", ["a\x80b", "x\u2028y", "tab less é", "\u00a0"])
def test_non_printable_but_not_control_ids_accepted(rid: str) -> None:
    # Only [\x00-\x1f\x7f] is refused; other non-printable characters are allowed.
    assert valid({"id": rid}).record_id == rid


def test_id_field_from_settings() -> None:
    settings = parse_settings({"idField": "sku"})
    assert valid({"sku": 7, "id": True}, settings).record_id == "7"
    assert problem({"id": "a"}, settings) == ("sku", MISSING_ID)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_scalar_refused(bad: float) -> None:
    assert problem({"id": "a", "weight": bad}) == ("weight", FINITE)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_in_list_refused(bad: float) -> None:
    assert problem({"id": "a", "sizes": [1, "x", bad]}) == ("sizes", FINITE)


def test_float_subclass_checked_too() -> None:
    class F(float):
        pass

    assert problem({"id": "a", "w": F("nan")}) == ("w", FINITE)
    assert problem({"id": "a", "w": [F("inf")]}) == ("w", FINITE)


def test_finite_numbers_bools_and_none_accepted() -> None:
    raw = {"id": "a", "f": 1.5, "i": 2**62, "t": True, "n": None, "l": [1.0, False, None, "s"]}
    assert valid(raw).data == orjson.dumps(raw).decode()


def test_key_of_129_characters_refused() -> None:
    assert valid({"id": "a", "k" * 128: 1}).record_id == "a"
    assert problem({"id": "a", "k" * 129: 1}) == ("k" * 64, KEY_REASON)


def test_empty_key_refused() -> None:
    assert problem({"id": "a", "": 1}) == ("", KEY_REASON)


def test_non_string_key_refused() -> None:
    assert problem({"id": "a", 5: 1}) == ("5", KEY_REASON)


@pytest.mark.parametrize("item", [{"a": 1}, [1], []])
def test_list_holding_list_or_dict_refused(item: Any) -> None:
    assert problem({"id": "a", "tags": ["x", item]}) == ("tags", LIST_REASON)


def test_list_holding_dict_refused_before_later_nan() -> None:
    assert problem({"id": "a", "tags": [{"a": 1}, float("nan")]}) == ("tags", LIST_REASON)
    assert problem({"id": "a", "tags": [float("nan"), {"a": 1}]}) == ("tags", FINITE)


def test_nested_dict_value_accepted_as_is() -> None:
    raw = {"id": "a", "meta": {"deep": [1, {"x": 2}], "nan": None}}
    assert valid(raw).data == '{"id":"a","meta":{"deep":[1,{"x":2}],"nan":null}}'


def test_first_problem_in_field_order_wins() -> None:
    raw = {"id": "a", "x": float("nan"), "k" * 129: 1, "y": [[1]]}
    assert problem(raw) == ("x", FINITE)
    raw = {"id": "a", "y": [[1]], "x": float("nan")}
    assert problem(raw) == ("y", LIST_REASON)


@pytest.mark.parametrize("value", ["12", True, False, [1], {"a": 1}])
def test_range_navigation_needs_a_number(value: Any) -> None:
    assert problem({"id": "a", "price": value}) == (
        "price",
        "'price' is a range navigation: a number is required",
    )


@pytest.mark.parametrize("value", [12, 12.5, None])
def test_range_navigation_accepts_numbers_and_null(value: Any) -> None:
    assert valid({"id": "a", "price": value}).record_id == "a"


def test_range_navigations_checked_in_settings_order_after_fields() -> None:
    # price comes before rating in the demo settings, whatever the record's order.
    raw = {"id": "a", "rating": "x", "price": "y"}
    assert problem(raw) == ("price", "'price' is a range navigation: a number is required")
    assert problem({"id": "a", "price": "y", "z": float("inf")}) == ("z", FINITE)


def test_range_navigations_follow_the_settings_object() -> None:
    # Alternating settings objects must not reuse each other's range navigations.
    other = parse_settings(
        {"navigations": [{"name": "size", "type": "Range", "ranges": [{"low": 1}]}]}
    )
    for _ in range(2):
        assert problem({"id": "a", "size": "L"}, other) is not None
        assert problem({"id": "a", "size": "L"}) is None
        assert problem({"id": "a", "price": "1"}, other) is None
        assert problem({"id": "a", "price": "1"}) is not None


def test_not_serialisable() -> None:
    prob = problem({"id": "a", "x": object()})
    assert prob is not None
    assert prob[0] is None
    assert prob[1].startswith("not serialisable as JSON: ")
    prob = problem({"id": "a", "big": 2**70})
    assert prob is not None
    assert prob[1].startswith("not serialisable as JSON: ")


def test_record_over_max_record_bytes() -> None:
    limits = Limits(max_record_bytes=30)
    ok = {"id": "a", "t": "x" * 13}  # {"id":"a","t":"xxx..."} is exactly 30 bytes
    assert len(orjson.dumps(ok)) == 30
    assert problem(ok, limits=limits) is None
    big = {"id": "a", "t": "x" * 14}
    assert problem(big, limits=limits) == (
        None,
        "a record is at most 30 bytes as JSON (SEARCHGATE_LIMIT_MAX_RECORD_BYTES); this one has 31",
    )
