"""The ``pre-filter`` expression language.

    brand:"Bose" AND (price:[10 TO 100] OR onSale:true) AND NOT colour:Red

- ``field:value`` matches a value navigation (quotes for spaces or special characters);
- ``field:[low TO high]`` a numeric range, inclusive; ``*`` leaves a side open;
- ``AND``, ``OR``, ``NOT`` (upper case) and parentheses; AND binds tighter than OR.
Fields are a collection's navigations (value or range) or numeric sortable fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from searchgate.catalog.settings import CollectionSettings
from searchgate.engines.base import And, Filter, Not, Or, Range, Terms
from searchgate.errors import InvalidInput

MAX_DEPTH = 32
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<lpar>\() | (?P<rpar>\)) | (?P<lbr>\[) | (?P<rbr>\]) | (?P<colon>:)
    | "(?P<quoted>(?:[^"\\]|\\.)*)"
    | (?P<word>[^\s():\[\]"]+)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise InvalidInput(f"pre-filter: unexpected character at {pos}", field="pre-filter")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "quoted":
            value = re.sub(r"\\(.)", r"\1", value)
        out.append(_Tok(kind, value, m.start(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, settings: CollectionSettings) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.settings = settings
        self.depth = 0

    def error(self, message: str) -> InvalidInput:
        where = self.toks[self.i].pos if self.i < len(self.toks) else "the end"
        return InvalidInput(f"pre-filter: {message} (at {where})", field="pre-filter")

    def peek(self, kind: str, text: str | None = None) -> bool:
        if self.i >= len(self.toks):
            return False
        t = self.toks[self.i]
        return t.kind == kind and (text is None or t.text == text)

    def take(self, kind: str, text: str | None = None) -> _Tok:
        if not self.peek(kind, text):
            raise self.error(f"expected {text or kind}")
        self.i += 1
        return self.toks[self.i - 1]

    def parse(self) -> Filter:
        f = self.or_()
        if self.i != len(self.toks):
            raise self.error("unexpected text")
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
            raise self.error(f"nested deeper than {MAX_DEPTH}")
        try:
            if self.peek("word", "NOT"):
                self.i += 1
                return Not(self.unary())
            if self.peek("lpar"):
                self.i += 1
                inner = self.or_()
                self.take("rpar")
                return inner
            return self.comparison()
        finally:
            self.depth -= 1

    def comparison(self) -> Filter:
        field = self.take("word").text
        self.take("colon")
        nav = self.settings.navigation(field)
        numeric = (nav is not None and nav.type == "Range") or (
            nav is None and field in self.settings.sortable
        )
        if self.peek("lbr"):
            if not numeric:
                raise self.error(f"{field!r} is not a range navigation or numeric sort field")
            self.i += 1
            low = self.bound()
            self.take("word", "TO")
            high = self.bound()
            self.take("rbr")
            return Range(field, low, high, high_inclusive=True)
        if nav is None or nav.type != "Value":
            raise self.error(f"{field!r} is not a value navigation of this collection")
        if self.peek("quoted"):
            return Terms(field, (self.take("quoted").text,))
        return Terms(field, (self.take("word").text,))

    def bound(self) -> float | None:
        tok = self.take("word")
        if tok.text == "*":
            return None
        try:
            return float(tok.text)
        except ValueError:
            raise self.error(f"{tok.text!r} is not a number") from None


def parse_prefilter(text: str, settings: CollectionSettings, max_chars: int) -> Filter:
    if len(text) > max_chars:
        raise InvalidInput(f"pre-filter: at most {max_chars} characters", field="pre-filter")
    return _Parser(text, settings).parse()
