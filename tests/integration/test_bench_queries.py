"""The benchmarks' default query mix: made in the repository from the demo catalog's
words, the same for the same seed, and skewed like a storefront's."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from bench import queries

from searchgate.demo import generate
from searchgate.engines.tantivy.layout import words

REPO = Path(__file__).resolve().parents[2]


def test_the_demo_mix_is_the_same_for_the_same_seed() -> None:
    assert queries.demo_mix(7) == queries.demo_mix(7)
    assert queries.demo_mix(8) != queries.demo_mix(7)
    assert queries.sample(queries.demo_mix(7), 300, 7) == queries.sample(
        queries.demo_mix(7), 300, 7
    )


def test_the_demo_mix_is_made_of_the_catalogs_words() -> None:
    mix = queries.demo_mix()
    texts = [q.text for q in mix]
    assert len(texts) == queries.DEMO_MIX_SIZE == len(set(texts))
    assert all(t.strip() == t and t for t in texts)
    vocabulary = {w for rec in generate(5000) for v in rec.values() for w in words(str(v))}
    known = [t for t in texts if set(words(t)) <= vocabulary]
    # The rest: the demo's typical searches for things it does not sell, and typos.
    assert len(known) >= 0.9 * len(texts)


def test_the_demo_mix_is_skewed_like_a_storefronts() -> None:
    mix = queries.demo_mix()
    popularity = [q.popularity for q in mix]
    assert popularity == sorted(popularity, reverse=True)
    drawn = Counter(queries.sample(mix, 2000))
    top = drawn.most_common()
    # A head: the most popular query alone is a tenth of the searches or more, and the
    # ten most popular are over a third ...
    assert top[0][1] >= 200
    assert sum(n for _q, n in top[:10]) >= 700
    # ... and a long tail: hundreds of queries drawn once or twice.
    assert len(drawn) >= 400
    assert sum(1 for _q, n in top if n <= 2) >= 300
    assert sum(1 for q in mix if q.popularity == 0) >= 300


def test_a_named_query_file_is_used_and_a_missing_one_ends_the_script(tmp_path: Path) -> None:
    tsv = tmp_path / "mix.tsv"
    tsv.write_text("query\tpopularity\tnb_words\ncooktop\t12\t1\nsd card\t0\t2\n")
    assert queries.mix_or_exit(tsv) == [queries.Query("cooktop", 12), queries.Query("sd card", 0)]
    assert queries.mix_or_exit(None) == queries.demo_mix()
    with pytest.raises(SystemExit) as exit:
        queries.mix_or_exit(tmp_path / "missing.tsv")
    assert exit.value.code == 2


def test_the_benchmarks_run_from_a_copy_with_nothing_beside_it(tmp_path: Path) -> None:
    copy = tmp_path / "clone"
    shutil.copytree(REPO / "bench", copy / "bench", ignore=shutil.ignore_patterns("results"))
    for args in (["bench.search_bench", "--help"], ["bench.auth_bench", "--help"]):
        out = subprocess.run(
            [sys.executable, "-m", *args], cwd=copy, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        assert "--queries" in out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "bench.queries", "--quick"],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "demo mix (seed 7)" in out.stdout and "macbook" in out.stdout
    assert list((copy / "bench" / "results").glob("queries-*.json"))
