"""Synonyms and stop words, compiled once per published version and collection.

A query's words (folded like the index) are read left to right; at each word the
longest synonym term that starts there wins, and its words are not read again, so
``flat screen tv`` with sets ``flat screen => television`` and ``tv, television``
applies the phrase first, then ``tv``. Several sets with the same term add up."""

from __future__ import annotations

from dataclasses import dataclass, field

from searchgate.engines.base import Alternative
from searchgate.engines.tantivy.layout import words
from searchgate.merchandising.document import StopWords, SynonymSet


@dataclass(frozen=True)
class Applied:
    """One term found in the query and what it also finds."""

    set_name: str
    matched: str
    added: tuple[str, ...]


@dataclass
class _Entry:
    phrase: tuple[str, ...]
    alternatives: dict[tuple[str, ...], None] = field(default_factory=dict)
    sets: list[str] = field(default_factory=list)


class SynonymIndex:
    def __init__(self, sets: list[SynonymSet], stop_words: list[StopWords]) -> None:
        self._by_first: dict[str, list[_Entry]] = {}
        entries: dict[tuple[str, ...], _Entry] = {}
        for s in sets:
            groups = [tuple(words(t)) for t in s.terms]
            targets = [tuple(words(t)) for t in s.to] if s.kind == "one-way" else groups
            for g in groups:
                if not g:
                    continue
                entry = entries.setdefault(g, _Entry(g))
                for t in targets:
                    if t and t != g:
                        entry.alternatives.setdefault(t, None)
                if s.name not in entry.sets:
                    entry.sets.append(s.name)
        for e in entries.values():
            if e.alternatives:
                self._by_first.setdefault(e.phrase[0], []).append(e)
        for candidates in self._by_first.values():
            candidates.sort(key=lambda e: -len(e.phrase))
        self.stop_words: frozenset[str] = frozenset(
            w for sw in stop_words for t in sw.words for w in words(t)
        )

    def drop_stop_words(self, ws: list[str]) -> tuple[list[str], list[str]]:
        """The words left, and those dropped; a query of stop words only is kept whole."""
        if not self.stop_words:
            return ws, []
        kept = [w for w in ws if w not in self.stop_words]
        if not kept:
            return ws, []
        return kept, [w for w in ws if w in self.stop_words]

    def expand(self, ws: list[str]) -> tuple[tuple[Alternative, ...], list[Applied]]:
        if not self._by_first:
            return (), []
        alternatives: list[Alternative] = []
        applied: list[Applied] = []
        i = 0
        while i < len(ws):
            match = None
            for e in self._by_first.get(ws[i], ()):
                n = len(e.phrase)
                if tuple(ws[i : i + n]) == e.phrase:
                    match = e
                    break
            if match is None:
                i += 1
                continue
            n = len(match.phrase)
            phrases = tuple(match.alternatives)
            alternatives.append(Alternative(i, i + n, phrases))
            applied.append(
                Applied(
                    ", ".join(match.sets),
                    " ".join(match.phrase),
                    tuple(" ".join(p) for p in phrases),
                )
            )
            i += n
        return tuple(alternatives), applied
