"""Key digests: HMAC-SHA256 with a server pepper, tagged with the pepper's id."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

PEPPER_FILE = "key-pepper"


@dataclass(frozen=True)
class Pepper:
    id: str
    secret: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> Pepper:
        return cls(id=hashlib.sha256(b"pepper-id:" + secret).hexdigest()[:12], secret=secret)

    def digest(self, key: str) -> bytes:
        return hmac.new(self.secret, key.encode("utf-8"), hashlib.sha256).digest()


def previous_peppers(secrets_dir: Path, configured: list[str]) -> list[Pepper]:
    """Retiring peppers: from the setting, and from ``key-pepper.previous`` (one per
    line) in the secrets folder."""
    values = list(configured)
    path = secrets_dir / "key-pepper.previous"
    if path.exists():
        values += [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [Pepper.from_secret(v.encode("utf-8")) for v in values]
