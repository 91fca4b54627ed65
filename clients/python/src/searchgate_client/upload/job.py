"""An upload job: a file sent in batches, with retries, a checkpoint and a report.

The file is read by a thread one batch ahead of the one in flight, so reading and the
server's work overlap; at most a few batches are in memory at any time, whatever the
file's size. Each batch is sent until the server acknowledges it (an acknowledged
record is committed), then recorded in the checkpoint.

With ``replace`` the batches go to a staged replacement of the collection (started
first, its id kept in the checkpoint) and the replacement is committed after the last
one: the server swaps the whole catalog in at once, whatever the file's size.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from searchgate_client._client import USER_AGENT, _result, _system_header
from searchgate_client._errors import SearchgateConnectionError, SearchgateError
from searchgate_client._keys import CachedKey
from searchgate_client.upload.checkpoint import Checkpoint, Progress, identity, state_path
from searchgate_client.upload.formats import (
    CsvReader,
    FileFormatError,
    Item,
    Position,
    Refused,
    detect_format,
    read_json_array,
    read_ndjson,
)

# The server's documented defaults (docs/api.md, Limits): 100,000 records and 64 MiB
# per request. Batches stay well below them.
DEFAULT_BATCH_RECORDS = 5000
DEFAULT_BATCH_BYTES = 8 << 20
RETRYABLE = frozenset({500, 502, 503, 504})
BACKOFF_CAP = 30.0

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 3


@dataclass
class Batch:
    number: int
    items: list[Item] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    after: Position = field(default_factory=Position)
    size: int = 0


def batches(
    records: Iterator[Item | Refused], first: int, max_records: int, max_bytes: int
) -> Iterator[Batch]:
    """Groups records into batches of at most ``max_records`` and ``max_bytes``. The
    cuts depend only on the file and the limits, so a resumed run cuts where the first
    run would have."""
    current = Batch(first)
    for rec in records:
        if isinstance(rec, Item):
            size = len(rec.raw) + 1
            if current.items and (
                len(current.items) >= max_records or current.size + size > max_bytes
            ):
                yield current
                current = Batch(current.number + 1)
            current.items.append(rec)
            current.size += size
        else:
            current.refused.append(rec)
        current.after = rec.after
    if current.items or current.refused:
        yield current


@dataclass
class Options:
    file: Path
    collection: str
    server: str
    key: CachedKey
    fmt: str | None = None
    system: str | None = None
    replace: bool = False
    wait: bool = False
    batch_records: int | None = None
    batch_bytes: int | None = None
    state_dir: Path | None = None
    restart: bool = False
    retries: int = 8
    timeout: float = 300.0


@dataclass
class Report:
    file: str
    collection: str
    format: str
    state: str
    records: int = 0
    upserted: int = 0
    invalid_count: int = 0
    invalid: list[dict[str, Any]] = field(default_factory=list)
    batches: int = 0
    resumed_batches: int = 0
    retries: dict[str, int] = field(default_factory=lambda: {"429": 0, "5xx": 0, "network": 0})
    key_reads: int = 0
    error: str | None = None
    replacement: str | None = None
    committed: bool = False

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return EXIT_FAILED
        return EXIT_REFUSED if self.invalid_count else EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "collection": self.collection,
            "format": self.format,
            "state": self.state,
            "records": self.records,
            "upserted": self.upserted,
            "invalidRecordCount": self.invalid_count,
            "invalidRecords": self.invalid,
            "batches": self.batches,
            "resumedBatches": self.resumed_batches,
            "retries": self.retries,
            "keyReads": self.key_reads,
            "replacement": self.replacement,
            "committed": self.committed,
            "error": self.error,
            "exitCode": self.exit_code,
        }


class UploadFailed(Exception):
    """The upload stopped: the message says why and what to do."""


class Sender:
    """Sends one batch until the server acknowledges or refuses it: 429 waits as long as
    Retry-After says (as often as it takes: the server is telling us when), 5xx and lost
    connections are retried ``retries`` times with exponential backoff and jitter, and a
    401 re-reads the key once (a rotation) and sends again."""

    def __init__(
        self,
        options: Options,
        fmt: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.key = options.key
        self.collection = options.collection
        self.fmt = fmt
        # Set once a replacement is started or resumed: batches are staged into it.
        self.replacement: str | None = None
        self.retries = options.retries
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.counts = {"429": 0, "5xx": 0, "network": 0}
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if options.system is not None:
            headers["X-Searchgate-System"] = _system_header(options.system)
        self.http = httpx.Client(
            base_url=options.server.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(options.timeout, connect=10.0),
            # A redirect would carry the key to wherever it points.
            follow_redirects=False,
        )

    def close(self) -> None:
        self.http.close()

    def _replacements(self, *parts: str) -> str:
        path = f"/api/v1/collections/{quote(self.collection, safe='')}/replacements"
        return "/".join([path, *(quote(p, safe="") for p in parts)])

    def _post(self, body: bytes, key: str, wait: bool) -> httpx.Response:
        auth = {"Authorization": f"Bearer {key}"}
        flag = "true" if wait else "false"
        if self.replacement is not None:
            ctype = "text/csv" if self.fmt == "csv" else "application/x-ndjson"
            return self.http.post(
                self._replacements(self.replacement, "records"),
                content=body,
                headers={**auth, "Content-Type": ctype},
            )
        if self.fmt == "csv":
            # CSV goes through the stream upload, which types the cells as the server's
            # other CSV readers do.
            config = f"collection: {self.collection}\nformat: csv\nmode: upsert\n"
            return self.http.post(
                "/data/v1/upload/stream",
                params={"wait": flag},
                files={
                    "config": (None, config.encode(), "text/plain"),
                    "data": ("data.csv", body, "text/csv"),
                },
                headers=auth,
            )
        return self.http.post(
            f"/api/v1/collections/{quote(self.collection, safe='')}/records",
            params={"mode": "upsert", "wait": flag},
            content=body,
            headers={**auth, "Content-Type": "application/x-ndjson"},
        )

    def _backoff(self, attempt: int) -> float:
        ceiling = min(BACKOFF_CAP, 0.5 * 2.0 ** (attempt - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def send(self, body: bytes, wait: bool) -> dict[str, Any]:
        """Sends one batch (to the replacement, once there is one)."""
        return self.call(lambda key: self._post(body, key, wait))

    def start_replacement(self) -> dict[str, Any]:
        return self.call(lambda key: self.http.post(self._replacements(), headers=_auth(key)))

    def replacement_state(self, rid: str) -> dict[str, Any]:
        return self.call(lambda key: self.http.get(self._replacements(rid), headers=_auth(key)))

    def commit_replacement(self, rid: str, wait: bool) -> dict[str, Any]:
        params = {"wait": "true" if wait else "false"}
        return self.call(
            lambda key: self.http.post(
                self._replacements(rid, "commit"), params=params, headers=_auth(key)
            )
        )

    def abort_replacement(self, rid: str) -> dict[str, Any]:
        return self.call(lambda key: self.http.delete(self._replacements(rid), headers=_auth(key)))

    def call(self, request: Callable[[str], httpx.Response]) -> dict[str, Any]:
        """One request, sent with the current key until answered (see the class)."""
        key, generation = self.key.current()
        attempt = 0
        reread = False
        while True:
            try:
                response = request(key)
            except httpx.TransportError as exc:
                attempt += 1
                if attempt > self.retries:
                    raise SearchgateConnectionError(
                        0, "connection_failed", f"no answer after {attempt} tries: {exc!r}"
                    ) from exc
                self.counts["network"] += 1
                self.sleep(self._backoff(attempt))
                continue
            status = response.status_code
            if status == 401 and not reread:
                # The key may have been rotated: read it from its source again, once.
                reread = True
                fresh = self.key.refresh(after=generation)
                if fresh != key:
                    key, generation = self.key.current()
                    continue
            elif status == 429:
                self.counts["429"] += 1
                retry_after = _seconds(response.headers.get("retry-after"))
                pause = retry_after if retry_after is not None else self._backoff(1)
                self.sleep(pause * self.rng.uniform(1.0, 1.25))
                continue
            elif status in RETRYABLE and attempt < self.retries:
                attempt += 1
                self.counts["5xx"] += 1
                self.sleep(self._backoff(attempt))
                continue
            return _result(response)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class Upload:
    """One run of an upload job (see ``run``)."""

    def __init__(
        self,
        options: Options,
        *,
        on_batch: Callable[[Upload], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.options = options
        self.fmt = detect_format(options.file, options.fmt)
        self.size = options.file.stat().st_size
        self.max_records = options.batch_records or DEFAULT_BATCH_RECORDS
        self.max_bytes = options.batch_bytes or DEFAULT_BATCH_BYTES
        if self.max_records < 1 or self.max_bytes < 1024:
            raise ValueError("batches hold at least 1 record and 1024 bytes")
        self.ident = identity(
            options.file,
            server=options.server.rstrip("/"),
            collection=options.collection,
            fmt=self.fmt,
            # "staged-replace": a checkpoint of a --replace run that sent the whole
            # file in one request holds no replacement and is not resumed.
            mode="staged-replace" if options.replace else "upsert",
            batch=(self.max_records, self.max_bytes),
        )
        self.checkpoint = Checkpoint(
            state_path(options.file, self.ident, options.state_dir), self.ident
        )
        self.progress = Progress()
        self.started = time.monotonic()
        self.start_offset = 0
        self.header = b""
        self.header_lines = 0
        self.session_records = 0
        self.on_batch = on_batch
        self.sleep = sleep
        self.report = Report(
            file=str(options.file),
            collection=options.collection,
            format=self.fmt,
            state=str(self.checkpoint.path),
        )

    def run(self) -> Report:
        """Sends every batch the checkpoint does not hold; the report says what the
        whole upload (this run and the earlier ones) came to."""
        sender = Sender(self.options, self.fmt, sleep=self.sleep)
        try:
            self.checkpoint.lock()
            earlier = self.checkpoint.load()
            if self.options.restart and self.options.replace:
                self._abandon(sender, earlier)
            self.progress = Progress() if self.options.restart else earlier
            self.report.resumed_batches = self.progress.batches
            self.start_offset = self.progress.position.offset
            self.started = time.monotonic()
            self.checkpoint.open(self.progress)
            self._send_all(sender)
        except (FileFormatError, SearchgateError, UploadFailed, OSError) as exc:
            self.report.error = str(exc)
        finally:
            sender.close()
            self.checkpoint.close()
            self._fill_report(sender)
        return self.report

    def _fill_report(self, sender: Sender) -> None:
        r, p = self.report, self.progress
        r.records, r.upserted, r.batches = p.records, p.upserted, p.batches
        r.invalid_count, r.invalid = (
            p.invalid_count,
            sorted(p.invalid, key=lambda d: (d["line"], d.get("index", 0))),
        )
        r.retries = sender.counts
        r.key_reads = self.options.key.source_calls
        r.replacement, r.committed = p.replacement, p.committed

    def _read(self) -> Iterator[Batch]:
        with self.options.file.open("rb") as stream:
            start = self.progress.position
            header = b""
            if self.fmt == "csv":
                reader = CsvReader(stream, self.max_bytes)
                header = reader.header
                self.header_lines = reader.header_lines
                records = reader.rows(start)
            elif self.fmt == "json":
                records = read_json_array(stream, start, self.max_bytes)
            else:
                records = read_ndjson(stream, start, self.max_bytes)
            self.header = header
            yield from batches(
                records, self.progress.batches + 1, self.max_records, self.max_bytes - len(header)
            )

    def _send_all(self, sender: Sender) -> None:
        ahead: queue.Queue[Batch | BaseException | None] = queue.Queue(maxsize=1)
        stop = threading.Event()

        def produce() -> None:
            try:
                for batch in self._read():
                    while not stop.is_set():
                        try:
                            ahead.put(batch, timeout=0.5)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                ahead.put(None)
            except BaseException as exc:
                ahead.put(exc)

        reader = threading.Thread(target=produce, name="upload-reader", daemon=True)
        reader.start()
        try:
            current = ahead.get()
            replace = self.options.replace
            if replace:
                if self.progress.committed:
                    return
                self._begin_replacement(sender, current)
            while isinstance(current, Batch):
                following = ahead.get()
                last = following is None
                self._send(sender, current, wait=self.options.wait and last and not replace)
                current = following
            if isinstance(current, BaseException):
                raise current
            if replace:
                self._commit(sender)
        finally:
            stop.set()

    def _begin_replacement(self, sender: Sender, first: Batch | BaseException | None) -> None:
        """Starts the collection's staged replacement, or goes on with the one the
        checkpoint names; its batches are then staged into it."""
        if isinstance(first, BaseException):
            raise first
        rid = self.progress.replacement
        if rid is None:
            if first is None or not first.items:
                raise UploadFailed(
                    "--replace: the file holds no records; replacing would empty the collection"
                )
            try:
                rid = str(sender.start_replacement()["id"])
            except SearchgateError as exc:
                if exc.status != 409:
                    raise
                error = exc.body.get("error")
                open_id = error.get("replacementId") if isinstance(error, dict) else None
                raise UploadFailed(
                    f"--replace: the collection has an open replacement ({open_id}): another "
                    "upload is replacing it, or one whose checkpoint is gone. Abort it "
                    f"(DELETE /api/v1/collections/{self.options.collection}/replacements/"
                    f"{open_id}) or let it expire"
                ) from exc
            entry = {"replacement": rid}
            self.checkpoint.append(entry)
            self.progress.note(entry)
        else:
            try:
                sender.replacement_state(rid)
            except SearchgateError as exc:
                if exc.status != 404:
                    raise
                raise UploadFailed(
                    f"--replace: the replacement {rid} of the earlier run is gone (it expired "
                    "without batches or was aborted); run again with --restart to send the "
                    "whole file into a new one"
                ) from exc
        sender.replacement = rid

    def _commit(self, sender: Sender) -> None:
        rid = self.progress.replacement
        assert rid is not None
        # A commit sent again (the earlier run was killed before it read the answer)
        # is answered as the first one was.
        sender.commit_replacement(rid, self.options.wait)
        entry = {"committed": True}
        self.checkpoint.append(entry)
        self.progress.note(entry)

    def _abandon(self, sender: Sender, earlier: Progress) -> None:
        """--restart of a replace: the earlier run's open replacement is aborted, so
        that a new one can start."""
        if earlier.replacement is None or earlier.committed:
            return
        try:
            sender.abort_replacement(earlier.replacement)
        except SearchgateError as exc:
            # Gone already (expired), or committed by a run killed before it said so.
            if exc.status not in (404, 409):
                raise

    def body(self, batch: Batch) -> bytes:
        if self.fmt == "csv":
            return self.header + b"".join(item.raw for item in batch.items)
        return b"\n".join(item.raw for item in batch.items) + b"\n"

    def _send(self, sender: Sender, batch: Batch, wait: bool) -> None:
        invalid: list[dict[str, Any]] = [
            _detail(r.line, r.index, None, r.reason) for r in batch.refused
        ]
        upserted = 0
        invalid_count = len(batch.refused)
        if batch.items:
            try:
                answer = sender.send(self.body(batch), wait)
            except SearchgateError as exc:
                if exc.status != 400 or exc.code != "invalid_request":
                    raise UploadFailed(_failure(batch, exc)) from exc
                # The batch as a whole was refused (a CSV error the server's reader
                # found): its records are reported, the upload goes on.
                invalid.extend(
                    _detail(i.line, i.index, exc.field, f"refused with its batch: {exc.message}")
                    for i in batch.items
                )
                invalid_count += len(batch.items)
            else:
                upserted = int(answer["staged"] if self.options.replace else answer["upserted"])
                invalid_count += int(answer.get("invalidRecordCount", 0))
                invalid.extend(self._locate(batch, answer.get("invalidRecordDetails") or []))
        entry: dict[str, Any] = {
            "batch": batch.number,
            "offset": batch.after.offset,
            "line": batch.after.line,
            "index": batch.after.index,
            "records": len(batch.items) + len(batch.refused),
            "upserted": upserted,
            "invalidCount": invalid_count,
            "invalid": invalid[: max(0, 1000 - len(self.progress.invalid))],
        }
        self.checkpoint.append(entry)
        self.progress.note(entry)
        self.session_records += entry["records"]
        if self.on_batch is not None:
            self.on_batch(self)

    def _locate(self, batch: Batch, details: list[Any]) -> list[dict[str, Any]]:
        """The server's invalid-record details with the file's lines: the server counts
        lines (and a CSV body's header) within the batch."""
        by_line: dict[int, Item] = {}
        if self.fmt == "csv":
            body_line = 1 + self.header_lines
            for item in batch.items:
                by_line[body_line] = item
                body_line += item.after.line - item.line
        else:
            by_line = {n: item for n, item in enumerate(batch.items, 1)}
        out = []
        for d in details:
            if not isinstance(d, dict):
                continue
            found = by_line.get(d.get("line", -1))
            line = found.line if found is not None else batch.items[0].line
            index = found.index if found is not None else None
            detail = _detail(line, index, d.get("field"), str(d.get("reason", "")))
            if isinstance(d.get("id"), str):
                detail["id"] = d["id"]
            out.append(detail)
        return out

    # --- progress --------------------------------------------------------------------

    def rates(self) -> tuple[float, float | None, float]:
        """Records per second in this run, seconds left (from the bytes still to read),
        and the share of the file done."""
        elapsed = max(time.monotonic() - self.started, 1e-6)
        done = self.progress.position.offset
        read = done - self.start_offset
        eta = (self.size - done) / (read / elapsed) if read > 0 else None
        share = done / self.size if self.size else 1.0
        return self.session_records / elapsed, eta, share


def _detail(line: int, index: int | None, field_name: Any, reason: str) -> dict[str, Any]:
    d: dict[str, Any] = {"line": line, "reason": reason}
    if index is not None:
        d["index"] = index
    if isinstance(field_name, str):
        d["field"] = field_name
    return d


def _failure(batch: Batch, exc: SearchgateError) -> str:
    where = f"batch {batch.number} (from line {batch.items[0].line})"
    hint = ""
    if exc.status in (413, 422):
        hint = "; send smaller batches (--batch-records, --batch-bytes)"
    elif exc.status == 401:
        hint = "; the key was read from its source again and refused as well"
    return f"{where}: {exc}{hint}"
