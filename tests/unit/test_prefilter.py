"""The pre-filter parser: what each expression means, and how bad ones are refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from searchgate.catalog.settings import CollectionSettings
from searchgate.engines.base import And, Filter, MatchAll, Not, Or, Range, Terms
from searchgate.errors import InvalidInput
from searchgate.search.prefilter import MAX_DEPTH, parse_prefilter

SETTINGS = CollectionSettings.model_validate(
    {
        "navigations": [
            {"name": "brand"},
            {"name": "colour"},
            {"name": "on.sale"},
            {"name": "price", "type": "Range", "ranges": [{"high": 10}]},
        ],
        "sortable": ["rating", "title"],
    }
)


def parse(text: str, max_chars: int = 2000) -> Filter:
    return parse_prefilter(text, SETTINGS, max_chars)


def fails(text: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        parse(text)
    assert info.value.field == "pre-filter"
    return info.value


def test_comparisons() -> None:
    assert parse("brand:Bose") == Terms("brand", ("Bose",))
    assert parse('brand:"Bang & Olufsen"') == Terms("brand", ("Bang & Olufsen",))
    assert parse(r'brand:"say \"hi\" \\ (x):[y]"') == Terms("brand", ('say "hi" \\ (x):[y]',))
    assert parse("on.sale:true") == Terms("on.sale", ("true",))
    assert parse("brand:AT&T") == Terms("brand", ("AT&T",))
    assert parse('brand:""') == Terms("brand", ("",))
    assert parse("brand:{x};") == Terms("brand", ("{x};",))
    assert parse("  brand : Bose  ") == Terms("brand", ("Bose",))
    assert parse("price:[10 TO 100]") == Range("price", 10.0, 100.0, high_inclusive=True)
    assert parse("price:[* TO 9.5]") == Range("price", None, 9.5, high_inclusive=True)
    assert parse("price:[-5 TO *]") == Range("price", -5.0, None, high_inclusive=True)
    assert parse("price:[* TO *]") == Range("price", None, None, high_inclusive=True)
    assert parse("price:12.5") == Range("price", 12.5, 12.5, high_inclusive=True)
    # A numeric sortable field filters like a range navigation.
    assert parse("rating:[4 TO 5]") == Range("rating", 4.0, 5.0, high_inclusive=True)
    assert parse("") == MatchAll() and parse(" \n\t") == MatchAll()


def test_operators_and_precedence() -> None:
    b, c, r = Terms("brand", ("B",)), Terms("colour", ("C",)), Terms("colour", ("R",))
    assert parse("brand:B AND colour:C") == And((b, c))
    assert parse("brand:B OR colour:C") == Or((b, c))
    assert parse("NOT brand:B") == Not(b)
    assert parse("NOT NOT brand:B") == Not(Not(b))
    # NOT binds tightest, then AND, then OR.
    assert parse("brand:B OR colour:C AND colour:R") == Or((b, And((c, r))))
    assert parse("(brand:B OR colour:C) AND colour:R") == And((Or((b, c)), r))
    assert parse("NOT brand:B AND colour:C") == And((Not(b), c))
    assert parse("NOT (brand:B AND colour:C)") == Not(And((b, c)))
    assert parse("brand:B AND colour:C AND colour:R") == And((b, c, r))
    assert parse("((brand:B))") == b
    # Keywords are upper case; lower case ones are values.
    assert parse("brand:and") == Terms("brand", ("and",))
    assert parse('brand:"OR"') == Terms("brand", ("OR",))


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("brand:", 6, "expected a value at the end"),
        ("brand", 5, "expected ':'"),
        ("brand:B AND", 11, "expected a field name at the end"),
        ("brand:B OR OR colour:C", 11, "not OR"),
        ("(brand:B", 8, "expected ')'"),
        ("brand:B)", 7, "unbalanced ')'"),
        ("brand:B colour:C", 8, "expected AND, OR or the end"),
        ("brand:B and colour:C", 8, "operators are upper case"),
        ("nope:1", 0, "'nope' is not a navigation or sortable field"),
        ("title:x", 6, "'title' is filtered as a number"),
        ("brand:[1 TO 2]", 0, "value navigation"),
        ("price:cheap", 6, "'price' is a range navigation: use price:number or"),
        ("price:[a TO 2]", 7, "'a' is not a number"),
        ("price:[1 TO nan]", 12, "'nan' is not a number"),
        ("price:[1 TO inf]", 12, "'inf' is not a number"),
        ("price:[1 2]", 9, "expected TO"),
        ("price:[1 TO 2", 13, "expected ']'"),
        ("price:[5 TO 2]", 0, "low exceeds its high"),
        ('brand:"Bose', 6, "unterminated quoted value"),
        ("brand:B & colour:C", 8, "expected AND, OR"),
        ("brand:B; DROP", 9, "expected AND, OR"),
        (":x", 0, "expected a field name"),
        ("AND brand:B", 0, "expected a field name, not AND"),
        ("()", 1, "expected a field name"),
    ],
)
def test_errors_say_where(text: str, position: int, words: str) -> None:
    err = fails(text)
    assert err.details["position"] == position, err.message
    assert f"position {position}" in err.message and words in err.message, err.message
    assert err.message.startswith("pre-filter: ")


def test_unexpected_character_position() -> None:
    # Every printable character outside the grammar is a word character, so only a
    # stray quote can be unexpected; an odd one is reported where it starts.
    err = fails('brand:B AND colour:"C" AND "')
    assert err.details["position"] == 27 and "unterminated" in err.message


def test_limits() -> None:
    nested = "(" * MAX_DEPTH + "brand:B" + ")" * MAX_DEPTH
    with pytest.raises(InvalidInput, match="deeper than"):
        parse(nested)
    assert parse("(" * (MAX_DEPTH - 1) + "brand:B" + ")" * (MAX_DEPTH - 1)) == Terms(
        "brand", ("B",)
    )
    with pytest.raises(InvalidInput, match="deeper than"):
        parse("NOT " * (MAX_DEPTH + 1) + "brand:B")
    with pytest.raises(InvalidInput, match="at most 20 characters") as info:
        parse("brand:B OR brand:C OR brand:D", max_chars=20)
    assert info.value.field == "pre-filter"
    # Long flat expressions are fine (no recursion per operand).
    long = " OR ".join(f"brand:b{i}" for i in range(150))
    assert isinstance(parse(long), Or)


@given(st.text(max_size=60))
def test_any_text_parses_or_fails_cleanly(text: str) -> None:
    try:
        parse(text)
    except InvalidInput as exc:
        assert exc.field == "pre-filter"
        assert 0 <= exc.details.get("position", 0) <= len(text)


PIECES = [*'()[]:" *', "AND", "OR", "NOT", "TO", "brand", "price", "rating", "1", "x"]


@given(st.lists(st.sampled_from(PIECES), max_size=30).map("".join))
def test_grammar_soup_parses_or_fails_cleanly(text: str) -> None:
    try:
        parse(text)
    except InvalidInput as exc:
        assert exc.field == "pre-filter"
