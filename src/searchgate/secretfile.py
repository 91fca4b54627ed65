"""Server secrets kept as files in the data directory's secrets folder."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def read_secret(secrets_dir: Path, filename: str) -> bytes | None:
    """The secret in ``secrets_dir/filename``, or None when there is none (nothing is
    made: a node joining a database built with other secrets must not invent its own)."""
    try:
        value = (secrets_dir / filename).read_text().strip()
    except FileNotFoundError:
        return None
    return value.encode("utf-8") or None


def load_or_create_secret(secrets_dir: Path, filename: str) -> bytes:
    """The secret in ``secrets_dir/filename`` (mode 0600), made on first use.

    Several processes may start at once: each writes its own temporary file and links
    it into place; link() fails for all but the first, and every process then reads
    the winner's secret.
    """
    path = secrets_dir / filename
    if not path.exists():
        secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text().strip().encode("utf-8")
