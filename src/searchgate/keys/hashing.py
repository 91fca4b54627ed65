"""Key digests: HMAC-SHA256 with a server pepper, tagged with the pepper's id."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pepper:
    id: str
    secret: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> Pepper:
        return cls(id=hashlib.sha256(b"pepper-id:" + secret).hexdigest()[:12], secret=secret)

    def digest(self, key: str) -> bytes:
        return hmac.new(self.secret, key.encode("utf-8"), hashlib.sha256).digest()


def load_or_create_pepper(secrets_dir: Path, configured: str | None) -> Pepper:
    if configured:
        return Pepper.from_secret(configured.encode("utf-8"))
    path = secrets_dir / "key-pepper"
    if not path.exists():
        secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
            fh.flush()
            os.fsync(fh.fileno())
        # link() fails if another process won the race; both then read the winner's.
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return Pepper.from_secret(path.read_text().strip().encode("utf-8"))
