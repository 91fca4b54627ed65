"""Writes the relevance judgments of the demo catalog (bench/judgments/demo.tsv) from a
written rule that reads each record's fields, never the search engine's ranking, so
the grades are reproducible and can be reviewed line by line.

Run ``python -m bench.judge --help``; ``--check`` fails when the file in the tree is
not what the rule gives (after a change to the rule, the catalog or the query list).
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import REPO
from searchgate.demo import generate

JUDGMENTS = REPO / "bench" / "judgments" / "demo.tsv"
QUERIES = REPO.parent / "shared" / "data" / "ecommerce-queries.tsv"
COUNT = 10_000
SEED = 42
MIN_QUERIES = 100

# Query words a shopper uses for what the catalog names otherwise.
ALIASES = {
    "television": "tv",
    "fridge": "refrigerator",
    "notebook": "laptop",
    "cell": "phone",
    "cellphone": "phone",
    "mobile": "phone",
    "telephone": "phone",
}
# Written with a hyphen in the catalog, as one word by shoppers.
JOINED = {"wi-fi": "wifi"}
STOP_WORDS = frozenset({"a", "and", "for", "in", "of", "the", "to", "with"})
FEATURES = re.compile(r" brings (.+?) and (.+?) to your home\.")
SIZE = re.compile(r"Available in (.+?)\. ")

RULE = """\
# Relevance judgments of the demo catalog: generate(count={count}, seed={seed}) of
# searchgate.demo, the demo's default catalog. Written by `python -m bench.judge`
# from the rule below; do not edit by hand. Columns: query, record id, grade (0-3).
# Records not listed for a query are graded 0. The queries are those of
# ecommerce-queries.tsv that fit the catalog, in its order (most popular first), each
# once by its words.
#
# The rule (it reads the records' fields, never a search result):
{words}
# - A record's kind words: its category3 and category2. Its brand words: its brand.
#   Its attribute words: its colour and the two features and the size its
#   description states.
# - A query word is a brand word when some record's brand has it, else a kind word
#   when some record's kind words have it, else an attribute word when some record's
#   attribute words have it. A query is kept when every word is one of these, it
#   has a kind or brand word, and some record grades 2 or more.
# - Grade 3: every kind word of the query is the record's kind or attribute word, at
#   least one is its kind word (when the query has kind words), and every other
#   query word is the record's brand, kind or attribute word: the kind and the
#   brand or attributes asked for all match.
# - Grade 2: the query has kind words, each is the record's kind or attribute word,
#   and at least one is its kind word: the kind matches, not all the rest.
# - Grade 1: the record's category2 is that of a record graded 2 or 3 for the query,
#   or a kind word of the query is a word of its category1 (the department): a
#   related kind.
# - Grade 0: everything else (a query with no kind word grades only 3 or 0).
"""


def _words_rule() -> str:
    text = (
        "Words: lower case, runs of letters and digits; a plural loses its s (ies becomes "
        "y); "
        + "; ".join(f"{a} is {b}" for a, b in JOINED.items())
        + "; these query words are read as the catalog's word: "
        + ", ".join(f"{a} as {b}" for a, b in ALIASES.items())
        + "; these are left out: "
        + ", ".join(sorted(STOP_WORDS))
        + "."
    )
    lines = textwrap.wrap(text, 82, initial_indent="# - ", subsequent_indent="#   ")
    return "\n".join(lines)


def normalise(text: str) -> list[str]:
    out: list[str] = []
    text = text.lower()
    for written, word in JOINED.items():
        text = text.replace(written, word)
    for w in re.findall(r"[a-z0-9]+", text):
        if w.endswith("ies") and len(w) > 4:
            w = w[:-3] + "y"
        elif w.endswith("s") and not w.endswith("ss") and len(w) > 2:
            w = w[:-1]
        w = ALIASES.get(w, w)
        if w not in STOP_WORDS and w not in out:
            out.append(w)
    return out


@dataclass(frozen=True)
class Record:
    id: str
    category: str
    department: frozenset[str]
    kind: frozenset[str]
    brand: frozenset[str]
    attributes: frozenset[str]

    @classmethod
    def of(cls, rec: dict[str, Any]) -> Record:
        description = str(rec.get("description", ""))
        attrs = normalise(str(rec.get("colour", "")))
        features = FEATURES.search(description)
        if features:
            attrs += normalise(" ".join(features.groups()))
        size = SIZE.search(description)
        if size:
            attrs += normalise(size.group(1))
        return cls(
            id=str(rec["id"]),
            category=str(rec["category2"]),
            department=frozenset(normalise(str(rec["category1"]))),
            kind=frozenset(normalise(f"{rec['category3']} {rec['category2']}")),
            brand=frozenset(normalise(str(rec["brand"]))),
            attributes=frozenset(attrs),
        )


class Catalog:
    def __init__(self, records: Iterable[dict[str, Any]]) -> None:
        self.records = [Record.of(r) for r in records]
        self.brands = frozenset().union(*(r.brand for r in self.records))
        self.kinds = frozenset().union(*(r.kind for r in self.records)) - self.brands
        self.attributes = frozenset().union(*(r.attributes for r in self.records))

    def fits(self, words: list[str]) -> bool:
        known = self.brands | self.kinds | self.attributes
        return (
            bool(words)
            and set(words) <= known
            and any(w in self.brands or w in self.kinds for w in words)
        )

    def grades(self, query: str) -> dict[str, int]:
        """Every record's grade above 0 for ``query`` (empty when it does not fit)."""
        words = normalise(query)
        if not self.fits(words):
            return {}
        kind = {w for w in words if w in self.kinds}
        out: dict[str, int] = {}
        related: set[str] = set()
        for r in self.records:
            if kind and not (kind <= r.kind | r.attributes and kind & r.kind):
                continue
            everything = r.kind | r.brand | r.attributes
            grade = 3 if all(w in everything for w in words) else 2
            if grade == 2 and not kind:
                continue
            out[r.id] = grade
            related.add(r.category)
        if kind:
            for r in self.records:
                if r.id not in out and (r.category in related or kind & r.department):
                    out[r.id] = 1
        if not any(g >= 2 for g in out.values()):
            return {}
        return out


def read_queries(path: Path) -> list[str]:
    """The queries of a TSV with a header line (the query first), in the file's order."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [ln.split("\t", 1)[0].strip() for ln in lines if ln.split("\t", 1)[0].strip()]


def judgments(queries: list[str], count: int, seed: int) -> tuple[str, int]:
    """The file's text and how many queries it keeps."""
    catalog = Catalog(generate(count, seed))
    rows: list[str] = []
    seen: set[tuple[str, ...]] = set()
    kept = 0
    for query in queries:
        key = tuple(normalise(query))
        if key in seen:
            continue
        grades = catalog.grades(query)
        if not grades:
            continue
        seen.add(key)
        kept += 1
        for record_id, grade in sorted(grades.items(), key=lambda kv: (-kv[1], kv[0])):
            rows.append(f"{query}\t{record_id}\t{grade}")
    header = RULE.format(count=count, seed=seed, words=_words_rule()) + "query\trecord_id\tgrade\n"
    return header + "".join(r + "\n" for r in rows), kept


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Grade the demo catalog's records for the storefront queries that fit "
        "it, by the rule written in the file's header, and write the judgments file."
    )
    p.add_argument("--queries", type=Path, default=QUERIES, help="TSV of queries (query first)")
    p.add_argument("--count", type=int, default=COUNT, help=f"catalog size (default {COUNT:,})")
    p.add_argument("--seed", type=int, default=SEED, help=f"catalog seed (default {SEED})")
    p.add_argument("--out", type=Path, default=JUDGMENTS, help="the judgments file written")
    p.add_argument("--min-queries", type=int, default=MIN_QUERIES)
    p.add_argument(
        "--check", action="store_true", help="write nothing; fail when --out differs from the rule"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.queries.is_file():
        print(f"error: no query file at {args.queries}", file=sys.stderr)
        return 2
    text, kept = judgments(read_queries(args.queries), args.count, args.seed)
    if kept < args.min_queries:
        print(f"error: only {kept} queries fit the catalog (at least {args.min_queries})")
        return 1
    if args.check:
        same = args.out.is_file() and args.out.read_text(encoding="utf-8") == text
        print(f"{args.out}: {'matches the rule' if same else 'differs from the rule'}")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    rows = sum(1 for ln in text.splitlines() if ln and not ln.startswith("#")) - 1
    print(f"{args.out}: {kept} queries, {rows} judgments")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
