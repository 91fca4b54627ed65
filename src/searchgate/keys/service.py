"""Creating, listing, deleting and verifying client keys."""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from searchgate.db import Database
from searchgate.errors import Conflict, InvalidInput, NotFound
from searchgate.keys.format import check_key_format, display_prefix, generate_key
from searchgate.keys.hashing import Pepper
from searchgate.keys.models import ClientKeyRow
from searchgate.keys.scopes import ALL_SCOPES, Scope

NAME_MAX = 128
# Names and ids share one argument in the CLI (``keys delete ID|NAME``), so a name may
# not look like an id.
_ID_SHAPE = re.compile(r"^key_[0-9a-f]{16}$")


@dataclass(frozen=True)
class KeyInfo:
    id: str
    name: str
    display_prefix: str
    scopes: frozenset[Scope]
    created_at: datetime
    disabled: bool
    deleted: bool

    @property
    def usable(self) -> bool:
        return not (self.disabled or self.deleted)


@dataclass(frozen=True)
class CreatedKey:
    info: KeyInfo
    secret: str


def _info(row: ClientKeyRow) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        name=row.name,
        display_prefix=row.display_prefix,
        scopes=frozenset(Scope(s) for s in orjson.loads(row.scopes_json)),
        created_at=row.created_at,
        disabled=row.disabled_at is not None,
        deleted=row.deleted_at is not None,
    )


class KeyService:
    def __init__(self, db: Database, pepper: Pepper, cache_seconds: float = 1.0) -> None:
        self.db = db
        self.pepper = pepper
        self.cache_seconds = cache_seconds
        self._cache: dict[bytes, tuple[float, KeyInfo | None]] = {}
        self._lock = threading.Lock()

    def create(self, name: str, scopes: frozenset[Scope] = ALL_SCOPES) -> CreatedKey:
        name = name.strip()
        if not name or len(name) > NAME_MAX:
            raise InvalidInput(f"a key name has 1 to {NAME_MAX} characters", field="name")
        if _ID_SHAPE.match(name):
            raise InvalidInput("a key name may not look like a key id (key_...)", field="name")
        if not scopes:
            raise InvalidInput("a key needs at least one scope", field="scopes")
        secret = generate_key()
        row = ClientKeyRow(
            id="key_" + secrets.token_hex(8),
            name=name,
            display_prefix=display_prefix(secret),
            digest=self.pepper.digest(secret),
            pepper_id=self.pepper.id,
            scopes_json=orjson.dumps(sorted(s.value for s in scopes)).decode(),
            created_at=datetime.now(UTC),
        )
        with self.db.write() as s:
            same = s.scalar(select(ClientKeyRow).where(ClientKeyRow.name == name))
            if same is not None:
                # Deleted keys keep their name, so that logs and audits stay unambiguous.
                was = " (a deleted key; names are not reused)" if same.deleted_at else ""
                raise Conflict(f"a key named {name!r} exists already{was}", field="name")
            s.add(row)
        return CreatedKey(info=_info(row), secret=secret)

    def list(self, include_deleted: bool = False) -> list[KeyInfo]:
        with self.db.read() as s:
            q = select(ClientKeyRow).order_by(ClientKeyRow.created_at)
            if not include_deleted:
                q = q.where(ClientKeyRow.deleted_at.is_(None))
            return [_info(r) for r in s.scalars(q)]

    def get(self, id_or_name: str) -> KeyInfo:
        with self.db.read() as s:
            return _info(self._find(s, id_or_name))

    def delete(self, id_or_name: str) -> KeyInfo:
        """Irreversible: the key never authenticates again; a tombstone row stays."""
        with self.db.write() as s:
            row = self._find(s, id_or_name)
            row.deleted_at = datetime.now(UTC)
            info = _info(row)
        self.forget_cache()
        return info

    @staticmethod
    def _find(s: Session, id_or_name: str) -> ClientKeyRow:
        row = s.scalar(
            select(ClientKeyRow).where(
                ClientKeyRow.deleted_at.is_(None),
                (ClientKeyRow.id == id_or_name) | (ClientKeyRow.name == id_or_name),
            )
        )
        if row is None:
            raise NotFound(f"no key with id or name {id_or_name!r}")
        return row

    def forget_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def verify(self, presented: str) -> KeyInfo | None:
        """The key's info when it is well formed and known (usable or not), else None.

        Results are cached for ``cache_seconds``: a revocation reaches every process
        within that time without a database read on every request.
        """
        if check_key_format(presented) is not None:
            return None
        digest = self.pepper.digest(presented)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.db.read() as s:
            row = s.scalar(select(ClientKeyRow).where(ClientKeyRow.digest == digest))
            info = _info(row) if row is not None else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self.cache_seconds, info)
        return info
