"""One process's index directory: a tantivy index per collection, plus a state file
that records the change-log position every committed index reflects."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson
import tantivy

from searchgate.catalog.settings import CollectionSettings
from searchgate.engines.tantivy.layout import Layout, register_analyzers

STATE_FILE = "state.json"


@dataclass
class CollectionIndex:
    name: str
    dirname: str
    layout: Layout
    settings: CollectionSettings
    index: tantivy.Index
    schema: tantivy.Schema
    searcher: tantivy.Searcher
    writer: tantivy.IndexWriter | None = None
    dirty: bool = False
    cache: dict[str, object] = field(default_factory=dict)

    def refresh(self) -> None:
        self.index.reload()
        self.searcher = self.index.searcher()
        self.cache = {}


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def open_index(path: Path, layout: Layout, create: bool) -> tuple[tantivy.Index, tantivy.Schema]:
    schema = layout.schema()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    index = tantivy.Index(schema, path=str(path), reuse=not create)
    register_analyzers(index)
    return index, schema


class SlotLock:
    """An exclusive lock on one index slot, so that each server process (or each
    ``searchgate reindex``) owns a copy of the indexes no one else writes."""

    def __init__(self, root: Path, max_slots: int = 64) -> None:
        self.root = root
        self.max_slots = max_slots
        self.path: Path | None = None
        self._fh: IO[str] | None = None

    def acquire(self, only: int | None = None) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        candidates = [only] if only is not None else list(range(self.max_slots))
        for n in candidates:
            slot = self.root / f"slot-{n}"
            slot.mkdir(exist_ok=True)
            fh = open(slot / ".lock", "w")  # noqa: SIM115 - kept open to hold the lock
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                continue
            self._fh = fh
            self.path = slot
            return slot
        raise RuntimeError(f"no free index slot under {self.root} (all {self.max_slots} in use)")

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    @staticmethod
    def free_slots(root: Path) -> list[int]:
        free: list[int] = []
        if not root.exists():
            return free
        for slot in sorted(root.glob("slot-*")):
            with open(slot / ".lock", "w") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                fcntl.flock(fh, fcntl.LOCK_UN)
            with contextlib.suppress(ValueError):
                free.append(int(slot.name.split("-", 1)[1]))
        return free


@dataclass
class SlotState:
    applied_seq: int = 0
    collections: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> dir, fp
    generation: int = 0

    @classmethod
    def load(cls, slot: Path) -> SlotState:
        path = slot / STATE_FILE
        if not path.exists():
            return cls()
        try:
            raw = orjson.loads(path.read_bytes())
            return cls(
                applied_seq=int(raw["applied_seq"]),
                collections=dict(raw["collections"]),
                generation=int(raw.get("generation", 0)),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return cls()

    def save(self, slot: Path) -> None:
        _write_atomic(
            slot / STATE_FILE,
            orjson.dumps(
                {
                    "applied_seq": self.applied_seq,
                    "collections": self.collections,
                    "generation": self.generation,
                }
            ),
        )


def remove_unreferenced(slot: Path, state: SlotState) -> None:
    keep = {c["dir"] for c in state.collections.values()}
    for child in slot.iterdir():
        if child.is_dir() and child.name.startswith("c-") and child.name not in keep:
            shutil.rmtree(child, ignore_errors=True)


def fingerprint_of(settings: CollectionSettings) -> str:
    return Layout.of(settings).fingerprint
