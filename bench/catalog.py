"""The benchmark catalog: N generated products (fixed seed) written into a fresh data
directory, through the real server's HTTP upload API or in-process through the
services, timed until searchable.

Run ``python -m bench.catalog --help``.
"""

from __future__ import annotations

import argparse
import csv
import io
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.common import console, fmt, now_iso, scrub_environment, table, write_result
from bench.server import Server, fresh_dir, make_key
from searchgate.catalog.service import parse_settings
from searchgate.config import Settings
from searchgate.demo import demo_settings, generate
from searchgate.engines.base import MatchAll
from searchgate.engines.tantivy.layout import Layout
from searchgate.engines.tantivy.store import open_index
from searchgate.runtime import build_runtime

SEED = 42
COLLECTION = "default"
FIELDS = (
    "id",
    "title",
    "brand",
    "category1",
    "category2",
    "category3",
    "price",
    "rating",
    "reviews",
    "colour",
    "inStock",
    "description",
    "url",
    "imageUrl",
)


@dataclass
class UploadResult:
    method: str
    batch_size: int
    records: int
    requests: int
    seconds: float
    records_per_s: float
    slowest_request_s: float
    searchable: int

    def row(self) -> tuple[Any, ...]:
        return (
            self.method,
            self.batch_size,
            self.records,
            self.requests,
            self.seconds,
            self.records_per_s,
            self.slowest_request_s,
            self.searchable,
        )


UPLOAD_COLUMNS = [
    "upload",
    "batch",
    "records",
    "requests",
    "seconds",
    "records/s",
    "slowest req s",
    "searchable",
]


def products(n: int, seed: int = SEED) -> list[dict[str, Any]]:
    return list(generate(n, seed=seed))


def json_batches(records: list[dict[str, Any]], batch_size: int) -> list[bytes]:
    return [orjson.dumps(records[i : i + batch_size]) for i in range(0, len(records), batch_size)]


def csv_body(records: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(FIELDS)
    for r in records:
        writer.writerow(
            [
                ("true" if v else "false") if isinstance(v, bool) else ("" if v is None else v)
                for v in (r.get(f) for f in FIELDS)
            ]
        )
    return out.getvalue().encode()


def put_settings(client: httpx.Client, collection: str = COLLECTION) -> None:
    r = client.put(f"/api/v1/collections/{collection}", json=demo_settings())
    r.raise_for_status()


def searchable_count(client: httpx.Client, collection: str = COLLECTION) -> int:
    r = client.post("/api/v1/search", json={"collection": collection, "pageSize": 0})
    r.raise_for_status()
    total: int = r.json()["totalRecordCount"]
    return total


def wait_until_searchable(client: httpx.Client, n: int, timeout: float = 900.0) -> None:
    deadline = time.monotonic() + timeout
    while searchable_count(client) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {n} records searchable after {timeout:.0f} s")
        time.sleep(0.05)


def _check(r: httpx.Response) -> dict[str, Any]:
    if r.status_code != 200:
        raise RuntimeError(f"upload failed: HTTP {r.status_code}: {r.text[:500]}")
    body: dict[str, Any] = r.json()
    if body.get("invalidRecordCount"):
        raise RuntimeError(f"upload had invalid records: {r.text[:500]}")
    return body


def upload_json(
    client: httpx.Client, records: list[dict[str, Any]], batch_size: int
) -> UploadResult:
    """Sequential batches, the last one with ``?wait=true``: the clock stops when the
    whole catalog is searchable."""
    bodies = json_batches(records, batch_size)
    headers = {"Content-Type": "application/json"}
    url = f"/api/v1/collections/{COLLECTION}/records"
    slowest = 0.0
    start = time.perf_counter()
    for i, body in enumerate(bodies):
        t0 = time.perf_counter()
        last = i == len(bodies) - 1
        r = client.post(url + ("?wait=true" if last else ""), content=body, headers=headers)
        if not (last and r.status_code == 503 and "changeSeq" in r.text):
            _check(r)
        slowest = max(slowest, time.perf_counter() - t0)
    # A wait longer than the server's limit ends in a 503 (stored, not yet searchable):
    # then the clock runs until the search count shows every record.
    wait_until_searchable(client, len(records))
    seconds = time.perf_counter() - start
    return UploadResult(
        method="HTTP records API (JSON)",
        batch_size=batch_size,
        records=len(records),
        requests=len(bodies),
        seconds=round(seconds, 3),
        records_per_s=round(len(records) / seconds, 1),
        slowest_request_s=round(slowest, 3),
        searchable=searchable_count(client),
    )


def upload_csv(client: httpx.Client, records: list[dict[str, Any]]) -> UploadResult:
    """One multipart request to /data/v1/upload/stream with ``wait: true``."""
    data = csv_body(records)
    key = client.headers["Authorization"].split(" ", 1)[1]
    config = f"clientKey: {key}\ncollection: {COLLECTION}\nwait: true\n"
    files: dict[str, Any] = {
        "config": (None, config),
        "data": ("catalog.csv", data, "text/csv"),
    }
    plain = httpx.Client(base_url=str(client.base_url), timeout=client.timeout)
    try:
        start = time.perf_counter()
        r = plain.post("/data/v1/upload/stream", files=files)
        if r.status_code == 503 and "changeSeq" in r.text:
            body = {"recordCount": len(records)}
        else:
            body = _check(r)
        wait_until_searchable(client, len(records))
        seconds = time.perf_counter() - start
    finally:
        plain.close()
    if body.get("recordCount") != len(records):
        raise RuntimeError(f"CSV upload stored {body.get('recordCount')} of {len(records)}")
    return UploadResult(
        method="HTTP upload/stream (CSV)",
        batch_size=len(records),
        records=len(records),
        requests=1,
        seconds=round(seconds, 3),
        records_per_s=round(len(records) / seconds, 1),
        slowest_request_s=round(seconds, 3),
        searchable=searchable_count(client),
    )


def batched_result(
    method: str, records: int, batch_size: int, seconds: float, slowest: float, searchable: int
) -> UploadResult:
    """An upload in batches of ``batch_size``, one request (or commit) each."""
    return UploadResult(
        method=method,
        batch_size=batch_size,
        records=records,
        requests=-(-records // batch_size),
        seconds=round(seconds, 3),
        records_per_s=round(records / seconds, 1),
        slowest_request_s=round(slowest, 3),
        searchable=searchable,
    )


def write_direct(data_dir: Path, records: list[dict[str, Any]], batch_size: int) -> UploadResult:
    """The same upload without HTTP: the catalog service writes, this process's indexer
    indexes, timed until searchable."""
    settings = Settings(data_dir=data_dir, database_url=None, key_pepper=None)
    rt = build_runtime(settings)
    rt.start()
    try:
        rt.services.catalog.put_settings(COLLECTION, parse_settings(demo_settings()))
        slowest = 0.0
        seq = 0
        start = time.perf_counter()
        for i in range(0, len(records), batch_size):
            t0 = time.perf_counter()
            result = rt.services.catalog.write_records(COLLECTION, records[i : i + batch_size])
            rt.indexer.notify()
            seq = result.seq
            slowest = max(slowest, time.perf_counter() - t0)
        if not rt.wait_searchable(seq, 600):
            raise RuntimeError("the in-process upload did not become searchable in 600 s")
        seconds = time.perf_counter() - start
        searchable = rt.engine.count(COLLECTION, None, MatchAll())
    finally:
        rt.stop()
    return batched_result(
        "in-process services", len(records), batch_size, seconds, slowest, searchable
    )


def write_raw_engine(
    data_dir: Path, records: list[dict[str, Any]], batch_size: int, build: bool
) -> UploadResult:
    """The physical limit: the same documents (the collection's layout, the server's
    writer heap and threads) straight into tantivy, committed after every batch, with
    no database, no validation and no server. With ``build`` the documents are built
    from the records inside the clock, as the server does; without it they are built
    beforehand and only tantivy's own work is timed."""
    settings = Settings(data_dir=data_dir, database_url=None, key_pepper=None)
    layout = Layout.of(parse_settings(demo_settings()))
    sources = [orjson.dumps(r).decode() for r in records]
    ids = [str(r["id"]) for r in records]
    built = (
        None
        if build
        else [layout.document_json(i, r, s) for i, r, s in zip(ids, records, sources, strict=True)]
    )
    path = data_dir / "raw-index"
    index, _schema = open_index(path, layout, create=True)
    writer = index.writer(settings.index_writer_heap_bytes, settings.index_writer_threads)
    slowest = 0.0
    start = time.perf_counter()
    for i in range(0, len(records), batch_size):
        t0 = time.perf_counter()
        if built is not None:
            for doc in built[i : i + batch_size]:
                writer.add_json(doc)
        else:
            for j in range(i, min(i + batch_size, len(records))):
                writer.add_json(layout.document_json(ids[j], records[j], sources[j]))
        writer.commit()
        slowest = max(slowest, time.perf_counter() - t0)
    seconds = time.perf_counter() - start
    index.reload()
    searchable = index.searcher().num_docs
    method = "in-process pure tantivy" + (" (documents built)" if build else "")
    return batched_result(method, len(records), batch_size, seconds, slowest, searchable)


def client_for(server: Server, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=httpx.Timeout(600.0),
    )


def upload_via_server(
    data_dir: Path, records: list[dict[str, Any]], batch_size: int, as_csv: bool = False
) -> tuple[UploadResult, dict[str, dict[str, int]]]:
    """Fresh data directory, a one-worker server, one upload; returns the result and the
    server's memory after it."""
    key, _path = make_key(data_dir)
    with Server(data_dir, workers=1).start() as server, client_for(server, key) as client:
        put_settings(client)
        result = upload_csv(client, records) if as_csv else upload_json(client, records, batch_size)
        return result, server.memory()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write the generated benchmark catalog into a fresh data directory and "
        "time it until searchable."
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="created (or emptied)")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument(
        "--via",
        choices=["http", "csv", "services", "raw"],
        default="http",
        help="POST /api/v1/collections/default/records through a server started here, "
        "one CSV upload to /data/v1/upload/stream, the services in-process, or the same "
        "documents straight into tantivy (the physical limit)",
    )
    parser.add_argument("--quick", action="store_true", help="10,000 records")
    args = parser.parse_args(argv)
    scrub_environment()
    n = 10_000 if args.quick else args.records
    data_dir = fresh_dir(args.data_dir.parent.resolve(), args.data_dir.name)
    records = products(n)
    memory: dict[str, dict[str, int]] = {}
    if args.via == "services":
        result = write_direct(data_dir, records, args.batch_size)
        make_key(data_dir)
    elif args.via == "raw":
        result = write_raw_engine(data_dir, records, args.batch_size, build=False)
    else:
        result, memory = upload_via_server(data_dir, records, args.batch_size, args.via == "csv")
    console.print(table("Upload until searchable", UPLOAD_COLUMNS, [result.row()]))
    for pid, mem in memory.items():
        console.print(f"server {pid}: peak RSS {fmt(mem.get('peak_kb', 0) / 1024)} MiB")
    path = write_result(
        "catalog", {"at": now_iso(), "data_dir": str(data_dir), **asdict(result), "memory": memory}
    )
    console.print(f"results: {path}; catalog in {data_dir} (client key in secrets/)")
    return 0 if result.searchable == n else 1


if __name__ == "__main__":
    raise SystemExit(main())
