"""The engine-neutral query model and the protocol every search engine implements."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from searchgate.catalog.settings import CollectionSettings

# --- filters ---------------------------------------------------------------------


@dataclass(frozen=True)
class Terms:
    """Matches records whose ``field`` holds any of ``values`` (exact, case-sensitive)."""

    field: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Range:
    """Numeric range on a range navigation or numeric sortable field. ``low`` is
    inclusive, ``high`` exclusive, as in range navigation buckets."""

    field: str
    low: float | None
    high: float | None
    high_inclusive: bool = False


@dataclass(frozen=True)
class Ids:
    ids: tuple[str, ...]


@dataclass(frozen=True)
class And:
    children: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    child: Filter


@dataclass(frozen=True)
class MatchAll:
    pass


Filter = Terms | Range | Ids | And | Or | Not | MatchAll


def and_(*filters: Filter | None) -> Filter:
    kept = tuple(f for f in filters if f is not None and not isinstance(f, MatchAll))
    if not kept:
        return MatchAll()
    return kept[0] if len(kept) == 1 else And(kept)


# --- the plan --------------------------------------------------------------------


@dataclass(frozen=True)
class Alternative:
    """Synonyms: the words ``start`` to ``end`` (exclusive) of a text query also match
    as any of ``phrases``, each matching records that hold all of its words."""

    start: int
    end: int
    phrases: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class TextQuery:
    words: tuple[str, ...]
    prefix_last: bool = False  # the last word matches as a prefix (wildcard / SAYT)
    every_word_prefix: bool = False  # SAYT products: each word prefix-matched
    # Sorted by ``start``, never overlapping.
    alternatives: tuple[Alternative, ...] = ()


@dataclass(frozen=True)
class Boost:
    """Adds ``bonus`` to the score of records matching ``filter``; a negative bonus is
    applied as the same bonus to every record that does not match."""

    filter: Filter
    bonus: float


@dataclass(frozen=True)
class SortKey:
    field: str  # a sortable field, or "_relevance"
    descending: bool


@dataclass(frozen=True)
class FacetRequest:
    name: str  # the navigation (record field) name
    kind: str  # "Value" or "Range"
    size: int
    ranges: tuple[tuple[float | None, float | None], ...] = ()
    # Multi-select navigations count with their own selection removed.
    filter_override: Filter | None = None


@dataclass(frozen=True)
class SearchPlan:
    text: TextQuery | None
    filter: Filter = field(default_factory=MatchAll)
    boosts: tuple[Boost, ...] = ()
    sort: tuple[SortKey, ...] = ()
    pinned_ids: tuple[str, ...] = ()
    offset: int = 0
    limit: int = 10
    facets: tuple[FacetRequest, ...] = ()


@dataclass(frozen=True)
class Hit:
    record_id: str
    source: str  # the record's JSON text
    score: float


@dataclass
class FacetResult:
    name: str
    values: list[tuple[str, int]] = field(default_factory=list)
    ranges: list[tuple[float | None, float | None, int]] = field(default_factory=list)


@dataclass
class SearchResult:
    total: int
    hits: list[Hit]
    facets: dict[str, FacetResult]


class SearchEngine(Protocol):
    """Searches one process's copy of every collection's index."""

    def search(self, collection: str, plan: SearchPlan) -> SearchResult: ...

    def count(self, collection: str, text: TextQuery | None, filter: Filter) -> int: ...

    def complete_words(
        self, collection: str, prefix: str, limit: int, within: TextQuery | None = None
    ) -> list[tuple[str, int]]:
        """Indexed words of the completion fields that start with ``prefix``, counted
        over the records matching ``within`` when given."""
        ...

    def correct_word(self, collection: str, word: str) -> str:
        """``word`` when it finds records on its own, else the most frequent indexed
        word one edit away (or ``word`` when there is none)."""
        ...

    def similar_words(self, collection: str, word: str, limit: int) -> list[tuple[str, int]]:
        """Indexed words within a small edit distance of ``word``, most frequent first."""
        ...

    def has_collection(self, collection: str) -> bool: ...


class IndexWriterPort(Protocol):
    """What the indexer drives: apply changes, make them visible, remember the position."""

    def applied_seq(self) -> int: ...

    def prepare(self, collection: str, settings: CollectionSettings) -> bool:
        """Opens or creates the collection's index; False when it must be rebuilt."""
        ...

    def upsert(self, collection: str, record_id: str, source: str) -> None: ...

    def delete(self, collection: str, record_id: str) -> None: ...

    def clear(self, collection: str) -> None: ...

    def drop(self, collection: str) -> None: ...

    def rebuild(
        self,
        collection: str,
        settings: CollectionSettings,
        chunks: Iterable[list[tuple[str, str]]],
    ) -> int: ...

    def commit(self, applied_seq: int) -> None: ...

    def collections(self) -> list[str]: ...
