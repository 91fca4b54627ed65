"""Compiling the engine-neutral plan into tantivy queries, and running it.

Sorting by several keys is exact at any depth: tantivy orders by one fast field at a
time, so the records of a page that tie on the first key are ordered by a second
search restricted to that key's value, sorted by the next key, and so on. Every
comparison is therefore tantivy's own (text folded like the index: case and accents
ignored). Records without a sort value (or with a text in a field that holds
numbers) come last in either direction; ties on every key keep tantivy's index
order, which is stable between the pages of one index version. ``_relevance`` as a
key means best match first whatever its order, and ends the key list.

Navigation counts are exact: a terms aggregation keeps up to ``TERMS_SEGMENT_SIZE``
values per segment, so merging segments never undercounts a navigation with fewer
distinct values; range buckets are matched to the configured ones by their bounds
(tantivy sorts buckets and fills gaps), and overlapping buckets, which one range
aggregation refuses, are counted one by one.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import tantivy

from searchgate.engines.base import (
    And,
    Boost,
    FacetRequest,
    FacetResult,
    Filter,
    Hit,
    Ids,
    MatchAll,
    Not,
    Or,
    Range,
    SearchPlan,
    SearchResult,
    SortKey,
    Terms,
    TextQuery,
)
from searchgate.engines.tantivy.layout import ID, PREFIX_MAX, SOURCE, text_term
from searchgate.engines.tantivy.store import CollectionIndex

MUST = tantivy.Occur.Must
SHOULD = tantivy.Occur.Should
MUST_NOT = tantivy.Occur.MustNot
# Per-segment candidates kept by a terms aggregation: navigations with at most this
# many distinct values get exact counts (see the module docstring).
TERMS_SEGMENT_SIZE = 20_000

Hits = list[tuple[Any, tantivy.DocAddress]]
# Up to this many ids are looked up one by one rather than by a term set query.
FEW_IDS = 64
# Words whose fields a searcher remembers (storefront queries repeat).
FIELDS_MEMO = 100_000


def total_of(result: tantivy.SearchResult) -> int:
    # The bindings' type stubs omit ``count``, which ``search(count=True)`` fills.
    return int(result.count)  # type: ignore[attr-defined]


class QueryCompiler:
    def __init__(self, ci: CollectionIndex) -> None:
        self.ci = ci
        self.schema = ci.schema
        self.layout = ci.layout

    def _words(self, words: tuple[str, ...]) -> tantivy.Query:
        """Every word in some searchable field, each field's score times its weight.

        Built term by term rather than by tantivy's query parser: the words are already
        the index's tokens, and the parser would read syntax into them. Only the fields
        that hold a word are asked for it, and a word no field holds matches nothing,
        which a synonym's phrases of words the catalog lacks need to cost nothing."""
        parts: list[tantivy.Query] = []
        for word in words:
            term = text_term(word)
            if term is None:
                # Too long: the index drops such a word from a record's text, and the
                # query drops it likewise.
                continue
            fields = self._fields_with(term)
            if not fields:
                return tantivy.Query.empty_query()
            parts.append(
                self._any(
                    [
                        tantivy.Query.boost_query(
                            tantivy.Query.term_query(self.schema, f, term, index_option="freq"), w
                        )
                        for f, w in fields
                    ]
                )
            )
        return self._all(parts) if parts else tantivy.Query.empty_query()

    def _fields_with(self, term: str) -> list[tuple[str, float]]:
        """The searchable fields (and weights) some record holds ``term`` in; remembered
        for the searcher it was read from (a new searcher starts afresh)."""
        searcher = self.ci.searcher
        memo = self.ci.cache.get("fields_with")
        if not isinstance(memo, tuple) or memo[0] is not searcher:
            memo = (searcher, {})
            self.ci.cache["fields_with"] = memo
        known: dict[str, list[tuple[str, float]]] = memo[1]
        hit = known.get(term)
        if hit is None:
            hit = [(f, w) for f, w in self.layout.searchable.values() if searcher.doc_freq(f, term)]
            if len(known) >= FIELDS_MEMO:
                known.clear()
            known[term] = hit
        return hit

    def _prefix(self, word: str) -> tantivy.Query:
        """Records with a word that starts with ``word`` in the title or a strong field,
        scored by the weights of the fields it is found in: a preview ranks a title match
        above one in a weaker field, whatever the fields' lengths or word frequencies."""
        prefix = word[:PREFIX_MAX]
        return self._any(
            [
                tantivy.Query.const_score_query(
                    tantivy.Query.term_query(self.schema, f, prefix, index_option="basic"), w
                )
                for f, w in self.layout.prefix_fields
            ]
        )

    def text(self, text: TextQuery | None) -> tantivy.Query | None:
        if text is None or not text.words:
            return None
        if text.every_word_prefix:
            units = [self._prefix(w) for w in text.words]
        else:
            if not self.layout.searchable or not any(text_term(w) for w in text.words):
                # Only a prefix-typed last word can match (the title's prefixes).
                if text.prefix_last and len(text.words) == 1:
                    return self._prefix(text.words[0])
                return tantivy.Query.empty_query()
            # A word too long to be indexed constrains nothing (records drop it too).
            units = [
                self._words((w,)) if text_term(w) is not None else tantivy.Query.all_query()
                for w in text.words
            ]
            if text.prefix_last:
                # The typed word itself still matches in any searchable field; the
                # prefix reaches the title and strong fields' words.
                units[-1] = self._any([self._prefix(text.words[-1]), units[-1]])
        if not text.alternatives:
            return self._all(units)
        parts: list[tantivy.Query] = []
        at = 0
        # A phrase the index reads as the span itself ("headphones" for "headphone":
        # one stem) would only repeat it.
        key = _same if text.every_word_prefix else _stems
        for alt in text.alternatives:
            parts.extend(units[at : alt.start])
            seen = {key(text.words[alt.start : alt.end])}
            phrases = []
            for p in alt.phrases:
                if key(p) in seen:
                    continue
                seen.add(key(p))
                phrases.append(
                    self._all([self._prefix(w) for w in p])
                    if text.every_word_prefix
                    else self._words(p)
                )
            span = self._all(units[alt.start : alt.end])
            parts.append(self._any([span, *phrases]) if phrases else span)
            at = alt.end
        parts.extend(units[at:])
        return self._all(parts)

    @staticmethod
    def _any(parts: list[tantivy.Query]) -> tantivy.Query:
        if not parts:
            return tantivy.Query.empty_query()
        if len(parts) == 1:
            return parts[0]
        return tantivy.Query.boolean_query([(SHOULD, p) for p in parts])

    @staticmethod
    def _all(parts: list[tantivy.Query]) -> tantivy.Query:
        if len(parts) == 1:
            return parts[0]
        return tantivy.Query.boolean_query([(MUST, p) for p in parts])

    def filter(self, f: Filter) -> tantivy.Query | None:
        if isinstance(f, MatchAll):
            return None
        if isinstance(f, Terms):
            field = self.layout.values.get(f.field)
            if field is None:
                return tantivy.Query.empty_query()
            if len(f.values) == 1:
                return tantivy.Query.term_query(self.schema, field, f.values[0])
            return tantivy.Query.term_set_query(self.schema, field, list(f.values))
        if isinstance(f, Range):
            field = self.layout.ranges.get(f.field) or self.layout.sort_numbers.get(f.field)
            if field is None:
                return tantivy.Query.empty_query()
            return self.range(field, f.low, f.high, f.high_inclusive)
        if isinstance(f, Ids):
            if len(f.ids) <= FEW_IDS:
                # A term set query walks the id field's whole term dictionary (measured:
                # 0.1-0.2 ms a search on 20,000 records for 3 ids); a few term lookups
                # cost next to nothing.
                return self._any(
                    [tantivy.Query.term_query(self.schema, ID, i) for i in dict.fromkeys(f.ids)]
                )
            return tantivy.Query.term_set_query(self.schema, ID, list(f.ids))
        if isinstance(f, And):
            parts = [q for q in (self.filter(c) for c in f.children) if q is not None]
            return self._all(parts) if parts else None
        if isinstance(f, Or):
            clauses = []
            for c in f.children:
                q = self.filter(c)
                if q is None:
                    return None
                clauses.append((SHOULD, q))
            return tantivy.Query.boolean_query(clauses)
        if isinstance(f, Not):
            inner = self.filter(f.child)
            if inner is None:
                return tantivy.Query.empty_query()
            return tantivy.Query.boolean_query(
                [(MUST, tantivy.Query.all_query()), (MUST_NOT, inner)]
            )
        raise TypeError(f"unknown filter {f!r}")

    def range(
        self, field: str, low: float | None, high: float | None, high_inclusive: bool
    ) -> tantivy.Query:
        if any(v is not None and math.isnan(v) for v in (low, high)):
            return tantivy.Query.empty_query()
        if low is None and high is None:
            return tantivy.Query.exists_query(field)
        return tantivy.Query.range_query(
            self.schema,
            field,
            tantivy.FieldType.Float,
            low,
            high,
            True,
            True if high is None else high_inclusive,
        )

    def where(self, text_q: tantivy.Query | None, f: Filter) -> tantivy.Query:
        """``text_q`` within filter ``f`` as one flat query: the filter's top-level
        exclusions (hidden records, ``NOT`` conditions) become clauses that subtract from
        it, instead of each being all records minus something, intersected (measured:
        a third of a search's cost with 10 hidden records on 20,000)."""
        must = [text_q] if text_q is not None else []
        must_not: list[tantivy.Query] = []
        for c in f.children if isinstance(f, And) else (f,):
            if isinstance(c, Not):
                inner = self.filter(c.child)
                if inner is None:
                    return tantivy.Query.empty_query()  # not anything
                must_not.append(inner)
            else:
                q = self.filter(c)
                if q is not None:
                    must.append(q)
        if not must_not:
            return self.combine(*must)
        return tantivy.Query.boolean_query(
            [(MUST, q) for q in must or [tantivy.Query.all_query()]]
            + [(MUST_NOT, q) for q in must_not]
        )

    def combine(self, *parts: tantivy.Query | None) -> tantivy.Query:
        kept = [p for p in parts if p is not None]
        if not kept:
            return tantivy.Query.all_query()
        return self._all(kept)

    def boosted(self, base: tantivy.Query, boosts: tuple[Boost, ...]) -> tantivy.Query:
        if not boosts:
            return base
        clauses: list[tuple[Any, tantivy.Query]] = [(MUST, base)]
        for b in boosts:
            target: Filter = b.filter if b.bonus > 0 else Not(b.filter)
            q = self.filter(target)
            if q is not None and b.bonus != 0:
                clauses.append((SHOULD, tantivy.Query.const_score_query(q, abs(b.bonus))))
        return tantivy.Query.boolean_query(clauses)


def _stems(ws: tuple[str, ...]) -> tuple[str | None, ...]:
    return tuple(text_term(w) for w in ws)


def _same(ws: tuple[str, ...]) -> tuple[str | None, ...]:
    return ws


def _load(searcher: tantivy.Searcher, key: Any, addr: tantivy.DocAddress) -> Hit:
    doc = searcher.doc(addr)
    return Hit(
        record_id=str(doc.get_first(ID)),
        source=bytes(doc.get_first(SOURCE) or b"").decode(),
        score=_score(key),
    )


def _score(key: Any) -> float:
    return float(key) if isinstance(key, int | float) else 0.0


# --- sorting ---------------------------------------------------------------------------


def _sort_field(ci: CollectionIndex, key: SortKey) -> str | None:
    numbers = ci.layout.sort_numbers.get(key.field)
    texts = ci.layout.sort_texts.get(key.field)
    if numbers is None or texts is None:
        return None
    flag = f"numeric:{key.field}"
    if flag not in ci.cache:
        probe = ci.searcher.search(tantivy.Query.exists_query(numbers), 1, count=True)
        ci.cache[flag] = total_of(probe) > 0
    return numbers if ci.cache[flag] else texts


def _equal(ci: CollectionIndex, field: str, value: Any) -> tantivy.Query:
    """The records whose sort ``field`` holds ``value`` (None: records without one)."""
    if value is None:
        return tantivy.Query.boolean_query(
            [(MUST, tantivy.Query.all_query()), (MUST_NOT, tantivy.Query.exists_query(field))]
        )
    if isinstance(value, float):
        return tantivy.Query.range_query(
            ci.schema, field, tantivy.FieldType.Float, value, value, True, True
        )
    return tantivy.Query.term_query(ci.schema, field, value)


def _page(
    ci: CollectionIndex, query: tantivy.Query, sort: tuple[SortKey, ...], offset: int, limit: int
) -> tuple[int, Hits]:
    """The total and the records at ``[offset, offset + limit)`` in ``sort`` order."""
    keys = [(k, _sort_field(ci, k)) for k in sort]
    kept = [(k, f) for k, f in keys if k.field == "_relevance" or f is not None]
    return _sorted(ci, query, kept, offset, limit, None)


def _sorted(
    ci: CollectionIndex,
    query: tantivy.Query,
    keys: list[tuple[SortKey, str | None]],
    offset: int,
    limit: int,
    total: int | None,
) -> tuple[int, Hits]:
    """Like ``_page``; ``total`` is the number of matches when already known."""
    count = total is None
    key, field = keys[0] if keys else (None, None)
    if key is None or field is None:
        res = ci.searcher.search(query, limit, count=count, offset=offset)
        return (total_of(res) if total is None else total), list(res.hits)
    order = tantivy.Order.Desc if key.descending else tantivy.Order.Asc
    if len(keys) == 1:
        res = ci.searcher.search(
            query, limit, count=count, order_by_field=field, offset=offset, order=order
        )
        return (total_of(res) if total is None else total), list(res.hits)
    # Everything up to the page's end by this key: runs of equal values are the ties
    # to order by the next keys. Each run's start is known; a run that reaches the end
    # may continue beyond it, so it is complete only when the results are.
    res = ci.searcher.search(query, offset + limit, count=count, order_by_field=field, order=order)
    total = total_of(res) if total is None else total
    head = list(res.hits)
    out: Hits = []
    i = 0
    while i < len(head):
        value = head[i][0]
        j = i
        while j < len(head) and head[j][0] == value:
            j += 1
        lo, hi = max(offset, i), min(offset + limit, j)
        if lo < hi:
            complete = j < len(head) or len(head) == total
            if complete and j - i == 1:
                out.append(head[i])
            else:
                tied = tantivy.Query.boolean_query(
                    [(MUST, query), (MUST, _equal(ci, field, value))]
                )
                run = j - i if complete else None
                out.extend(_sorted(ci, tied, keys[1:], lo - i, hi - lo, run)[1])
        i = j
    return total, out


# --- navigation counts -----------------------------------------------------------------


def _overlapping(ranges: list[tuple[float, float]]) -> bool:
    ordered = sorted(ranges)
    return any(b[0] < a[1] for a, b in itertools.pairwise(ordered))


def _bounds(low: float | None, high: float | None) -> tuple[float, float]:
    return (-math.inf if low is None else low, math.inf if high is None else high)


def _range_spec(field: str, buckets: list[tuple[float | None, float | None]]) -> dict[str, Any]:
    ranges = []
    for low, high in buckets:
        r: dict[str, float] = {}
        if low is not None:
            r["from"] = low
        if high is not None:
            r["to"] = high
        ranges.append(r)
    return {"range": {"field": field, "ranges": ranges}}


def _range_counts(got: dict[str, Any]) -> dict[tuple[float, float], int]:
    counts = {}
    for b in got.get("buckets", []):
        bounds = _bounds(b.get("from"), b.get("to"))
        counts[bounds] = int(b.get("doc_count", 0))
    return counts


def _facets(
    ci: CollectionIndex,
    compiler: QueryCompiler,
    text_q: tantivy.Query | None,
    base: tantivy.Query,
    facets: tuple[FacetRequest, ...],
) -> dict[str, FacetResult]:
    """``base``: the search's query (text within the filter)."""
    out: dict[str, FacetResult] = {}
    groups: list[tuple[tantivy.Query, list[FacetRequest]]] = []
    shared: list[FacetRequest] = []
    for f in facets:
        if f.filter_override is None:
            shared.append(f)
        else:
            q = compiler.where(text_q, f.filter_override)
            groups.append((q, [f]))
    if shared:
        groups.append((base, shared))
    for query, requests in groups:
        spec: dict[str, Any] = {}
        one_by_one: list[tuple[FacetRequest, str]] = []
        for i, f in enumerate(requests):
            if f.kind == "Range":
                field = ci.layout.ranges.get(f.name)
                if field is None or not f.ranges:
                    continue
                # Empty buckets (low == high) count nothing and would upset tantivy.
                real = list(dict.fromkeys(r for r in f.ranges if _bounds(*r)[0] < _bounds(*r)[1]))
                if _overlapping([_bounds(*r) for r in real]):
                    one_by_one.append((f, field))
                elif real:
                    spec[f"f{i}"] = _range_spec(field, real)
                else:
                    out[f.name] = FacetResult(f.name, ranges=[(lo, hi, 0) for lo, hi in f.ranges])
            else:
                field = ci.layout.values.get(f.name)
                if field is None:
                    continue
                spec[f"f{i}"] = {
                    "terms": {
                        "field": field,
                        "size": f.size,
                        "segment_size": max(f.size, TERMS_SEGMENT_SIZE),
                    }
                }
        for f, field in one_by_one:
            fr = FacetResult(name=f.name)
            for low, high in f.ranges:
                bucket = compiler.range(field, low, high, False)
                hits = ci.searcher.search(compiler.combine(query, bucket), 1, count=True)
                fr.ranges.append((low, high, total_of(hits)))
            out[f.name] = fr
        if not spec:
            continue
        result = ci.searcher.aggregate(query, spec)
        for i, f in enumerate(requests):
            got = result.get(f"f{i}")
            if got is None:
                continue
            fr = FacetResult(name=f.name)
            if f.kind == "Range":
                counts = _range_counts(got)
                fr.ranges = [(lo, hi, counts.get(_bounds(lo, hi), 0)) for lo, hi in f.ranges]
            else:
                values = [(str(b["key"]), int(b["doc_count"])) for b in got.get("buckets", [])]
                fr.values = sorted(values, key=lambda v: (-v[1], v[0]))
            out[f.name] = fr
    return out


def run_search(ci: CollectionIndex, plan: SearchPlan) -> SearchResult:
    compiler = QueryCompiler(ci)
    text_q = compiler.text(plan.text)
    base = compiler.where(text_q, plan.filter)
    ranked = compiler.boosted(base, plan.boosts)
    searcher = ci.searcher
    hits: Hits = []
    if plan.pinned_ids:
        # Pinned records come first, in the given order, but only those that match the
        # search; the rest follow in the plan's order, and pages run across both.
        pinned_q = compiler.combine(base, compiler.filter(Ids(plan.pinned_ids)))
        found = searcher.search(pinned_q, len(plan.pinned_ids), count=False)
        by_id = {str(searcher.doc(addr).get_first(ID)): (key, addr) for key, addr in found.hits}
        ordered = [by_id[i] for i in dict.fromkeys(plan.pinned_ids) if i in by_id]
        rest_q = compiler.combine(
            ranked, compiler.filter(Not(Ids(tuple(by_id)))) if by_id else None
        )
        head = ordered[plan.offset : plan.offset + plan.limit]
        rest_offset = max(plan.offset - len(ordered), 0)
        rest_limit = plan.limit - len(head)
        if rest_limit > 0:
            rest_total, rest_hits = _page(ci, rest_q, plan.sort, rest_offset, rest_limit)
        else:
            rest_total, rest_hits = total_of(searcher.search(rest_q, 1, count=True)), []
        total = rest_total + len(ordered)
        hits = head + rest_hits
    else:
        total, hits = _page(ci, ranked, plan.sort, plan.offset, plan.limit)
    facets = _facets(ci, compiler, text_q, base, plan.facets) if plan.facets else {}
    return SearchResult(total=total, hits=[_load(searcher, k, a) for k, a in hits], facets=facets)
