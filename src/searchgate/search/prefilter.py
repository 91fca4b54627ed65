"""The ``pre-filter`` expression language.

A pre-filter narrows the records a search sees before anything else (query,
refinements, navigation counts, biasing), for example to what one storefront sells::

    brand:"Bose" AND (price:[10 TO 100] OR onSale:true) AND NOT colour:Red

- ``field:value`` keeps records whose value navigation ``field`` holds ``value``
  exactly (case-sensitive; booleans are ``true``/``false``). Quote values that hold
  spaces or any of ``( ) [ ] : "``; inside quotes ``\\"`` is a quote and ``\\\\`` a
  backslash.
- ``field:[low TO high]`` keeps records whose number is within ``low`` and ``high``,
  both inclusive; ``*`` leaves a side open (``price:[* TO 50]``). ``field:12.5`` is
  the exact number. Numeric fields are range navigations and sortable fields that
  hold numbers.
- ``AND``, ``OR``, ``NOT`` (upper case) and parentheses. ``NOT`` binds tightest, then
  ``AND``, then ``OR``: ``a OR b AND c`` is ``a OR (b AND c)``. There is no implicit
  ``AND`` between two conditions.
- At most ``Limits.max_prefilter_chars`` characters and 32 levels of nesting
  (parentheses and ``NOT``). A blank pre-filter filters nothing.

Errors are 400s on field ``pre-filter`` whose message (and ``position``, a 0-based
character offset) says where the expression went wrong.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from searchgate.catalog.settings import CollectionSettings
from searchgate.engines.base import And, Filter, MatchAll, Not, Or, Range, Terms
from searchgate.errors import InvalidInput

MAX_DEPTH = 32
KEYWORDS = ("AND", "OR", "NOT", "TO")
_TOKEN = re.compile(
    r"""(?P<lpar>\() | (?P<rpar>\)) | (?P<lbr>\[) | (?P<rbr>\]) | (?P<colon>:)
    | "(?P<quoted>(?:[^"\\]|\\.)*)"
    | (?P<word>[^\s():\[\]"]+)""",
    re.VERBOSE | re.DOTALL,
)
_NAMES = {
    "lpar": "'('",
    "rpar": "')'",
    "lbr": "'['",
    "rbr": "']'",
    "colon": "':'",
    "quoted": "a value",
    "word": "a word",
}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _fail(message: str, pos: int, length: int) -> InvalidInput:
    where = f"at the end (position {pos})" if pos >= length else f"at position {pos}"
    return InvalidInput(f"pre-filter: {message} {where}", field="pre-filter", position=pos)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = _skip_space(text, 0)
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            if text[pos] == '"':
                raise _fail("unterminated quoted value", pos, len(text))
            raise _fail(f"unexpected character {text[pos]!r}", pos, len(text))
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "quoted":
            value = re.sub(r"\\(.)", r"\1", value, flags=re.DOTALL)
        out.append(_Tok(kind, value, pos))
        pos = _skip_space(text, m.end())
    return out


class _Parser:
    def __init__(self, text: str, settings: CollectionSettings) -> None:
        self.length = len(text)
        self.toks = _tokens(text)
        self.i = 0
        self.settings = settings
        self.depth = 0

    def error(self, message: str, tok: _Tok | None = None) -> InvalidInput:
        if tok is None and self.i < len(self.toks):
            tok = self.toks[self.i]
        return _fail(message, tok.pos if tok is not None else self.length, self.length)

    def peek(self, kind: str, text: str | None = None) -> bool:
        if self.i >= len(self.toks):
            return False
        t = self.toks[self.i]
        return t.kind == kind and (text is None or t.text == text)

    def take(self, kind: str, what: str | None = None) -> _Tok:
        if not self.peek(kind):
            raise self.error(f"expected {what or _NAMES[kind]}")
        self.i += 1
        return self.toks[self.i - 1]

    def parse(self) -> Filter:
        f = self.or_()
        if self.i != len(self.toks):
            tok = self.toks[self.i]
            hint = " (operators are upper case)" if tok.text.upper() in KEYWORDS else ""
            if tok.kind == "rpar":
                raise self.error("unbalanced ')'")
            raise self.error(f"expected AND, OR or the end{hint}")
        return f

    def or_(self) -> Filter:
        parts = [self.and_()]
        while self.peek("word", "OR"):
            self.i += 1
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_(self) -> Filter:
        parts = [self.unary()]
        while self.peek("word", "AND"):
            self.i += 1
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self) -> Filter:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"nested deeper than {MAX_DEPTH} levels")
        try:
            if self.peek("word", "NOT"):
                self.i += 1
                return Not(self.unary())
            if self.peek("lpar"):
                self.i += 1
                inner = self.or_()
                self.take("rpar", "')'")
                return inner
            return self.comparison()
        finally:
            self.depth -= 1

    def comparison(self) -> Filter:
        if self.peek("word") and self.toks[self.i].text in KEYWORDS:
            raise self.error(f"expected a field name, not {self.toks[self.i].text}")
        field_tok = self.take("word", "a field name")
        field = field_tok.text
        self.take("colon", "':' after the field name")
        nav = self.settings.navigation(field)
        numeric = (nav is not None and nav.type == "Range") or (
            nav is None and field in self.settings.sortable
        )
        if nav is None and not numeric:
            raise self.error(
                f"{field!r} is not a navigation or sortable field of this collection", field_tok
            )
        if self.peek("lbr"):
            if not numeric:
                raise self.error(f"{field!r} is a value navigation: use {field}:value", field_tok)
            self.i += 1
            low = self.bound()
            if not self.peek("word", "TO"):
                raise self.error("expected TO")
            self.i += 1
            high = self.bound()
            self.take("rbr", "']'")
            if low is not None and high is not None and low > high:
                raise self.error("the range's low exceeds its high", field_tok)
            return Range(field, low, high, high_inclusive=True)
        if self.peek("quoted"):
            tok = self.take("quoted")
        elif self.peek("word") and self.toks[self.i].text not in KEYWORDS:
            tok = self.take("word")
        else:
            raise self.error("expected a value")
        if numeric:
            num = self._number(tok)
            if num is None:
                kind = "a range navigation" if nav is not None else "filtered as a number"
                raise self.error(
                    f"{field!r} is {kind}: use {field}:number or {field}:[low TO high]", tok
                )
            return Range(field, num, num, high_inclusive=True)
        return Terms(field, (tok.text,))

    def bound(self) -> float | None:
        tok = self.take("word", "a number or *")
        if tok.text == "*":
            return None
        num = self._number(tok)
        if num is None:
            raise self.error(f"{tok.text!r} is not a number", tok)
        return num

    @staticmethod
    def _number(tok: _Tok) -> float | None:
        try:
            num = float(tok.text)
        except ValueError:
            return None
        return num if math.isfinite(num) else None


def parse_prefilter(text: str, settings: CollectionSettings, max_chars: int) -> Filter:
    if len(text) > max_chars:
        raise InvalidInput(f"pre-filter: at most {max_chars} characters", field="pre-filter")
    if not text.strip():
        return MatchAll()
    return _Parser(text, settings).parse()
