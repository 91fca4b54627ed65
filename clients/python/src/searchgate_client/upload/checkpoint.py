"""The checkpoint of an upload: which batches the server acknowledged.

One JSON line per acknowledged batch, appended and flushed to disk before the next
batch is read, after a first line naming the file and the options. A run killed at any
moment leaves either the batch's line or nothing: an unacknowledged batch is sent
again, and since records are upserted (or staged) by id, sending one twice changes
nothing. A ``--replace`` upload also writes the id of its staged replacement before
its first batch, and a last line once the replacement is committed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from searchgate_client.upload.formats import Position

FORMAT = 1
MAX_DETAILS = 1000
"""Invalid records kept for the final report (the count covers all of them)."""


def identity(
    path: Path, *, server: str, collection: str, fmt: str, mode: str, batch: tuple[int, int]
) -> dict[str, Any]:
    """What makes two runs the same upload: the file (path, size, modification time,
    inode) and the options that decide the batches and where they go."""
    st = path.stat()
    return {
        "file": str(path.resolve()),
        "size": st.st_size,
        "mtimeNs": st.st_mtime_ns,
        "inode": st.st_ino,
        "server": server,
        "collection": collection,
        "format": fmt,
        "mode": mode,
        "batchRecords": batch[0],
        "batchBytes": batch[1],
    }


def state_path(path: Path, ident: dict[str, Any], state_dir: Path | None) -> Path:
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    where = state_dir if state_dir is not None else path.resolve().parent
    return where / f".{path.name}.searchgate-upload-{digest}.jsonl"


@dataclass
class Progress:
    """What the acknowledged batches add up to."""

    position: Position = field(default_factory=Position)
    batches: int = 0
    records: int = 0
    upserted: int = 0
    invalid_count: int = 0
    invalid: list[dict[str, Any]] = field(default_factory=list)
    # A --replace upload: the server's replacement, and whether it was committed.
    replacement: str | None = None
    committed: bool = False
    lines: int = 0
    """Lines of the checkpoint after the first that this progress is made of."""

    def note(self, entry: dict[str, Any]) -> bool:
        """Takes one line of the checkpoint; False when it does not follow."""
        if "replacement" in entry and "batch" not in entry:
            if (
                self.replacement is not None
                or self.batches
                or not isinstance(entry["replacement"], str)
            ):
                return False
            self.replacement = entry["replacement"]
        elif entry.get("committed") is True:
            if self.replacement is None or self.committed:
                return False
            self.committed = True
        elif entry.get("batch") == self.batches + 1 and not self.committed:
            self.add(entry)
        else:
            return False
        self.lines += 1
        return True

    def add(self, entry: dict[str, Any]) -> None:
        self.position = Position(entry["offset"], entry["line"], entry["index"])
        self.batches += 1
        self.records += entry["records"]
        self.upserted += entry["upserted"]
        self.invalid_count += entry["invalidCount"]
        room = MAX_DETAILS - len(self.invalid)
        self.invalid.extend(entry["invalid"][: max(0, room)])


class Checkpoint:
    def __init__(self, path: Path, ident: dict[str, Any]) -> None:
        self.path = path
        self.ident = ident

    def lock(self) -> None:
        """Holds the upload's lock file while this run lasts: a second run of the same
        upload (an overlapping cron job) stops instead of sending the same batches."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = self.path.with_name(self.path.name + ".lock").open("ab")
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; one run at a time is then yours.
            return
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise OSError(f"another run of this upload holds {self._lock.name}") from None

    def load(self) -> Progress:
        """The progress of earlier runs of the same upload (none when there were none)."""
        progress = Progress()
        try:
            lines = self.path.read_bytes().split(b"\n")
        except FileNotFoundError:
            return progress
        try:
            head = json.loads(lines[0])
        except ValueError:
            return progress
        if head != {"format": FORMAT, "upload": self.ident}:
            return progress
        for raw in lines[1:]:
            # The last line may have been cut by a kill: that batch is sent again.
            try:
                entry = json.loads(raw)
            except ValueError:
                break
            if not isinstance(entry, dict) or not progress.note(entry):
                break
        return progress

    def open(self, progress: Progress) -> None:
        """Starts the file anew with the lines of ``progress`` kept (a line cut by a
        kill is dropped)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept: list[bytes] = []
        if progress.lines:
            kept = self.path.read_bytes().split(b"\n")[1 : progress.lines + 1]
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("wb") as fh:
            fh.write(json.dumps({"format": FORMAT, "upload": self.ident}).encode() + b"\n")
            for line in kept:
                fh.write(line + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self._fh = self.path.open("ab")
        self.drop_stale()

    def drop_stale(self) -> None:
        """Removes the checkpoints of earlier versions of the same file (the path is the
        same, the size, time or inode are not): they can never be resumed."""
        mine = self.ident
        for other in self.path.parent.glob(f".{Path(mine['file']).name}.searchgate-upload-*.jsonl"):
            if other == self.path:
                continue
            try:
                with other.open("rb") as fh:
                    head = json.loads(fh.readline()).get("upload", {})
            except (OSError, ValueError, AttributeError):
                continue
            if head.get("file") == mine["file"] and any(
                head.get(k) != mine[k] for k in ("size", "mtimeNs", "inode")
            ):
                other.unlink(missing_ok=True)
                other.with_name(other.name + ".lock").unlink(missing_ok=True)

    def append(self, entry: dict[str, Any]) -> None:
        self._fh.write(json.dumps(entry, separators=(",", ":")).encode() + b"\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        for name in ("_fh", "_lock"):
            fh = getattr(self, name, None)
            if fh is not None:
                fh.close()
