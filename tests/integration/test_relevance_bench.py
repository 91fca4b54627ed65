"""The relevance benchmark end to end, from a copy of bench/ with nothing beside it:
judgments written by the rule for a small demo catalog, then the benchmark building
that catalog with the real engine and measuring the judged queries."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import orjson
from bench.judge import COUNT, SEED

REPO = Path(__file__).resolve().parents[2]


def _run(copy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=copy, capture_output=True, text=True, timeout=300
    )


def test_the_relevance_benchmark_measures_the_judged_queries_of_a_small_catalog(
    tmp_path: Path,
) -> None:
    copy = tmp_path / "clone"
    shutil.copytree(
        REPO / "bench", copy / "bench", ignore=shutil.ignore_patterns("results", "judgments")
    )
    mix = tmp_path / "mix.tsv"
    mix.write_text(
        "query\tpopularity\tnb_words\n"
        "macbook\t731\t1\nsamsung tv\t80\t2\ncooktops\t60\t1\nhello kitty\t9\t2\n"
        "television\t8\t1\ntelevisions\t2\t1\n"
    )
    judgments = copy / "bench" / "judgments" / "small.tsv"
    out = _run(
        copy, "bench.judge", "--queries", str(mix), "--count", "400", "--seed", "3",
        "--out", str(judgments), "--min-queries", "1",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "4 queries" in out.stdout
    text = judgments.read_text()
    assert "generate(count=400, seed=3)" in text
    rows = [ln.split("\t") for ln in text.splitlines() if ln and not ln.startswith("#")][1:]
    # Kept in the file's order, once by their words; "hello kitty" names nothing sold.
    assert list(dict.fromkeys(r[0] for r in rows)) == [
        "macbook",
        "samsung tv",
        "cooktops",
        "television",
    ]
    assert {r[2] for r in rows} <= {"1", "2", "3"}

    result = tmp_path / "result.json"
    merchandising = tmp_path / "merchandising.json"
    merchandising.write_text('{"synonyms": [{"name": "tv", "terms": ["tv", "television"]}]}')
    out = _run(
        copy, "bench.relevance", "--judgments", str(judgments), "--runs", "2",
        "--merchandising", str(merchandising), "--out", str(result),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "search NDCG@10" in out.stdout and "SAYT precision@4" in out.stdout
    data = orjson.loads(result.read_bytes())
    assert (data["catalog"]["count"], data["catalog"]["seed"]) == (400, 3)
    assert len(data["catalog"]["build_seconds"]) == 2
    per_query = data["per_query"]
    assert [q["query"] for q in per_query] == ["macbook", "samsung tv", "cooktops", "television"]
    known = {r[1] for r in rows}
    for q in per_query:
        assert 0 <= q["ndcg_at_10"] <= 1 and 0 <= q["sayt_precision_at_4"] <= 1
        assert len(q["top"]) <= 10 and len(q["previews"]) <= 4
        assert all(rid.startswith("SKU") for rid in q["top"] + q["previews"])
    summary = data["summary"]
    assert summary["queries"] == 4 and summary["builds"] == 2
    assert len(summary["search_ndcg_at_10_builds"]) == 2
    mean = sum(q["ndcg_at_10"] for q in per_query) / 4
    assert abs(summary["search_ndcg_at_10"] - mean) < 1e-3
    # "macbook" names one kind by its words: today's search finds MacBooks first.
    macbook = per_query[0]
    assert macbook["top"] and set(macbook["top"]) <= known
    assert macbook["ndcg_at_10"] > 0
    # The same queries after merchandising, on the same index: the catalog says "TV",
    # the shopper "television"; the synonym finds them.
    assert "Before and after merchandising" in out.stdout
    after = {q["query"]: q for q in data["per_query_merchandised"]}
    assert per_query[3]["total"] == 0 and per_query[3]["ndcg_at_10"] == 0
    assert after["television"]["total"] > 0 and after["television"]["ndcg_at_10"] > 0
    assert after["macbook"]["top"] == macbook["top"]
    assert data["merchandised"]["search_ndcg_at_10"] > summary["search_ndcg_at_10"]

    # Judgments of another catalog would grade other products: refused.
    out = _run(copy, "bench.relevance", "--judgments", str(judgments), "--count", "500")
    assert out.returncode == 2
    assert "generate(count=400, seed=3)" in out.stdout


def test_the_judgments_in_the_tree_are_what_the_rule_gives(tmp_path: Path) -> None:
    assert (COUNT, SEED) == (10_000, 42)
    lines = (REPO / "bench" / "judgments" / "demo.tsv").read_text().splitlines()
    rows = [ln.split("\t") for ln in lines if ln and not ln.startswith("#")]
    assert rows[0] == ["query", "record_id", "grade"]
    kept = list(dict.fromkeys(r[0] for r in rows[1:]))
    assert len(kept) >= 100
    # The storefront queries the file was drawn from are not part of the repository:
    # the rule, given the queries the file keeps, must keep each and grade as written.
    mix = tmp_path / "kept.tsv"
    mix.write_text("query\n" + "".join(f"{q}\n" for q in kept))
    out = _run(REPO, "bench.judge", "--queries", str(mix), "--check")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "matches the rule" in out.stdout
