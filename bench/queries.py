"""The query mix the benchmarks replay: popularity-weighted sampling, keystroke replay
for SAYT, and the request bodies the benchmarks send.

By default the mix is made here from the demo catalog's own words (``demo_mix``): the
repository needs nothing from outside to run its benchmarks. A real storefront's mix
(a TSV file of query, popularity and word count; see docs/performance.md for where the
one the published figures used comes from) is replayed instead when ``--queries PATH``
names it.

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

from bench.common import console, table, write_result
from searchgate.demo import COLOURS, DEMO_QUERIES, FEATURES, SIZES, TAXONOMY, line_brand

SEED = 7
# The demo mix: how many distinct queries, and how steeply popularity falls with rank
# (popularity of the query at rank r is DEMO_TOP / r ** DEMO_SKEW, rounded down, so
# past rank ~1,000 it is 0 and only SMOOTHING keeps the tail drawable, as in a real
# storefront's mix).
DEMO_MIX_SIZE = 1500
DEMO_TOP = 1200
DEMO_SKEW = 1.05
# Share of demo queries typed with one letter missing (autocorrection's work).
DEMO_TYPOS = 0.05
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
            f"query file {path} not found (expected a tab-separated query mix: query, "
            "popularity, words); without --queries the demo mix is replayed"
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
    """A named query file that cannot be read ends the script: say so, exit status 2."""
    try:
        return load(path)
    except (QueryFileMissing, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def mix_or_exit(path: Path | None, seed: int = SEED) -> list[Query]:
    """The file's mix when ``path`` names one, else the demo mix."""
    return demo_mix(seed) if path is None else load_or_exit(path)


def describe(path: Path | None, seed: int = SEED) -> str:
    return str(path) if path is not None else f"demo mix (seed {seed})"


def _candidates() -> list[str]:
    """Searches a shopper of the demo catalog could make, in its own words: brands,
    categories, product kinds, and kinds with a brand that makes them, a colour, a
    feature or a size."""
    out: list[str] = []
    for dept, categories in TAXONOMY.items():
        out.append(dept)
        for category, (kinds, brands, _prices) in categories.items():
            out.append(category)
            out.extend(brands)
            for kind in kinds:
                out.append(kind)
                only = line_brand(kind)
                out.extend(f"{b} {kind}" for b in ([only] if only else brands))
                out.extend(f"{kind} {colour}" for colour in COLOURS[:4])
                out.extend(f"{feature} {kind}" for feature in FEATURES[:6])
                out.extend(f"{size} {kind}" for size in SIZES.get(category, []))
    return [q.lower() for q in out]


def _typo(text: str, rng: random.Random) -> str:
    letters = [i for i, c in enumerate(text) if c.isalpha()]
    if len(letters) < 5:
        return text
    i = rng.choice(letters[1:])
    return text[:i] + text[i + 1 :]


def demo_mix(seed: int = SEED, size: int = DEMO_MIX_SIZE) -> list[Query]:
    """A storefront-like mix made from the demo catalog's vocabulary, the same for the
    same seed: the demo's typical searches lead, by how often they were made; the rest
    follow in an order drawn from ``seed``, popularity falling with rank."""
    rng = random.Random(seed)
    head = sorted(DEMO_QUERIES, key=lambda q: (-DEMO_QUERIES[q], q))
    tail = sorted(set(_candidates()) - set(head))
    rng.shuffle(tail)
    texts: dict[str, None] = dict.fromkeys(head)
    for text in tail:
        if len(texts) >= size:
            break
        texts.setdefault(_typo(text, rng) if rng.random() < DEMO_TYPOS else text, None)
    return [Query(text, int(DEMO_TOP / rank**DEMO_SKEW)) for rank, text in enumerate(texts, 1)]


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
        "queries_in_mix": len(queries),
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
    parser.add_argument(
        "--queries", type=Path, help="a TSV query file to replay (default: the demo mix)"
    )
    parser.add_argument("--sample", type=int, default=2000, help="search queries to draw")
    parser.add_argument("--sayt-sample", type=int, default=400, help="SAYT queries to type")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--quick", action="store_true", help="a small sample")
    args = parser.parse_args(argv)
    queries = mix_or_exit(args.queries, args.seed)
    k, sayt_k = (200, 40) if args.quick else (args.sample, args.sayt_sample)
    info = summary(queries, k, sayt_k, args.seed)
    console.print(
        table(
            "Query mix",
            ["", "value"],
            [("mix", describe(args.queries, args.seed))]
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
    path = write_result(
        "queries", {"mix": describe(args.queries, args.seed), "seed": args.seed, **info}
    )
    console.print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
