"""``searchgate-upload FILE --collection C``: upload a catalog file of any size.

Exit codes: 0 every record accepted, 3 the upload finished but the server (or the
reader) refused some records (listed in the report), 1 the upload stopped (re-run the
same command to go on from the last acknowledged batch), 2 wrong usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from searchgate_client._keys import CachedKey
from searchgate_client.sources import KeySource, from_aws, from_env, from_file, from_vault
from searchgate_client.upload.formats import FORMATS
from searchgate_client.upload.job import (
    DEFAULT_BATCH_BYTES,
    DEFAULT_BATCH_RECORDS,
    EXIT_FAILED,
    Options,
    Report,
    Upload,
)

STORES = ("vault", "aws", "file", "env")
REPORTED = 50
"""Refused records listed in the text report (``--json`` lists up to 1,000)."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="searchgate-upload",
        description="Upload a CSV, JSON-array or NDJSON file to a Searchgate collection in "
        "batches, resumably: re-running the same command after a failure or a kill goes on "
        "from the last batch the server acknowledged.",
        epilog="Exit codes: 0 every record accepted; 3 some records refused (listed); "
        "1 the upload stopped (re-run to resume); 2 wrong usage.",
    )
    p.add_argument("file", type=Path, help="the file: .csv, .json (an array), .ndjson/.jsonl")
    p.add_argument("--collection", required=True, help="the collection to write to")
    p.add_argument(
        "--server",
        default=os.environ.get("SEARCHGATE_URL"),
        help="the server's URL (default: $SEARCHGATE_URL)",
    )
    p.add_argument(
        "--store",
        choices=STORES,
        default="env",
        help="where the client key is read: vault (VAULT_ADDR, VAULT_TOKEN), aws, file "
        "or env (default)",
    )
    p.add_argument(
        "--path",
        help="the key's place in the store: a Vault KV v2 path (secret/searchgate/client-key), "
        "an AWS secret name or ARN, a file, or an environment variable "
        "(default SEARCHGATE_CLIENT_KEY)",
    )
    p.add_argument("--system", help="this system's name in the key's usage (sent on every call)")
    p.add_argument("--format", choices=FORMATS, help="the file's format (default: its extension)")
    p.add_argument(
        "--replace",
        action="store_true",
        help="replace the whole collection atomically, whatever the file's size: the batches "
        "are staged in a replacement that is swapped in after the last one (resumable too)",
    )
    p.add_argument("--wait", action="store_true", help="finish once the records are searchable")
    p.add_argument(
        "--batch-records",
        type=int,
        help=f"records per request (default {DEFAULT_BATCH_RECORDS:,})",
    )
    p.add_argument(
        "--batch-bytes",
        type=int,
        help=f"bytes per request (default {DEFAULT_BATCH_BYTES:,})",
    )
    p.add_argument(
        "--state",
        type=Path,
        help="directory of the checkpoint file (default: beside the file)",
    )
    p.add_argument(
        "--restart", action="store_true", help="ignore the checkpoint and send everything"
    )
    p.add_argument(
        "--retries",
        type=int,
        default=8,
        help="tries after a 5xx or a lost connection (429s are waited out as the server says)",
    )
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for an answer")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    return p


def key_source(store: str, path: str | None) -> KeySource:
    if store == "env":
        return from_env(path or "SEARCHGATE_CLIENT_KEY")
    if not path:
        raise ValueError(f"--store {store} needs --path")
    if store == "file":
        return from_file(path)
    if store == "vault":
        return from_vault(path)
    return from_aws(path)


class ProgressLine:
    """Records/s, share and time left on standard error: redrawn in place on a
    terminal, one line every 10 seconds otherwise."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.every = 0.5 if self.tty else 10.0
        self.last = 0.0

    def __call__(self, upload: Upload, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < self.every:
            return
        self.last = now
        rate, eta, share = upload.rates()
        left = "-" if eta is None else _duration(eta)
        text = (
            f"{upload.progress.records:,} records  {rate:,.0f} records/s  {share:6.1%}  ETA {left}"
        )
        if self.tty:
            self.out.write("\r" + text.ljust(72) + ("\n" if final else ""))
        else:
            self.out.write(text + "\n")
        self.out.flush()


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def render(report: Report) -> str:
    lines = [
        f"{report.file} -> {report.collection}: {report.records:,} records in "
        f"{report.batches:,} batches ({report.resumed_batches:,} acknowledged in earlier runs)",
        f"accepted {report.upserted:,}, refused {report.invalid_count:,}",
    ]
    for d in report.invalid[:REPORTED]:
        where = f"line {d['line']}" + (f" (element {d['index']})" if "index" in d else "")
        field = f" field {d['field']}:" if "field" in d else ""
        ident = f" (id {d['id']})" if "id" in d else ""
        lines.append(f"  {where}:{field} {d['reason']}{ident}")
    if report.invalid_count > min(len(report.invalid), REPORTED):
        more = report.invalid_count - min(len(report.invalid), REPORTED)
        lines.append(f"  ... and {more:,} more (--json lists up to 1,000)")
    r = report.retries
    if any(r.values()):
        lines.append(f"retried: 429 x{r['429']}, 5xx x{r['5xx']}, network x{r['network']}")
    if report.replacement is not None:
        done = "committed" if report.committed else "not committed yet"
        lines.append(f"replacement {report.replacement}: {done}")
    if report.error is not None:
        lines.append(f"upload stopped: {report.error}")
        lines.append(f"re-run the same command to go on (checkpoint {report.state})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.server:
        parser().error("--server (or SEARCHGATE_URL) is required")
    if not args.file.is_file():
        parser().error(f"{args.file}: no such file")
    try:
        source = key_source(args.store, args.path)
        options = Options(
            file=args.file,
            collection=args.collection,
            server=args.server,
            key=CachedKey(source, max_age_seconds=300),
            fmt=args.format,
            system=args.system,
            replace=args.replace,
            wait=args.wait,
            batch_records=args.batch_records,
            batch_bytes=args.batch_bytes,
            state_dir=args.state,
            restart=args.restart,
            retries=args.retries,
            timeout=args.timeout,
        )
        progress = None if args.quiet else ProgressLine(sys.stderr)
        upload = Upload(options, on_batch=progress)
    except (ValueError, ImportError, OSError) as exc:
        print(f"searchgate-upload: {exc}", file=sys.stderr)
        return EXIT_FAILED
    report = upload.run()
    if progress is not None and report.batches > report.resumed_batches:
        progress(upload, final=True)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(render(report))
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
