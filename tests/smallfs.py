"""A small real filesystem (tmpfs with a size) that tests can fill, then give room again.

Mounting needs root. Where it is refused the tests that need it are skipped with the
reason, unless ``CI`` is set: there a skipped fault test would hide a regression.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=False, timeout=30)


class SmallFs:
    def __init__(self, path: Path, size_mb: int) -> None:
        self.path = path
        self.size_mb = size_mb
        self.filler = path / "filler"

    def fill(self) -> None:
        """Takes every free block, so that the next write that needs one fails."""
        # Unbuffered: a buffered file would fail again when closed.
        with open(self.filler, "ab", buffering=0) as fh:
            for size in (1 << 20, 4096):
                chunk = b"\0" * size
                with contextlib.suppress(OSError):
                    while True:
                        fh.write(chunk)

    def leave_free(self, mb: float) -> None:
        """Fills the filesystem up to ``mb`` MiB below its size."""
        free = os.statvfs(self.path)
        room = free.f_bavail * free.f_frsize - int(mb * (1 << 20))
        if room > 0:
            with open(self.filler, "ab", buffering=0) as fh:
                fh.write(b"\0" * room)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def remount(self, *options: str) -> None:
        done = _run("mount", "-o", ",".join(("remount", *options)), str(self.path))
        assert done.returncode == 0, done.stderr


@contextlib.contextmanager
def small_fs(path: Path, size_mb: int) -> Iterator[SmallFs]:
    path.mkdir(parents=True, exist_ok=True)
    done = _run("mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path))
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield SmallFs(path, size_mb)
    finally:
        if _run("umount", str(path)).returncode != 0:
            # Still in use by a process that did not stop: detached now, freed with it.
            _run("umount", "-l", str(path))
