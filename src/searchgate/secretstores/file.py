"""A versioned JSON file for development and single hosts.

The file is replaced atomically (a 0600 temporary file, fsync, ``os.replace``, fsync of
the directory), so a reader sees the old or the new document, never half of one. Writers
take an ``fcntl`` lock on a sibling ``.lock`` file, which makes check-and-set hold across
processes; the lock is waited for with a bound, never forever.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import stat
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from searchgate.secretstores.base import (
    FIELD,
    SecretFields,
    SecretVersion,
    StoreConflict,
    StoreError,
    StoreMisconfigured,
    StoreNotFound,
    StorePermissionDenied,
    StoreUnavailable,
)
from searchgate_client.sources import FILE_FORMAT as FORMAT


class FileStore:
    kind = "file"
    writable = True

    def __init__(
        self, path: str | os.PathLike[str], *, max_versions: int = 10, lock_timeout: float = 10.0
    ) -> None:
        if not str(path).strip():
            raise StoreMisconfigured("the secret file path is empty")
        if max_versions < 2:
            # One older version at least, or a rotation could not be rolled back.
            raise StoreMisconfigured("max_versions must be at least 2")
        self.path = Path(path).expanduser().absolute()
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.location = f"file:{self.path}"
        self.max_versions = max_versions
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"FileStore({self.location!r})"

    # --- the protocol -------------------------------------------------------------

    def read(self) -> SecretVersion:
        doc = self._load()
        if doc is None:
            raise StoreNotFound(f"{self.location}: no secret file yet")
        return self._find(doc, doc["current"])

    def read_version(self, version: str) -> SecretVersion:
        doc = self._load()
        if doc is None:
            raise StoreNotFound(f"{self.location}: no secret file yet")
        return self._find(doc, version)

    def write(self, value: str, expected_version: str | None) -> SecretVersion:
        if not value:
            raise StoreMisconfigured(f"{self.location}: refusing to write an empty key")
        with self._locked():
            doc = self._load()
            self._check(doc, expected_version)
            return self._append(doc, value)

    def restore(self, version: str, expected_version: str) -> SecretVersion:
        with self._locked():
            doc = self._load()
            self._check(doc, expected_version)
            assert doc is not None  # _check refuses a missing file with an expected version
            old = self._find(doc, version)
            if version == doc["current"]:
                return old
            # Like Vault: the old value becomes a new version, history stays linear.
            return self._append(doc, old.value)

    def check_writable(self) -> None:
        with self._locked():
            self._load()

    # --- several named values (the server secrets) -------------------------------

    def read_fields(self) -> SecretFields:
        doc = self._load(required=())
        if doc is None:
            raise StoreNotFound(f"{self.location}: no secret file yet")
        entry = next(e for e in doc["versions"] if e["version"] == doc["current"])
        values = {
            k: v
            for k, v in entry.items()
            if k not in ("version", "created_at") and isinstance(v, str) and v
        }
        return SecretFields(values=values, version=doc["current"])

    def create_fields(self, values: Mapping[str, str]) -> SecretFields:
        with self._locked():
            if self._load(required=()) is not None:
                raise StoreConflict(f"{self.location}: a secret already exists there")
            entry = {"version": "1", **values, "created_at": datetime.now(UTC).isoformat()}
            self._save({"format": FORMAT, "current": "1", "versions": [entry]})
        return SecretFields(values=dict(values), version="1")

    # --- plumbing -----------------------------------------------------------------

    def _check(self, doc: dict[str, Any] | None, expected: str | None) -> None:
        current = doc["current"] if doc else None
        if current == expected:
            return
        if current is None:
            raise StoreConflict(
                f"{self.location}: expected version {expected} but there is no secret yet"
            )
        if expected is None:
            raise StoreConflict(
                f"{self.location}: a secret already exists there; read it and pass its "
                "current version to replace it"
            )
        raise StoreConflict(
            f"{self.location}: the secret is no longer at version {expected} (someone else "
            "wrote it); read it again and decide"
        )

    def _append(self, doc: dict[str, Any] | None, value: str) -> SecretVersion:
        versions: list[dict[str, Any]] = list(doc["versions"]) if doc else []
        number = max((int(v["version"]) for v in versions), default=0) + 1
        now = datetime.now(UTC)
        entry = {"version": str(number), FIELD: value, "created_at": now.isoformat()}
        versions = [*versions, entry][-self.max_versions :]
        self._save({"format": FORMAT, "current": str(number), "versions": versions})
        return SecretVersion(value=value, version=str(number), created_at=now)

    def _find(self, doc: dict[str, Any], version: str) -> SecretVersion:
        for entry in doc["versions"]:
            if entry["version"] == version:
                return SecretVersion(
                    value=entry[FIELD],
                    version=version,
                    created_at=datetime.fromisoformat(entry["created_at"]),
                )
        kept = ", ".join(e["version"] for e in doc["versions"])
        raise StoreNotFound(
            f"{self.location}: no version {version!r} (kept: {kept}; the file keeps the last "
            f"{self.max_versions})"
        )

    def _load(self, required: tuple[str, ...] = (FIELD,)) -> dict[str, Any] | None:
        try:
            with self._os_errors("read"):
                fd = os.open(self.path, os.O_RDONLY)
        except StoreNotFound:
            return None
        with os.fdopen(fd, "rb") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            if mode & (stat.S_IWGRP | stat.S_IWOTH | stat.S_IROTH):
                raise StoreMisconfigured(
                    f"{self.location}: the file is open to other users (mode "
                    f"{stat.S_IMODE(mode):04o}); run `chmod 600 {self.path}`"
                )
            raw = fh.read()
        try:
            doc = json.loads(raw)
            ok = (
                doc.get("format") == FORMAT
                and isinstance(doc.get("current"), str)
                and all(
                    isinstance(e.get("version"), str)
                    and all(isinstance(e.get(name), str) for name in required)
                    for e in doc["versions"]
                )
                and any(e["version"] == doc["current"] for e in doc["versions"])
            )
        except (ValueError, AttributeError, KeyError, TypeError):
            ok = False
        if not ok:
            raise StoreMisconfigured(
                f"{self.location}: not a Searchgate secret file (format {FORMAT}); move it "
                "away or point the store at another path"
            )
        result: dict[str, Any] = doc
        return result

    def _save(self, doc: dict[str, Any]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        with self._os_errors("write"):
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(json.dumps(doc, indent=1).encode())
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            # The rename is durable only once the directory entry is on disk.
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._os_errors("lock"):
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreUnavailable(
                            f"{self.location}: another process has held {self.lock_path} for "
                            f"over {self.lock_timeout:g} s; is a rotation stuck?"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _os_errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError:
            raise StoreNotFound(f"{self.location}: could not {what}: no such file") from None
        except PermissionError:
            raise StorePermissionDenied(
                f"{self.location}: could not {what}: permission denied; the file and its "
                "directory must belong to the user Searchgate runs as"
            ) from None
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.ENOSPC, errno.EDQUOT):
                raise StoreUnavailable(
                    f"{self.location}: could not {what}: {exc.strerror}"
                ) from None
            raise StoreError(f"{self.location}: could not {what}: {exc.strerror}") from None
