"""The merchandising benchmark's document: 50 rules and 200 synonym sets made of the
catalog's and the query mix's words, which fire on the measured searches."""

from __future__ import annotations

from datetime import UTC, datetime

from bench import queries
from bench.catalog import products
from bench.merchandising import RULES, SYNONYM_SETS, merchandising

from searchgate.engines.tantivy.layout import words
from searchgate.merchandising.apply import CompiledMerchandising, SearchContext


def test_the_benchmarks_merchandising_is_the_size_asked_and_fires() -> None:
    mix = queries.demo_mix()
    doc = merchandising(products(3000), mix, queries.SEED)
    assert (len(doc.rules), len(doc.synonyms)) == (RULES, SYNONYM_SETS)
    assert merchandising(products(3000), mix, queries.SEED) == doc
    compiled = CompiledMerchandising(doc, 1)
    drawn = queries.sample(mix, 500, queries.SEED)
    fired = synonyms = 0
    for q in drawn:
        ctx = SearchContext("default", words(q), [], {}, None, False, False, datetime.now(UTC))
        out = compiled.outcome(ctx, explain=False)
        fired += bool(out.fired)
        synonyms += bool(out.synonyms)
    # Rules for the head of the traffic, synonyms on frequent words: most searches meet
    # some, not all (a run where nothing fires would measure nothing).
    assert 0.2 * len(drawn) < fired < len(drawn)
    assert 0.2 * len(drawn) < synonyms <= len(drawn)
