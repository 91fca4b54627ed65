"""Compiling the engine-neutral plan into tantivy queries, and running it."""

from __future__ import annotations

from typing import Any

import orjson
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
from searchgate.engines.tantivy.layout import ID, PREFIX, PREFIX_MAX, SOURCE
from searchgate.engines.tantivy.store import CollectionIndex

MUST = tantivy.Occur.Must
SHOULD = tantivy.Occur.Should
MUST_NOT = tantivy.Occur.MustNot
# Ties on the first sort key are fetched in full to sort exactly by the next keys;
# beyond this many ties the order among them follows the index.
MAX_SORT_TIES = 10_000


def total_of(result: tantivy.SearchResult) -> int:
    # The bindings' type stubs omit ``count``, which ``search(count=True)`` fills.
    return int(result.count)  # type: ignore[attr-defined]


class QueryCompiler:
    def __init__(self, ci: CollectionIndex) -> None:
        self.ci = ci
        self.schema = ci.schema
        self.layout = ci.layout

    def text(self, text: TextQuery | None) -> tantivy.Query | None:
        if text is None or not text.words:
            return None
        if text.every_word_prefix:
            return self._all(
                [tantivy.Query.term_query(self.schema, PREFIX, w[:PREFIX_MAX]) for w in text.words]
            )
        full = text.words[:-1] if text.prefix_last else text.words
        parts: list[tantivy.Query] = []
        if full and self.layout.searchable:
            fields = [f for f, _w in self.layout.searchable.values()]
            boosts = {f: w for f, w in self.layout.searchable.values()}
            parts.append(
                self.ci.index.parse_query(
                    " ".join(full), fields, boosts, conjunction_by_default=True
                )
            )
        elif full:
            return tantivy.Query.empty_query()
        if text.prefix_last:
            parts.append(tantivy.Query.term_query(self.schema, PREFIX, text.words[-1][:PREFIX_MAX]))
        return self._all(parts)

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
            if f.low is None and f.high is None:
                return tantivy.Query.exists_query(field)
            return tantivy.Query.range_query(
                self.schema,
                field,
                tantivy.FieldType.Float,
                f.low,
                f.high,
                True,
                True if f.high is None else f.high_inclusive,
            )
        if isinstance(f, Ids):
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


def _load(searcher: tantivy.Searcher, key: Any, addr: tantivy.DocAddress) -> Hit:
    doc = searcher.doc(addr)
    return Hit(
        record_id=str(doc.get_first(ID)),
        source=bytes(doc.get_first(SOURCE) or b"").decode(),
        score=_score(key),
    )


def _score(key: Any) -> float:
    return float(key) if isinstance(key, int | float) else 0.0


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


def _page(
    ci: CollectionIndex, query: tantivy.Query, sort: tuple[SortKey, ...], offset: int, limit: int
) -> tuple[int, list[tuple[Any, tantivy.DocAddress]]]:
    searcher = ci.searcher
    keys = [k for k in sort if k.field != "_relevance"]
    if not keys or sort[0].field == "_relevance":
        res = searcher.search(query, limit, count=True, offset=offset)
        return total_of(res), list(res.hits)
    first = keys[0]
    field = _sort_field(ci, first)
    if field is None:
        res = searcher.search(query, limit, count=True, offset=offset)
        return total_of(res), list(res.hits)
    order = tantivy.Order.Desc if first.descending else tantivy.Order.Asc
    if len(keys) == 1:
        res = searcher.search(
            query, limit, count=True, order_by_field=field, offset=offset, order=order
        )
        return total_of(res), list(res.hits)
    # Several keys: the first ``offset + limit`` by the first key, plus every tie of the
    # last one, hold the exact page; they are then sorted by all keys.
    res = searcher.search(query, offset + limit, count=True, order_by_field=field, order=order)
    hits = list(res.hits)
    if hits and hits[-1][0] is not None:
        boundary = hits[-1][0]
        seen = {(a.segment_ord, a.doc) for _k, a in hits}
        if isinstance(boundary, float):
            tie_q = tantivy.Query.range_query(
                ci.schema, field, tantivy.FieldType.Float, boundary, boundary, True, True
            )
        else:
            tie_q = tantivy.Query.term_query(ci.schema, field, boundary)
        ties = searcher.search(
            tantivy.Query.boolean_query([(MUST, query), (MUST, tie_q)]), MAX_SORT_TIES
        )
        hits.extend((boundary, a) for _s, a in ties.hits if (a.segment_ord, a.doc) not in seen)
    decorated = []
    for key, addr in hits:
        rec = orjson.loads(bytes(searcher.doc(addr).get_first(SOURCE) or b"").decode())
        decorated.append((_sort_tuple(rec, keys), key, addr))
    decorated.sort(key=lambda t: t[0])
    return total_of(res), [(k, a) for _t, k, a in decorated[offset : offset + limit]]


class _Desc:
    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: _Desc) -> bool:
        return bool(other.v < self.v)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.v == other.v

    def __hash__(self) -> int:
        return hash(self.v)


def _sort_tuple(rec: dict[str, Any], keys: list[SortKey]) -> tuple[Any, ...]:
    out: list[Any] = []
    for k in keys:
        v = rec.get(k.field)
        if isinstance(v, list):
            v = v[0] if v else None
        missing = v is None or isinstance(v, dict)
        if isinstance(v, bool):
            v = int(v)
        norm: tuple[int, Any] = (0, v) if isinstance(v, int | float) else (1, str(v).lower())
        # Records without the field come last in either direction.
        out.append((1, 0) if missing else (0, _Desc(norm) if k.descending else norm))
    return tuple(out)


def _facets(
    ci: CollectionIndex,
    compiler: QueryCompiler,
    text_q: tantivy.Query | None,
    base_filter: tantivy.Query | None,
    facets: tuple[FacetRequest, ...],
) -> dict[str, FacetResult]:
    out: dict[str, FacetResult] = {}
    groups: dict[int, tuple[tantivy.Query, list[FacetRequest]]] = {}
    shared: list[FacetRequest] = []
    for f in facets:
        if f.filter_override is None:
            shared.append(f)
        else:
            q = compiler.combine(text_q, compiler.filter(f.filter_override))
            groups[len(groups)] = (q, [f])
    if shared:
        groups[-1] = (compiler.combine(text_q, base_filter), shared)
    for query, requests in groups.values():
        spec: dict[str, Any] = {}
        for i, f in enumerate(requests):
            if f.kind == "Range":
                field = ci.layout.ranges.get(f.name)
                if field is None or not f.ranges:
                    continue
                ranges = []
                for low, high in f.ranges:
                    r: dict[str, float] = {}
                    if low is not None:
                        r["from"] = low
                    if high is not None:
                        r["to"] = high
                    ranges.append(r)
                spec[f"f{i}"] = {"range": {"field": field, "ranges": ranges}}
            else:
                field = ci.layout.values.get(f.name)
                if field is None:
                    continue
                spec[f"f{i}"] = {"terms": {"field": field, "size": f.size}}
        if not spec:
            continue
        result = ci.searcher.aggregate(query, spec)
        for i, f in enumerate(requests):
            got = result.get(f"f{i}")
            if got is None:
                continue
            fr = FacetResult(name=f.name)
            if f.kind == "Range":
                counts = [int(b.get("doc_count", 0)) for b in got.get("buckets", [])]
                for (low, high), c in zip(f.ranges, counts, strict=False):
                    fr.ranges.append((low, high, c))
            else:
                fr.values = [(str(b["key"]), int(b["doc_count"])) for b in got.get("buckets", [])]
            out[f.name] = fr
    return out


def run_search(ci: CollectionIndex, plan: SearchPlan) -> SearchResult:
    compiler = QueryCompiler(ci)
    text_q = compiler.text(plan.text)
    filter_q = compiler.filter(plan.filter)
    base = compiler.combine(text_q, filter_q)
    ranked = compiler.boosted(base, plan.boosts)
    searcher = ci.searcher
    hits: list[tuple[Any, tantivy.DocAddress]] = []
    if plan.pinned_ids:
        pinned_q = compiler.combine(base, compiler.filter(Ids(plan.pinned_ids)))
        found = searcher.search(pinned_q, len(plan.pinned_ids))
        by_id = {str(searcher.doc(addr).get_first(ID)): (key, addr) for key, addr in found.hits}
        ordered = [by_id[i] for i in dict.fromkeys(plan.pinned_ids) if i in by_id]
        rest_q = compiler.combine(
            ranked, compiler.filter(Not(Ids(tuple(by_id)))) if by_id else None
        )
        head = ordered[plan.offset : plan.offset + plan.limit]
        rest_offset = max(plan.offset - len(ordered), 0)
        rest_limit = plan.limit - len(head)
        rest_total = 0
        rest_hits: list[tuple[Any, tantivy.DocAddress]] = []
        if rest_limit > 0:
            rest_total, rest_hits = _page(ci, rest_q, plan.sort, rest_offset, rest_limit)
        else:
            rest_total = total_of(searcher.search(rest_q, 1, count=True))
        total = rest_total + len(ordered)
        hits = head + rest_hits
    else:
        total, hits = _page(ci, ranked, plan.sort, plan.offset, plan.limit)
    facets = _facets(ci, compiler, text_q, filter_q, plan.facets) if plan.facets else {}
    return SearchResult(total=total, hits=[_load(searcher, k, a) for k, a in hits], facets=facets)
