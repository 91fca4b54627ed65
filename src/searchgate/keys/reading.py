"""A client key's rows as the other parts of the key service read them: by id or
name, the primary key, and a presented key (cached, so that a request costs a dict
lookup rather than a database read)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from searchgate.audit import AuditLog
from searchgate.authorizer import Authorizer
from searchgate.clock import Clock, Monotonic
from searchgate.db import Database
from searchgate.errors import NotFound, RevocationsUnconfirmed
from searchgate.keys.hashing import Pepper
from searchgate.keys.info import KeyInfo, info_of
from searchgate.keys.models import ClientKeyRow
from searchgate.keys.ratelimit import ClientRates, RateLimiter
from searchgate.keys.revocations import RevocationWatch
from searchgate_client.keyformat import check_key_format

# A database that does not answer (down, restarting, out of connections): a key that
# cannot be read is refused as unconfirmed (503), never answered with a 500.
DATABASE_DOWN = (OperationalError, InterfaceError, PoolTimeout)

# (key id, since) -> names of the systems that used the key since then.
RecentSystems = Callable[[str, datetime], list[str]]


class KeyRecords:
    """What every part of the key service shares: its dependencies and the cache."""

    def __init__(
        self,
        db: Database,
        pepper: Pepper,
        audit: AuditLog,
        authorizer: Authorizer,
        clock: Clock,
        *,
        collection_names: Callable[[], frozenset[str]],
        recent_systems: RecentSystems,
        limiter: RateLimiter,
        token_rates: ClientRates | None = None,
        cache_seconds: float = 1.0,
        delete_quiet: timedelta = timedelta(minutes=15),
        previous_peppers: Sequence[Pepper] = (),
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self.db = db
        # A key restricted to a mistyped collection would quietly find nothing: the
        # names a key is given are checked against those the catalog holds.
        self.collection_names = collection_names
        self.pepper = pepper
        # Peppers being retired: a key stored under one still verifies and is re-hashed
        # under the current pepper on its first use (docs/keys.md, "Rotating the pepper").
        self.previous_peppers = tuple(p for p in previous_peppers if p.id != pepper.id)
        self.audit = audit
        self.authorizer = authorizer
        self.clock = clock
        self.cache_seconds = cache_seconds
        self.monotonic = monotonic
        self.delete_quiet = delete_quiet
        # Deletion's quiet-period check names every system that used the key recently.
        self.recent_systems = recent_systems
        self.limiter = limiter
        # Browser tokens are public (every page of a shop carries one): each client
        # address gets a default rate of its own besides the parent key's.
        self.token_rates = token_rates
        self._cache: dict[str, tuple[float, KeyInfo | None]] = {}
        self._lock = threading.Lock()
        # Set in a serving process (``watch_revocations``): keys are refused while it
        # cannot confirm that the cache still holds every revocation.
        self.revocations: RevocationWatch | None = None

    def watch_revocations(self, watch: RevocationWatch) -> None:
        self.revocations = watch

    def unconfirmed(self) -> RevocationsUnconfirmed:
        """The refusal of a key while revocations cannot be confirmed."""
        watch = self.revocations
        after = watch.retry_after if watch is not None else 1.0
        return RevocationsUnconfirmed(
            "this server cannot confirm with its database that client keys were not "
            f"revoked; retry in {after:g} s",
            retryAfter=after,
        )

    # --- reading -------------------------------------------------------------------

    def list(self, include_deleted: bool = False) -> list[KeyInfo]:
        with self.db.read() as s:
            q = select(ClientKeyRow).order_by(ClientKeyRow.created_at, ClientKeyRow.id)
            if not include_deleted:
                q = q.where(ClientKeyRow.deleted_at.is_(None))
            return [info_of(r) for r in s.scalars(q)]

    def get(self, id_or_name: str, include_deleted: bool = False) -> KeyInfo:
        with self.db.read() as s:
            return info_of(self._find(s, id_or_name, include_deleted))

    def primary(self) -> KeyInfo | None:
        with self.db.read() as s:
            row = self._primary_row(s)
            return info_of(row) if row is not None else None

    @staticmethod
    def _primary_row(s: Session) -> ClientKeyRow | None:
        return s.scalar(
            select(ClientKeyRow).where(
                ClientKeyRow.is_primary.is_(True), ClientKeyRow.deleted_at.is_(None)
            )
        )

    @staticmethod
    def _find(s: Session, id_or_name: str, include_deleted: bool = False) -> ClientKeyRow:
        q = select(ClientKeyRow).where(
            (ClientKeyRow.id == id_or_name) | (ClientKeyRow.name == id_or_name)
        )
        if not include_deleted:
            q = q.where(ClientKeyRow.deleted_at.is_(None))
        row = s.scalar(q)
        if row is None:
            raise NotFound(f"no key with id or name {id_or_name!r}")
        return row

    @staticmethod
    def _describe(row: ClientKeyRow) -> dict[str, Any]:
        info = info_of(row)
        return {
            "name": info.name,
            "prefix": info.display_prefix,
            "scopes": sorted(x.value for x in info.scopes),
            "primary": info.primary,
            **info.restrictions.to_dict(),
        }

    # --- verifying -----------------------------------------------------------------

    def forget_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def _cached(self, cache_key: str, load: Callable[[Session], KeyInfo | None]) -> KeyInfo | None:
        now = self.monotonic()
        hit = self._cache.get(cache_key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            with self.db.read() as s:
                info = load(s)
        except DATABASE_DOWN:
            raise self.unconfirmed() from None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[cache_key] = (now + self.cache_seconds, info)
        return info

    def verify(self, presented: str) -> KeyInfo | None:
        """The key's info when it is well formed and known (usable or not), else None.

        Results are cached for ``cache_seconds``: a revocation reaches every process
        within that time without a database read on every request.
        """
        # The hot path: a key seen within the cache time costs one dict lookup, not a
        # format check and an HMAC (the process holds the presented key anyway).
        hit = self._cache.get(presented)
        if hit is not None and hit[0] > self.monotonic():
            return hit[1]
        if check_key_format(presented) is not None:
            return None
        digest = self.pepper.digest(presented)

        def load(s: Session) -> KeyInfo | None:
            row = s.scalar(select(ClientKeyRow).where(ClientKeyRow.digest == digest))
            return info_of(row) if row is not None else None

        info = self._cached(presented, load)
        if info is None and self.previous_peppers:
            try:
                info = self._rehash(presented, digest)
            except DATABASE_DOWN:
                raise self.unconfirmed() from None
            if info is not None:
                self.forget_cache()
        return info

    def _rehash(self, presented: str, digest: bytes) -> KeyInfo | None:
        """A key stored under a retiring pepper moves to the current one."""
        for old in self.previous_peppers:
            with self.db.write() as s:
                row = s.scalar(
                    select(ClientKeyRow).where(
                        ClientKeyRow.digest == old.digest(presented),
                        ClientKeyRow.pepper_id == old.id,
                    )
                )
                if row is not None:
                    row.digest = digest
                    row.pepper_id = self.pepper.id
                    return info_of(row)
        return None

    def pepper_counts(self) -> dict[str, int]:
        """Keys (tombstones included) per pepper id: a retiring pepper can be dropped
        from the configuration once no live key uses it."""
        with self.db.read() as s:
            rows = s.execute(
                select(ClientKeyRow.pepper_id, func.count())
                .where(ClientKeyRow.deleted_at.is_(None))
                .group_by(ClientKeyRow.pepper_id)
            ).all()
        return {str(pid): int(n) for pid, n in rows}

    def by_public_key_id(self, kid: str) -> KeyInfo | None:
        """The parent key of a browser token, by the fingerprint of its public half."""
        if not kid.startswith("bk_") or len(kid) > 32:
            return None

        def load(s: Session) -> KeyInfo | None:
            row = s.scalar(select(ClientKeyRow).where(ClientKeyRow.public_key_id == kid))
            return info_of(row) if row is not None else None

        return self._cached("kid:" + kid, load)
