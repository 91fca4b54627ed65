"""Relevance of today's ranking as numbers: every judged query of a judgments file
(bench/judgments/demo.tsv, written by ``python -m bench.judge``) through the search
service, the path the search API takes, and through SAYT's product previews, on the
demo catalog built here with the real engine in a temporary data directory.

Prints NDCG@10 of search and precision@4 of the SAYT previews (the mean and the ten
worst queries of each) and writes JSON to bench/results/. A ranking change shows as a
change of these numbers between two runs. Each build also publishes a merchandising
file (bench/judgments/demo-merchandising.json: synonyms and rules a merchandiser would
add from the worst queries) to a second area and measures the same queries there, so
the figures before and after merchandising come from the same index. Run
``python -m bench.relevance --help``.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.common import console, machine, now_iso, scrub_environment, table, write_result
from bench.judge import JUDGMENTS
from searchgate.catalog.service import parse_settings
from searchgate.config import Settings
from searchgate.demo import demo_settings, generate
from searchgate.merchandising.inputs import parse_document
from searchgate.permissions import Actor
from searchgate.runtime import Runtime, build_runtime
from searchgate.search.request import parse_search_request
from searchgate.search.sayt import SaytRequest

COLLECTION = "default"
PLAIN, MERCHANDISED = "Production", "Merchandised"
MERCHANDISING = Path(__file__).parent / "judgments" / "demo-merchandising.json"
SEARCH_DEPTH = 10
SAYT_PRODUCTS = 4
# A preview counts as relevant from this grade: the kind the shopper typed.
RELEVANT = 2
WORST = 10
BATCH = 5000
CATALOG = re.compile(r"generate\(count=(\d+), seed=(\d+)\)")

Judged = dict[str, dict[str, int]]


# --- the measures ----------------------------------------------------------------------


def dcg(grades: Sequence[int]) -> float:
    """Discounted cumulative gain: gain 2^grade - 1, discounted by log2(position + 1)."""
    return sum((2.0**g - 1) / math.log2(i + 2) for i, g in enumerate(grades))


def ndcg(ranked: Sequence[str], grades: Mapping[str, int], k: int = SEARCH_DEPTH) -> float:
    """NDCG@k of ``ranked`` record ids: their DCG over that of the best possible top k
    of the judged records (unjudged records grade 0). 0 when nothing is judged above 0."""
    ideal = dcg(sorted(grades.values(), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg([grades.get(r, 0) for r in ranked[:k]]) / ideal


def precision(
    shown: Sequence[str],
    grades: Mapping[str, int],
    k: int = SAYT_PRODUCTS,
    relevant: int = RELEVANT,
) -> float:
    """Precision@k: the share of k slots holding a record graded ``relevant`` or more (a
    slot left empty counts as not relevant)."""
    return sum(1 for r in shown[:k] if grades.get(r, 0) >= relevant) / k


# --- the judgments -------------------------------------------------------------------------


@dataclass
class Judgments:
    count: int
    seed: int
    queries: Judged
    sha256: str


def read_judgments(path: Path) -> Judgments:
    """The graded records of each query and the catalog they grade (from the header)."""
    raw = path.read_bytes()
    count = seed = -1
    queries: Judged = {}
    header_seen = False
    for line in raw.decode("utf-8").splitlines():
        if line.startswith("#"):
            found = CATALOG.search(line)
            if found:
                count, seed = int(found.group(1)), int(found.group(2))
            continue
        if not line.strip():
            continue
        if not header_seen:
            header_seen = True
            continue
        query, record_id, grade = line.split("\t")
        queries.setdefault(query, {})[record_id] = int(grade)
    if count < 0:
        raise ValueError(f"{path}: no 'generate(count=N, seed=S)' in the header")
    return Judgments(count, seed, queries, hashlib.sha256(raw).hexdigest())


# --- the run -------------------------------------------------------------------------------


@dataclass
class QueryResult:
    query: str
    ndcg_at_10: float
    sayt_precision_at_4: float
    total: int
    top: list[str]
    previews: list[str]


def build_catalog(data_dir: Path, count: int, seed: int) -> Runtime:
    """The demo catalog written through the catalog service and indexed by the real
    engine, as ``searchgate demo`` does; returns the started runtime."""
    rt = build_runtime(Settings(data_dir=data_dir, database_url=None, key_pepper=None))
    rt.start()
    try:
        rt.services.catalog.put_settings(COLLECTION, parse_settings(demo_settings()))
        records = list(generate(count, seed))
        seq = 0
        for i in range(0, len(records), BATCH):
            seq = rt.services.catalog.write_records(COLLECTION, records[i : i + BATCH]).seq
            rt.indexer.notify()
        if not rt.wait_searchable(seq, 900):
            raise RuntimeError("the catalog did not become searchable in 900 s")
    except BaseException:
        rt.stop()
        raise
    return rt


def publish(rt: Runtime, path: Path) -> None:
    """``path``'s merchandising, published to area ``MERCHANDISED``."""
    actor = Actor.system("bench.relevance")
    document = parse_document(orjson.loads(path.read_bytes()))
    rt.services.areas.create(actor, MERCHANDISED)
    rt.services.merchandising.save_draft(actor, MERCHANDISED, document)
    rt.services.merchandising.publish(actor, MERCHANDISED, note="bench.relevance")


def measure(rt: Runtime, judged: Judged, area: str = PLAIN) -> list[QueryResult]:
    out: list[QueryResult] = []
    for query, grades in judged.items():
        answer = rt.search.search(
            parse_search_request(
                {"collection": COLLECTION, "area": area, "query": query, "pageSize": SEARCH_DEPTH}
            )
        )
        top = [str(r["_id"]) for r in answer["records"]]
        sayt = rt.sayt.search(
            SaytRequest(
                query=query,
                collection=COLLECTION,
                area=area,
                search_items=0,
                navigation_items=0,
                product_items=SAYT_PRODUCTS,
            ),
            False,
        )
        previews = [str(p["_id"]) for p in sayt["result"]["products"]]
        out.append(
            QueryResult(
                query=query,
                ndcg_at_10=round(ndcg(top, grades), 4),
                sayt_precision_at_4=round(precision(previews, grades), 4),
                total=int(answer["totalRecordCount"]),
                top=top,
                previews=previews,
            )
        )
    return out


def means(results: list[QueryResult]) -> tuple[float, float]:
    n = max(len(results), 1)
    return (
        round(sum(r.ndcg_at_10 for r in results) / n, 4),
        round(sum(r.sayt_precision_at_4 for r in results) / n, 4),
    )


def combine(runs: list[list[QueryResult]]) -> list[QueryResult]:
    """Each query's measures averaged over the builds (records of equal score may come in
    another order in another build), with the first build's records."""
    out: list[QueryResult] = []
    for same in zip(*runs, strict=True):
        first = same[0]
        out.append(
            QueryResult(
                query=first.query,
                ndcg_at_10=round(sum(r.ndcg_at_10 for r in same) / len(same), 4),
                sayt_precision_at_4=round(sum(r.sayt_precision_at_4 for r in same) / len(same), 4),
                total=first.total,
                top=first.top,
                previews=first.previews,
            )
        )
    return out


def summary(runs: list[list[QueryResult]]) -> dict[str, Any]:
    results = combine(runs)
    search, sayt = means(results)
    per_run = [means(r) for r in runs]

    def worst(key: str) -> list[dict[str, Any]]:
        ranked = sorted(results, key=lambda r: (getattr(r, key), r.query))[:WORST]
        return [{"query": r.query, key: getattr(r, key), "total": r.total} for r in ranked]

    return {
        "queries": len(results),
        "builds": len(runs),
        "search_ndcg_at_10": search,
        "sayt_precision_at_4": sayt,
        "search_ndcg_at_10_builds": [m[0] for m in per_run],
        "sayt_precision_at_4_builds": [m[1] for m in per_run],
        "search_zero_ndcg": sum(1 for r in results if r.ndcg_at_10 == 0),
        "sayt_zero_precision": sum(1 for r in results if r.sayt_precision_at_4 == 0),
        "worst_search": worst("ndcg_at_10"),
        "worst_sayt": worst("sayt_precision_at_4"),
    }


def show(result: dict[str, Any]) -> None:
    before, after = result["summary"], result.get("merchandised")
    if after is not None:
        console.print(
            table(
                f"Before and after merchandising ({result['merchandising']['path']})",
                ["measure", "before", "after", "change", "queries at 0 before", "after"],
                [
                    (
                        label,
                        f"{before[key]:.4f}",
                        f"{after[key]:.4f}",
                        f"{after[key] - before[key]:+.4f}",
                        before[zero],
                        after[zero],
                    )
                    for label, key, zero in (
                        ("search NDCG@10", "search_ndcg_at_10", "search_zero_ndcg"),
                        ("SAYT precision@4", "sayt_precision_at_4", "sayt_zero_precision"),
                    )
                ],
            )
        )
    s = before
    console.print(
        table(
            f"Relevance on {result['catalog']['count']:,} demo products "
            f"(seed {result['catalog']['seed']}), {s['queries']} judged queries, "
            f"{s['builds']} build(s)",
            ["measure", "mean", "each build", "queries at 0"],
            [
                (
                    "search NDCG@10",
                    f"{s['search_ndcg_at_10']:.4f}",
                    " ".join(f"{v:.4f}" for v in s["search_ndcg_at_10_builds"]),
                    s["search_zero_ndcg"],
                ),
                (
                    "SAYT precision@4",
                    f"{s['sayt_precision_at_4']:.4f}",
                    " ".join(f"{v:.4f}" for v in s["sayt_precision_at_4_builds"]),
                    s["sayt_zero_precision"],
                ),
            ],
        )
    )
    console.print(
        table(
            "Worst search queries",
            ["query", "NDCG@10", "records found"],
            [(w["query"], w["ndcg_at_10"], w["total"]) for w in s["worst_search"]],
        )
    )
    console.print(
        table(
            "Worst SAYT previews",
            ["query", "precision@4", "records found"],
            [(w["query"], w["sayt_precision_at_4"], w["total"]) for w in s["worst_sayt"]],
        )
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="NDCG@10 of search and precision@4 of SAYT previews for the judged "
        "queries, on the demo catalog built here with the real engine; prints tables and "
        "writes JSON to bench/results/.",
    )
    p.add_argument("--judgments", type=Path, default=JUDGMENTS, help="the judgments file")
    p.add_argument("--count", type=int, help="catalog size (default: the judgments file's)")
    p.add_argument("--seed", type=int, help="catalog seed (default: the judgments file's)")
    p.add_argument(
        "--runs",
        type=int,
        default=3,
        help="catalog builds measured (default 3): records of equal score may come in another "
        "order in another build, so a change is read against the builds' spread",
    )
    p.add_argument(
        "--merchandising",
        type=Path,
        default=MERCHANDISING,
        help="a merchandising file (searchgate merch export) measured as 'after'",
    )
    p.add_argument("--data-root", type=Path, help="where the data directory goes (default: tmp)")
    p.add_argument("--out", type=Path, help="JSON result path (default bench/results/)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scrub_environment()
    if not args.judgments.is_file():
        console.print(f"error: no judgments file at {args.judgments}", style="red")
        return 2
    judgments = read_judgments(args.judgments)
    count = judgments.count if args.count is None else args.count
    seed = judgments.seed if args.seed is None else args.seed
    if (count, seed) != (judgments.count, judgments.seed):
        # Record ids name other products in another catalog: the grades would be wrong.
        console.print(
            f"error: {args.judgments} grades generate(count={judgments.count}, "
            f"seed={judgments.seed}); write judgments for count {count}, seed {seed} with "
            f"python -m bench.judge --count {count} --seed {seed} --out FILE",
            style="red",
            markup=False,
        )
        return 2
    if args.runs < 1:
        console.print("error: --runs is 1 or more", style="red")
        return 2
    root = Path(tempfile.mkdtemp(prefix="searchgate-relevance-", dir=args.data_root))
    runs: list[list[QueryResult]] = []
    merchandised: list[list[QueryResult]] = []
    built: list[float] = []
    try:
        for n in range(args.runs):
            console.print(f"build {n + 1}: the demo catalog, {count:,} products, seed {seed} ...")
            t0 = time.monotonic()
            rt = build_catalog(root / f"data-{n}", count, seed)
            built.append(round(time.monotonic() - t0, 1))
            try:
                console.print(f"build {n + 1}: {len(judgments.queries)} judged queries ...")
                runs.append(measure(rt, judgments.queries))
                publish(rt, args.merchandising)
                merchandised.append(measure(rt, judgments.queries, MERCHANDISED))
            finally:
                rt.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result: dict[str, Any] = {
        "at": now_iso(),
        "machine": machine(),
        "catalog": {"count": count, "seed": seed, "build_seconds": built},
        "judgments": {"path": str(args.judgments), "sha256": judgments.sha256},
        "measures": {
            "search": f"NDCG@{SEARCH_DEPTH}, gain 2^grade - 1",
            "sayt": f"precision@{SAYT_PRODUCTS} of productItems, relevant from grade {RELEVANT}",
        },
        "summary": summary(runs),
        "merchandising": {"path": str(args.merchandising)},
        "merchandised": summary(merchandised),
        "per_query": [asdict(r) for r in combine(runs)],
        "per_query_merchandised": [asdict(r) for r in combine(merchandised)],
    }
    show(result)
    path = write_result("relevance", result, args.out)
    console.print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
