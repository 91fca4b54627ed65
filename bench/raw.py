"""The same searches without HTTP, in worker processes of this script:

- ``tantivy``: pure tantivy calls on the collection's index (parse the words over the
  weighted fields, term filters, top 10 with the total, the navigation aggregations,
  loading the 10 stored records): the physical limit.
- ``engine``: the calls SearchService makes on TantivyEngine for each request
  (recorded once, then replayed): the package's engine without the service around it.
- ``service``: SearchService.search on the parsed request, as the server's route calls
  it (everything but HTTP, authentication and JSON encoding); ``service-noac`` the same
  with ``disableAutocorrection`` (to show what the fuzzy retry of empty results costs).
- ``sayt``: SaytService.search for each keystroke.

Each worker builds the server's runtime (``build_runtime``) on its own copy of the
index slot, so two workers measure both cores without sharing a process.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tantivy

from bench.common import CpuWatch, Latency
from searchgate.catalog.settings import CollectionSettings
from searchgate.config import Settings
from searchgate.engines.tantivy.layout import SOURCE, Layout, words
from searchgate.engines.tantivy.store import SlotState, open_index
from searchgate.runtime import build_runtime
from searchgate.search.request import parse_search_request
from searchgate.search.sayt import SaytRequest

LEVELS = ("tantivy", "engine", "service", "service-noac", "sayt")
MUST = tantivy.Occur.Must
WARMUP = 300
Call = tuple[str, tuple[Any, ...], dict[str, Any]]


@dataclass
class RawJob:
    data_dir: Path
    collection: str
    bodies: list[dict[str, Any]]
    sayt_prefixes: list[str]
    sayt_products: int = 0


@dataclass
class RawResult:
    level: str
    procs: int
    requests: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cpu: dict[str, float] = field(default_factory=dict)


def copy_slots(index_dir: Path, copies: int) -> None:
    """Gives each worker a slot of its own: copies of the first slot that holds indexes
    (a copy of a committed tantivy index and its state file is a valid slot)."""
    source = next(p for p in sorted(index_dir.glob("slot-*")) if (p / "state.json").exists())
    for n in range(copies):
        target = index_dir / f"slot-{n}"
        if target == source or (target / "state.json").exists():
            continue
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(".lock"))


class PureTantivy:
    """The search of the server written directly against tantivy."""

    def __init__(self, slot: Path, collection: str) -> None:
        entry = SlotState.load(slot).collections[collection]
        settings = CollectionSettings.model_validate_json(entry["layout_settings"])
        self.layout = Layout.of(settings)
        self.index, self.schema = open_index(slot / entry["dir"], self.layout, create=False)
        self.searcher = self.index.searcher()
        self.fields = [f for f, _w in self.layout.searchable.values()]
        self.boosts = {f: w for f, w in self.layout.searchable.values()}
        self.multi = {n.name for n in settings.navigations if n.multi_select}
        self.specs: dict[str, dict[str, Any]] = {}
        for nav in settings.navigations:
            spec: dict[str, Any]
            if nav.type == "Range":
                ranges = [
                    {k: v for k, v in (("from", b.low), ("to", b.high)) if v is not None}
                    for b in nav.ranges
                ]
                spec = {"range": {"field": self.layout.ranges[nav.name], "ranges": ranges}}
            else:
                spec = {"terms": {"field": self.layout.values[nav.name], "size": nav.max_values}}
            self.specs[nav.name] = spec

    def _all(self, parts: list[tantivy.Query]) -> tantivy.Query:
        if not parts:
            return tantivy.Query.all_query()
        return (
            parts[0] if len(parts) == 1 else tantivy.Query.boolean_query([(MUST, p) for p in parts])
        )

    def search(self, ws: list[str], refinements: list[tuple[str, str]]) -> int:
        text = (
            [
                self.index.parse_query(
                    " ".join(ws), self.fields, self.boosts, conjunction_by_default=True
                )
            ]
            if ws
            else []
        )
        filters = {
            name: tantivy.Query.term_query(self.schema, self.layout.values[name], value)
            for name, value in refinements
        }
        full = self._all(text + list(filters.values()))
        result = self.searcher.search(full, 10, count=True)
        for _score, addr in result.hits:
            self.searcher.doc(addr).get_first(SOURCE)
        own = {n for n in filters if n in self.multi}
        shared = {n: s for n, s in self.specs.items() if n not in own}
        self.searcher.aggregate(full, shared)
        for name in own:
            others = [q for n, q in filters.items() if n != name]
            self.searcher.aggregate(self._all(text + others), {name: self.specs[name]})
        return int(result.count)  # type: ignore[attr-defined]


class _Recorder:
    """Stands in for the engine and notes every call the service makes on it."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self.calls: list[Call] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            return attr(*args, **kwargs)

        return call


class _Prepared:
    def __init__(self, job: RawJob) -> None:
        self.rt = build_runtime(
            Settings(data_dir=job.data_dir, database_url=None, key_pepper=None), migrate=False
        )
        self.rt.start()
        # The indexer repairs and catches up in the background: wait for its first pass.
        assert self.rt.indexer.wait_ready(600), "the index did not catch up in 600 s"
        slot = self.rt.slot_lock.path
        assert slot is not None
        self.job = job
        self.pure = PureTantivy(slot, job.collection)
        self.requests = [parse_search_request(b) for b in job.bodies]
        self.parsed = [
            (
                words(b.get("query") or ""),
                [(r["navigationName"], str(r["value"])) for r in b.get("refinements", [])],
            )
            for b in job.bodies
        ]
        self.info: dict[str, Any] = {"slot": slot.name, "warmup_s": {}}
        # One pass of the service with the engine recorded: the calls to replay, the
        # totals to compare with the server's, and a warm index.
        t0 = time.perf_counter()
        self.engine_calls, self.totals = self._record_engine_calls()
        self.info["warmup_s"]["service"] = round(time.perf_counter() - t0, 3)
        self.info["totals"] = self.totals
        self.info["engine_calls_per_search"] = round(
            sum(len(c) for c in self.engine_calls) / max(len(self.engine_calls), 1), 2
        )
        for level in ("tantivy", "engine", "service-noac", "sayt"):
            fn, n = self.level(level)
            t0 = time.perf_counter()
            for i in range(min(n, WARMUP)):
                fn(i)
            self.info["warmup_s"][level] = round(time.perf_counter() - t0, 3)

    def _record_engine_calls(self) -> tuple[list[list[Call]], list[int]]:
        service = self.rt.search
        real = service.engine
        recorder = _Recorder(real)
        calls: list[list[Call]] = []
        totals: list[int] = []
        try:
            service.engine = recorder
            for req in self.requests:
                recorder.calls = []
                totals.append(int(service.search(req).get("totalRecordCount", -1)))
                calls.append(recorder.calls)
        finally:
            service.engine = real
        return calls, totals

    def level(self, name: str) -> tuple[Callable[[int], object], int]:
        if name == "tantivy":
            return (lambda i: self.pure.search(*self.parsed[i])), len(self.parsed)
        if name == "engine":
            engine = self.rt.engine

            def replay(i: int) -> None:
                for method, args, kwargs in self.engine_calls[i]:
                    getattr(engine, method)(*args, **kwargs)

            return replay, len(self.engine_calls)
        if name == "service":
            search = self.rt.search.search
            bodies = self.job.bodies
            return (lambda i: search(parse_search_request(bodies[i]))), len(bodies)
        if name == "service-noac":
            plain = [r.model_copy(update={"disable_autocorrection": True}) for r in self.requests]
            search = self.rt.search.search
            return (lambda i: search(plain[i])), len(plain)
        if name == "sayt":
            sayt = self.rt.sayt.search
            prefixes = self.job.sayt_prefixes
            items = self.job.sayt_products
            collection = self.job.collection

            def one(i: int) -> object:
                req = SaytRequest(query=prefixes[i], collection=collection, product_items=items)
                return sayt(req, False)

            return one, len(prefixes)
        raise ValueError(f"unknown level {name!r}")


def _worker(index: int, job: RawJob, inbox: Any, outbox: Any) -> None:
    try:
        prepared = _Prepared(job)
    except Exception as exc:
        outbox.put(("error", index, f"{type(exc).__name__}: {exc}"))
        return
    outbox.put(("ready", index, prepared.info))
    while True:
        command = inbox.get()
        if command[0] == "stop":
            prepared.rt.stop()
            return
        _cmd, level, start_at, seconds, procs = command
        fn, n = prepared.level(level)
        i = index * n // procs
        latencies: list[float] = []
        time.sleep(max(start_at - time.monotonic(), 0))
        end = start_at + seconds
        perf = time.perf_counter
        while time.monotonic() < end:
            t0 = perf()
            fn(i % n)
            latencies.append(perf() - t0)
            i += 1
        outbox.put(("done", index, latencies))


class RawPool:
    """Worker processes that each hold the runtime, ready to run any level."""

    def __init__(self, job: RawJob, procs: int = 2) -> None:
        copy_slots(job.data_dir / "index", procs)
        ctx = mp.get_context("spawn")
        self.outbox = ctx.Queue()
        self.inboxes = [ctx.Queue() for _ in range(procs)]
        self.procs = [
            ctx.Process(target=_worker, args=(n, job, self.inboxes[n], self.outbox), daemon=True)
            for n in range(procs)
        ]
        for p in self.procs:
            p.start()
        self.info: dict[int, dict[str, Any]] = {}
        for _ in self.procs:
            kind, index, payload = self.outbox.get(timeout=900)
            if kind == "error":
                self.close()
                raise RuntimeError(f"raw worker {index} failed: {payload}")
            self.info[index] = payload

    def run(self, level: str, procs: int, seconds: float) -> RawResult:
        used = self.procs[:procs]
        watch = CpuWatch([p.pid for p in used if p.pid is not None])
        start_at = time.monotonic() + 0.3
        for n in range(procs):
            self.inboxes[n].put(("run", level, start_at, seconds, procs))
        latencies: list[float] = []
        for _ in range(procs):
            _kind, _index, got = self.outbox.get(timeout=seconds + 120)
            latencies.extend(got)
        cpu = watch.stop()
        lat = Latency.of_seconds(latencies)
        return RawResult(
            level=level,
            procs=procs,
            requests=lat.count,
            seconds=seconds,
            requests_per_s=round(lat.count / seconds, 1),
            p50_ms=lat.p50_ms,
            p90_ms=lat.p90_ms,
            p99_ms=lat.p99_ms,
            max_ms=lat.max_ms,
            cpu=cpu,
        )

    def close(self) -> None:
        for q in self.inboxes:
            q.put(("stop",))
        for p in self.procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
