"""The real storefront query mix: loading, popularity-weighted sampling, keystroke
replay for SAYT, and the request bodies the benchmarks send.

Run ``python -m bench.queries --help`` to print a summary of the mix.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.common import REPO, console, table, write_result

DEFAULT_PATH = REPO.parent / "shared" / "data" / "ecommerce-queries.tsv"
SEED = 7
COLLECTION = "default"
# Most queries of the file have popularity 0 (seen, but rarely): with pure weights they
# would never be drawn, so every weight gets this much added and the long tail stays in.
SMOOTHING = 1
# The navigations of the demo settings a shopper refines by: first a multi-select one
# (its counts then need their own aggregation), then a single-select one.
MULTI_NAVS = ("colour", "brand")
SINGLE_NAVS = ("category2", "category3", "category1", "inStock")
FALLBACK_COLOURS = ("Black", "White", "Silver", "Blue")


class QueryFileMissing(Exception):
    pass


@dataclass(frozen=True)
class Query:
    text: str
    popularity: int


def load(path: Path) -> list[Query]:
    if not path.is_file():
        raise QueryFileMissing(
            f"query file {path} not found: it is the real query mix "
            "(tab-separated query, popularity, words); pass another with --queries"
        )
    out = []
    with path.open(encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        if header[:2] != ["query", "popularity"]:
            raise ValueError(f"{path}: expected a header 'query<TAB>popularity...'")
        for n, line in enumerate(fh, 2):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2 or not parts[0].strip():
                continue
            try:
                out.append(Query(parts[0].strip(), int(parts[1])))
            except ValueError:
                raise ValueError(f"{path} line {n}: popularity is not an integer") from None
    if not out:
        raise ValueError(f"{path}: no queries")
    return out


def load_or_exit(path: Path) -> list[Query]:
    """The scripts cannot run without the query mix: say so and exit with status 2."""
    try:
        return load(path)
    except (QueryFileMissing, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def sample(queries: list[Query], k: int, seed: int = SEED, smoothing: int = SMOOTHING) -> list[str]:
    rng = random.Random(seed)
    weights = [q.popularity + smoothing for q in queries]
    return [q.text for q in rng.choices(queries, weights=weights, k=k)]


def keystrokes(text: str) -> list[str]:
    """What a SAYT box sends while ``text`` is typed: one request per keystroke."""
    return [text[:i] for i in range(1, len(text) + 1) if text[:i].strip()]


def sayt_sequence(queries: list[Query], k: int, seed: int = SEED) -> list[str]:
    return [prefix for q in sample(queries, k, seed + 1) for prefix in keystrokes(q)]


def sayt_path(prefix: str, product_items: int = 0) -> str:
    params = {
        "query": prefix,
        "collection": COLLECTION,
        "searchItems": 5,
        "navigationItems": 5,
        "productItems": product_items,
    }
    return "/api/v1/sayt/search?" + urlencode(params)


def search_body(query: str, refinements: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "collection": COLLECTION,
        "query": query,
        "pageSize": 10,
        "refinements": [
            {"navigationName": name, "type": "Value", "value": value} for name, value in refinements
        ],
    }


def choose_refinements(
    navigations: list[dict[str, Any]], rng: random.Random
) -> list[tuple[str, str]]:
    """Two refinements a shopper could click in the navigations shown for a query: one
    multi-select and one single-select value, picked in proportion to their counts.
    Queries that show nothing to click get a colour and "in stock"."""
    offered = {
        n["name"]: [(str(r["value"]), int(r["count"])) for r in n["refinements"] if "value" in r]
        for n in navigations
    }
    picked: list[tuple[str, str]] = []
    for group in (MULTI_NAVS, SINGLE_NAVS):
        for name in group:
            values = offered.get(name)
            if values:
                choice = rng.choices(values, weights=[c for _v, c in values])[0][0]
                picked.append((name, choice))
                break
    if len(picked) < 2:
        picked = [("colour", rng.choice(FALLBACK_COLOURS)), ("inStock", "true")]
    return picked


def summary(queries: list[Query], k: int, sayt_k: int, seed: int) -> dict[str, Any]:
    drawn = sample(queries, k, seed)
    counts = Counter(drawn)
    sayt = sayt_sequence(queries, sayt_k, seed)
    return {
        "queries_in_file": len(queries),
        "with_popularity_0": sum(1 for q in queries if q.popularity == 0),
        "search_sample": k,
        "distinct_in_sample": len(counts),
        "top": counts.most_common(10),
        "sayt_queries": sayt_k,
        "sayt_keystrokes": len(sayt),
        "mean_words": round(sum(len(q.split()) for q in drawn) / max(len(drawn), 1), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Summarise the popularity-weighted query mix the benchmarks replay."
    )
    parser.add_argument("--queries", type=Path, default=DEFAULT_PATH, help="the TSV query file")
    parser.add_argument("--sample", type=int, default=2000, help="search queries to draw")
    parser.add_argument("--sayt-sample", type=int, default=400, help="SAYT queries to type")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--quick", action="store_true", help="a small sample")
    args = parser.parse_args(argv)
    queries = load_or_exit(args.queries)
    k, sayt_k = (200, 40) if args.quick else (args.sample, args.sayt_sample)
    info = summary(queries, k, sayt_k, args.seed)
    console.print(
        table(
            "Query mix",
            ["", "value"],
            [("file", str(args.queries))]
            + [(name, value) for name, value in info.items() if name != "top"],
        )
    )
    console.print(
        table(
            "Most drawn queries",
            ["query", "times", "share %"],
            [(q, n, round(100 * n / k, 1)) for q, n in info["top"]],
        )
    )
    path = write_result("queries", {"path": str(args.queries), "seed": args.seed, **info})
    console.print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
