"""The merchandising cost benchmark: search throughput of one server on the 100k
catalog for an area with 50 published rules and 200 synonym sets against an area with
none, in the same run.

Both areas live in one data directory and are served by one server process, so the
two sides share the process, the index and the machine: the only difference is the
``area`` of the search bodies. Runs alternate A B B A ... (a linear drift of a shared
machine's speed cancels out); each round compares its two runs and the figure is the
median over rounds. The query mix is the demo mix (``--queries`` for a real one), each
search with two refinements a shopper could click, as in ``bench.search_bench``.

The merchandising is built from the catalog's and the mix's own words so that it fires:
100 synonym sets join a frequent catalog word and its other number ("headphone,
headphones"), 100 send a word shoppers type that the catalog lacks to a catalog word
("telly => television"); the 50 rules are written for the 50 most searched queries of
the mix (``queryEquals``), as a merchandiser starts with the head of the traffic, and
boost, bury, pin, hide, filter and carry templates. The figures say how many of the
measured searches fired rules and applied synonyms. The issue's target:
throughput with merchandising at least 90 % of the same run without.

Run ``python -m bench.merchandising --help``; ``--quick`` checks the script in about
a minute.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import load, queries
from bench.catalog import products, write_direct
from bench.common import console, machine, now_iso, scrub_environment, table, write_result
from bench.server import Server, fresh_dir, make_key
from searchgate.config import Settings
from searchgate.engines.tantivy.layout import words
from searchgate.merchandising.document import MerchandisingDocument
from searchgate.permissions import Actor
from searchgate.runtime import build_services

PLAIN, MERCH = "Production", "Merchandised"
SIDES = (PLAIN, MERCH)
TARGET = 0.90
RULES, SYNONYM_SETS = 50, 200
FULL: dict[str, Any] = {"records": 100_000, "duration": 3.0, "rounds": 8, "sample": 1000}
QUICK: dict[str, Any] = {"records": 5000, "duration": 1.0, "rounds": 2, "sample": 200}
STRENGTHS = ("Strong_Increase", "Medium_Increase", "Weak_Decrease", "Strong_Decrease")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Search throughput for an area with 50 rules and 200 synonym sets vs an "
        "area with none, one server, same run; prints tables, writes JSON to bench/results/."
    )
    p.add_argument("--queries", type=Path, help="a TSV query mix to replay (default: the demo mix)")
    p.add_argument("--records", type=int, help="catalog size (default 100,000)")
    p.add_argument("--duration", type=float, help="seconds per measured run (default 3)")
    p.add_argument("--rounds", type=int, help="rounds, each measuring both areas (default 8)")
    p.add_argument("--sample", type=int, help="search queries drawn (default 1,000)")
    p.add_argument("--connections", type=int, default=2, help="concurrent connections")
    p.add_argument("--seed", type=int, default=queries.SEED)
    p.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    p.add_argument("--data-root", type=Path, help="where the data directory goes (tmp)")
    p.add_argument("--out", type=Path, help="JSON result path (default bench/results/)")
    p.add_argument("--quick", action="store_true", help="5,000 records, 1 s runs, 2 rounds")
    args = p.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.rounds < 2 or args.rounds % 2 or args.duration <= 0:
        p.error("--rounds must be even and at least 2")
    return args


def merchandising(
    catalog: list[dict[str, Any]], mix: list[queries.Query], seed: int
) -> MerchandisingDocument:
    """200 synonym sets and 50 rules made of the catalog's and the mix's words."""
    texts = [q.text for q in mix]
    rng = random.Random(seed)
    vocabulary = Counter(
        w
        for r in catalog[:20_000]
        for field in ("title", "brand", "category1", "category2", "category3", "colour")
        for w in words(str(r.get(field, "")))
    )
    frequent = [w for w, _n in vocabulary.most_common(400) if len(w) > 3 and not w.isdigit()]
    synonyms: list[dict[str, Any]] = []
    # Half: a catalog word and its other number ("headphone, headphones"), the sets a
    # merchandiser adds first.
    for w in frequent[: SYNONYM_SETS // 2]:
        other = w[:-1] if w.endswith("s") else f"{w}s"
        synonyms.append({"name": f"number {w}", "terms": [w, other]})
    # Half: words shoppers type that the catalog does not hold, each to a catalog word
    # ("telly => television"); made-up ones when the mix has too few.
    gaps = sorted({w for q in texts for w in words(q) if len(w) > 3 and w not in vocabulary})
    rng.shuffle(gaps)
    gaps += [f"gap{i}" for i in range(SYNONYM_SETS)]
    for i, gap in enumerate(gaps[: SYNONYM_SETS - len(synonyms)]):
        target = frequent[rng.randrange(len(frequent))]
        synonyms.append({"name": f"gap {i}", "kind": "one-way", "terms": [gap], "to": [target]})
    # Rules are written for the head of the traffic: the most searched queries.
    head = sorted(mix, key=lambda q: -q.popularity)
    triggers = list(dict.fromkeys(" ".join(words(q.text)) for q in head if words(q.text)))
    brands = sorted({str(r["brand"]) for r in catalog[:5000] if r.get("brand")})
    ids = [str(r["id"]) for r in catalog[:5000]]
    rules = []
    for i in range(RULES):
        rule: dict[str, Any] = {
            "name": f"rule {i}",
            "priority": i,
            "triggers": [{"type": "queryEquals", "value": triggers[i % len(triggers)]}],
        }
        kind = i % 5
        if kind == 0:
            rule["biases"] = [
                {"name": "brand", "content": rng.choice(brands), "strength": rng.choice(STRENGTHS)}
            ]
        elif kind == 1:
            rule["pins"] = [{"id": rng.choice(ids), "position": p} for p in (1, 3)]
        elif kind == 2:
            rule["hide"] = rng.sample(ids, 3)
        elif kind == 3:
            rule["filter"] = "NOT inStock:false"
        else:
            rule["template"] = {
                "name": "banner",
                "zones": [{"name": "top", "type": "Content", "content": f"Offer {i}"}],
            }
        rules.append(rule)
    return MerchandisingDocument.model_validate({"synonyms": synonyms, "rules": rules})


def publish(data_dir: Path, document: MerchandisingDocument) -> None:
    services = build_services(Settings(data_dir=data_dir))
    try:
        actor = Actor.system("bench")
        services.areas.create(actor, MERCH)
        services.merchandising.save_draft(actor, MERCH, document)
        services.merchandising.publish(actor, MERCH, note="bench.merchandising")
    finally:
        services.db.dispose()


def build_workloads(
    server: Server, key: str, mix: list[queries.Query], args: argparse.Namespace
) -> tuple[dict[str, load.Workload], dict[str, Any]]:
    """The same bodies for both areas; also how often merchandising fired in them."""
    drawn = queries.sample(mix, args.sample, args.seed)
    rng = random.Random(args.seed)
    fired = {"searches": 0, "with_rules": 0, "rules_fired": 0, "with_synonyms": 0}
    bodies: list[dict[str, Any]] = []
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:
        navs: dict[str, list[dict[str, Any]]] = {}
        for q in dict.fromkeys(drawn):
            r = client.post("/api/v1/search", json={"query": q, "pageSize": 0})
            r.raise_for_status()
            navs[q] = r.json()["availableNavigation"]
        for q in drawn:
            bodies.append(queries.search_body(q, queries.choose_refinements(navs[q], rng)))
        for body in bodies:
            r = client.post("/api/v1/search", json={**body, "area": MERCH, "debug": True})
            if r.status_code != 200:
                raise RuntimeError(f"search {body!r} failed: {r.status_code} {r.text}")
            debug = r.json()["debug"]
            n = sum(1 for rule in debug["rules"] if rule["fired"])
            fired["searches"] += 1
            fired["with_rules"] += bool(n)
            fired["rules_fired"] += n
            fired["with_synonyms"] += bool(debug["synonyms"])
    workloads = {
        side: load.Workload(
            f"search-{side.lower()}",
            [orjson.dumps({**b, "area": side}).decode() for b in bodies],
            "/api/v1/search",
        )
        for side in SIDES
    }
    return workloads, fired


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side in SIDES:
        rs = [r for r in runs if r["side"] == side]
        out[side] = {
            "requests_per_s": statistics.median(r["requests_per_s"] for r in rs),
            "p50_ms": statistics.median(r["p50_ms"] for r in rs),
            "p99_ms": statistics.median(r["p99_ms"] for r in rs),
            "errors": sum(r["errors"] for r in rs),
        }
    by = {(r["round"], r["side"]): r["requests_per_s"] for r in runs}
    ratios = [by[(n, MERCH)] / by[(n, PLAIN)] for n in sorted({r["round"] for r in runs})]
    out["ratio_paired"] = ratios
    out["ratio_paired_median"] = statistics.median(ratios)
    out["target"] = TARGET
    out["met"] = out["ratio_paired_median"] >= TARGET
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scrub_environment()
    mix = queries.mix_or_exit(args.queries, args.seed)
    root = Path(tempfile.mkdtemp(prefix="sg-merch-", dir=args.data_root))
    results: dict[str, Any] = {
        "kind": "merchandising",
        "at": now_iso(),
        "machine": machine(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "runs": [],
    }
    server: Server | None = None
    try:
        data_dir = fresh_dir(root, "data")
        catalog = products(args.records)
        console.print(f"catalog: {args.records:,} products, written in-process ...")
        results["catalog"] = asdict(write_direct(data_dir, catalog, 10_000))
        document = merchandising(catalog, mix, args.seed)
        publish(data_dir, document)
        results["merchandising"] = {
            "rules": len(document.rules),
            "synonym_sets": len(document.synonyms),
        }
        key, key_file = make_key(data_dir)
        server = Server(data_dir, workers=1).start()
        workloads, fired = build_workloads(server, key, mix, args)
        results["fired"] = fired
        for side in SIDES:
            load.run(
                workloads[side],
                server.base_url,
                key_file,
                args.connections,
                max(args.duration / 2, 1.0),
                server.pids(),
                root,
                args.client,
            )
        for n in range(args.rounds):
            console.print(f"round {n + 1}/{args.rounds} ...")
            for side in SIDES if n % 2 == 0 else SIDES[::-1]:
                r = load.run(
                    workloads[side],
                    server.base_url,
                    key_file,
                    args.connections,
                    args.duration,
                    server.pids(),
                    root,
                    args.client,
                )
                results["runs"].append({"round": n, "side": side} | asdict(r))
        results["summary"] = summarise(results["runs"])
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
        path = write_result("merchandising", results, args.out)
    show(results)
    console.print(f"written: {path}")
    return 0 if results.get("summary", {}).get("met") else 1


def show(results: dict[str, Any]) -> None:
    runs = results["runs"]
    console.print(
        table(
            "Runs (in the order measured)",
            ["round", "area", "req/s", "p50 ms", "p99 ms", "errors"],
            [
                (
                    r["round"] + 1,
                    r["side"],
                    r["requests_per_s"],
                    r["p50_ms"],
                    r["p99_ms"],
                    r["errors"],
                )
                for r in runs
            ],
        )
    )
    if "summary" not in results:
        return
    s = results["summary"]
    f = results["fired"]
    console.print(
        table(
            "Search throughput: 50 rules + 200 synonym sets vs none (same server, same run)",
            ["area", "req/s (median)", "p50 ms", "p99 ms"],
            [
                (side, s[side]["requests_per_s"], s[side]["p50_ms"], s[side]["p99_ms"])
                for side in SIDES
            ],
        )
    )
    console.print(
        f"merchandised / plain, paired median over rounds: {s['ratio_paired_median']:.3f} "
        f"(target >= {TARGET}: {'met' if s['met'] else 'NOT met'}); "
        f"rounds: {', '.join(f'{r:.3f}' for r in s['ratio_paired'])}"
    )
    console.print(
        f"in the measured bodies: {f['with_rules']}/{f['searches']} searches fire rules "
        f"({f['rules_fired']} firings), {f['with_synonyms']} apply synonyms"
    )


if __name__ == "__main__":
    raise SystemExit(main())
