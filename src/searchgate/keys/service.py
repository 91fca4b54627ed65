"""Client keys: creation, the primary key, rolling, disabling, deletion and verification.

Invariants the lifecycle keeps (tests/unit/test_key_lifecycle_state.py checks them
with a state machine): a deleted key never authenticates again; a disabled key
authenticates only after it is enabled; a key never gains a scope after creation; and
while any key is not deleted, exactly one of them is the primary key.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from searchgate.audit import Action, AuditLog
from searchgate.authorizer import Authorizer
from searchgate.clock import Clock, aware, utc_now
from searchgate.db import Database
from searchgate.errors import Conflict, InvalidInput, NotFound
from searchgate.keys.browser_tokens import derive_keypair, public_key_id
from searchgate.keys.format import check_key_format, display_prefix, generate_key
from searchgate.keys.hashing import Pepper
from searchgate.keys.info import CreatedKey, KeyInfo, info_of
from searchgate.keys.models import ClientKeyRow
from searchgate.keys.ratelimit import RateLimiter
from searchgate.keys.restrictions import Restrictions
from searchgate.keys.scopes import Scope
from searchgate.permissions import Actor, CredentialKind, Permission

NAME_MAX = 128
REASON_MAX = 200
MAX_ROLL_DELAY = timedelta(days=30)
# Names and ids share one argument in the CLI (``keys delete ID|NAME``), so a name may
# not look like an id.
_ID_SHAPE = re.compile(r"^key_[0-9a-f]{16}$")

# (key id, since) -> names of the systems that used the key since then.
RecentSystems = Callable[[str, datetime], list[str]]


class KeyInUse(Conflict):
    code = "key_in_use"


class UnknownCollection(InvalidInput):
    code = "unknown_collection"


def unknown_collection_warnings(unknown: Sequence[str]) -> list[str]:
    """What a caller that allowed unknown collections is told about each."""
    return [
        f"no collection is named {c!r} yet: the key works there once it exists" for c in unknown
    ]


def _scopes_json(scopes: frozenset[Scope]) -> str:
    return orjson.dumps(sorted(s.value for s in scopes)).decode()


def _apply_restrictions(row: ClientKeyRow, r: Restrictions) -> None:
    row.collections_json = (
        orjson.dumps(sorted(r.collections)).decode() if r.collections is not None else None
    )
    row.expires_at = r.expires_at
    row.ip_ranges_json = orjson.dumps([str(n) for n in r.ip_ranges]).decode()
    row.origins_json = orjson.dumps(sorted(r.origins)).decode()
    row.rate_limit_per_minute = r.rate_limit_per_minute


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidInput(f"a key name has 1 to {NAME_MAX} characters", field="name")
    if _ID_SHAPE.match(name):
        raise InvalidInput("a key name may not look like a key id (key_...)", field="name")
    return name


class KeyService:
    def __init__(
        self,
        db: Database,
        pepper: Pepper,
        audit: AuditLog,
        authorizer: Authorizer,
        clock: Clock = utc_now,
        cache_seconds: float = 1.0,
        delete_quiet: timedelta = timedelta(minutes=15),
        previous_peppers: Sequence[Pepper] = (),
        *,
        collection_names: Callable[[], frozenset[str]],
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
        self.delete_quiet = delete_quiet
        self.recent_systems: RecentSystems = lambda _key_id, _since: []
        self.limiter = RateLimiter()
        self._cache: dict[str, tuple[float, KeyInfo | None]] = {}
        self._lock = threading.Lock()

    # --- creating ------------------------------------------------------------------

    def create(
        self,
        actor: Actor,
        name: str,
        scopes: frozenset[Scope],
        restrictions: Restrictions | None = None,
        primary: bool = False,
        allow_unknown_collections: bool = False,
    ) -> CreatedKey:
        """A new key; the secret is in the result only. The first live key is primary.
        Collections that do not exist are refused unless ``allow_unknown_collections``."""
        name = _check_name(name)
        if not scopes:
            raise InvalidInput("a key needs at least one scope", field="scopes")
        expires_at = restrictions.expires_at if restrictions is not None else None
        if expires_at is not None and expires_at <= self.clock():
            # A key born expired is a mistyped date: it would never authenticate.
            raise InvalidInput(
                f"the expiry {expires_at.isoformat()} is not in the future (UTC)",
                field="expiresAt",
            )
        self.authorizer.authorize(
            actor, Permission.KEYS_MANAGE, Action.KEY_CREATE, target=name, sensitive=True
        )
        restrictions = restrictions or Restrictions()
        if not allow_unknown_collections:
            self._refuse_unknown(restrictions.collections or frozenset())
        with self.db.write() as s:
            current = self._primary_row(s)
            row, secret = self._new_row(s, actor, name, scopes, restrictions)
            replaced = None
            if primary or current is None:
                replaced = self._make_primary(s, row, current)
            s.flush()
            self.audit.record(
                s,
                actor,
                Action.KEY_CREATE,
                target=row.id,
                details={**self._describe(row), "replaces": replaced.id if replaced else None},
            )
            created = CreatedKey(info=info_of(row), secret=secret, replaced=replaced)
        self.forget_cache()
        return created

    def new_primary(self, actor: Actor, name: str | None = None) -> CreatedKey:
        """A new primary key with the scopes and restrictions of the current one (its
        expiry aside); the old key keeps working and is marked as the one to retire."""
        self.authorizer.authorize(
            actor, Permission.KEYS_MANAGE, Action.KEY_NEW_PRIMARY, sensitive=True
        )
        with self.db.write() as s:
            created = self.new_primary_in(s, actor, name)
        self.forget_cache()
        return created

    # The three ``*_in`` methods work inside the caller's transaction, so that a key
    # rotation records its own state in the same commit as the key change (a crash can
    # never leave a new key the rotation does not know about). The caller authorizes
    # and calls ``forget_cache()`` after the commit.

    def new_primary_in(
        self,
        s: Session,
        actor: Actor,
        name: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> CreatedKey:
        current = self._primary_row(s)
        if current is None:
            raise NotFound("there is no primary key to replace; create a key first")
        return self._successor(s, actor, current, name, Action.KEY_NEW_PRIMARY, details or {})

    def restore_primary_in(self, s: Session, actor: Actor, key_id: str) -> KeyInfo:
        """Make ``key_id`` the usable primary again (enabled, no longer retiring)."""
        row = self._find(s, key_id)
        if row.disabled_at is not None:
            was = row.disabled_reason
            row.disabled_at = None
            row.disabled_reason = None
            self.audit.record(
                s,
                actor,
                Action.KEY_ENABLE,
                target=row.id,
                details={**self._describe(row), "wasDisabledFor": was},
            )
        self._promote(s, actor, row)
        row.retiring_since = None
        return info_of(row)

    def _promote(self, s: Session, actor: Actor, row: ClientKeyRow) -> None:
        """``row`` becomes the primary key (audited), unless it is already."""
        current = self._primary_row(s)
        if current is not None and current.id == row.id:
            return
        replaced = self._make_primary(s, row, current)
        s.flush()
        self.audit.record(
            s,
            actor,
            Action.KEY_UPDATE,
            target=row.id,
            details={**self._describe(row), "replaces": replaced.id if replaced else None},
        )

    def retract_in(self, s: Session, actor: Actor, key_id: str, reason: str) -> KeyInfo:
        """Delete a key that was never handed out (its secret was lost or the rotation
        that made it was rolled back): no name to type, no quiet period. Refuses the
        primary key: restore the previous one first."""
        return self.delete_in(s, actor, key_id, {"forced": True, "reason": reason[:REASON_MAX]})

    def delete_in(self, s: Session, actor: Actor, key_id: str, details: dict[str, Any]) -> KeyInfo:
        """Delete a key in the caller's transaction, whose own checks stand in for the
        name and the quiet period (a rotation's drain: quiet, then disabled for its
        probation); ``details`` say which. Refuses the primary key."""
        row = self._find(s, key_id)
        if row.is_primary:
            raise Conflict(f"key {row.name!r} is the primary key; restore the previous one first")
        row.deleted_at = self.clock()
        self.audit.record(
            s, actor, Action.KEY_DELETE, target=row.id, details={**self._describe(row), **details}
        )
        return info_of(row)

    def roll(
        self, actor: Actor, id_or_name: str, expires_in: timedelta, name: str | None = None
    ) -> CreatedKey:
        """Replace a key by a copy, and let the old one expire after ``expires_in``."""
        if not (timedelta(0) <= expires_in <= MAX_ROLL_DELAY):
            raise InvalidInput(
                f"the old key expires between now and {MAX_ROLL_DELAY.days} days from now",
                field="expiresInSeconds",
            )
        self.authorizer.authorize(
            actor, Permission.KEYS_MANAGE, Action.KEY_ROLL, target=id_or_name, sensitive=True
        )
        with self.db.write() as s:
            old = self._find(s, id_or_name)
            now = self.clock()
            at = now + expires_in
            old_expiry = aware_or_none(old.expires_at)
            if old_expiry is None or at < old_expiry:
                old.expires_at = at
            created = self._successor(
                s, actor, old, name, Action.KEY_ROLL, {"oldKeyExpiresAt": at.isoformat()}
            )
        self.forget_cache()
        return created

    def _successor(
        self,
        s: Session,
        actor: Actor,
        old: ClientKeyRow,
        name: str | None,
        action: Action,
        extra: dict[str, Any],
    ) -> CreatedKey:
        old_info = info_of(old)
        copied = Restrictions(
            collections=old_info.restrictions.collections,
            ip_ranges=old_info.restrictions.ip_ranges,
            origins=old_info.restrictions.origins,
            rate_limit_per_minute=old_info.restrictions.rate_limit_per_minute,
        )
        new_name = _check_name(name) if name else self._free_name(s, old.name)
        row, secret = self._new_row(s, actor, new_name, old_info.scopes, copied)
        if old.is_primary:
            self._make_primary(s, row, old)
        old.retiring_since = old.retiring_since or self.clock()
        s.flush()
        self.audit.record(
            s,
            actor,
            action,
            target=row.id,
            details={**self._describe(row), "replaces": old.id, **extra},
        )
        return CreatedKey(info=info_of(row), secret=secret, replaced=info_of(old))

    def _new_row(
        self, s: Session, actor: Actor, name: str, scopes: frozenset[Scope], r: Restrictions
    ) -> tuple[ClientKeyRow, str]:
        same = s.scalar(select(ClientKeyRow).where(ClientKeyRow.name == name))
        if same is not None:
            # Deleted keys keep their name, so that logs and audits stay unambiguous.
            was = " (a deleted key; names are not reused)" if same.deleted_at else ""
            raise Conflict(f"a key named {name!r} exists already{was}", field="name")
        secret = generate_key()
        _private, public = derive_keypair(secret)
        row = ClientKeyRow(
            id="key_" + secrets.token_hex(8),
            name=name,
            display_prefix=display_prefix(secret),
            digest=self.pepper.digest(secret),
            pepper_id=self.pepper.id,
            scopes_json=_scopes_json(scopes),
            created_at=self.clock(),
            created_by=actor.name[:320],
            is_primary=False,
            public_key=public,
            public_key_id=public_key_id(public),
            ip_ranges_json="[]",
            origins_json="[]",
        )
        _apply_restrictions(row, r)
        s.add(row)
        return row, secret

    def _free_name(self, s: Session, base: str) -> str:
        stem = re.sub(r" \(\d{4}-\d{2}-\d{2}(?: #\d+)?\)$", "", base)[: NAME_MAX - 20]
        day = self.clock().date().isoformat()
        taken = set(s.scalars(select(ClientKeyRow.name).where(ClientKeyRow.name.like(f"{stem}%"))))
        candidate = f"{stem} ({day})"
        n = 2
        while candidate in taken:
            candidate = f"{stem} ({day} #{n})"
            n += 1
        return candidate

    def _make_primary(
        self, s: Session, row: ClientKeyRow, current: ClientKeyRow | None
    ) -> KeyInfo | None:
        if current is not None and current.id != row.id:
            current.is_primary = False
            current.retiring_since = current.retiring_since or self.clock()
        row.is_primary = True
        row.retiring_since = None
        return info_of(current) if current is not None and current.id != row.id else None

    # --- changing ------------------------------------------------------------------

    def make_primary(self, actor: Actor, id_or_name: str) -> KeyInfo:
        """Make an existing key the primary again (a rotation's rollback uses it)."""
        self.authorizer.authorize(
            actor, Permission.KEYS_MANAGE, Action.KEY_UPDATE, target=id_or_name, sensitive=True
        )
        with self.db.write() as s:
            row = self._find(s, id_or_name)
            self._promote(s, actor, row)
            info = info_of(row)
        self.forget_cache()
        return info

    def update(
        self,
        actor: Actor,
        id_or_name: str,
        restrictions: Restrictions | None = None,
        name: str | None = None,
        allow_unknown_collections: bool = False,
    ) -> KeyInfo:
        """Rename a key or change its restrictions (never its scopes: a key does not
        gain rights after it was handed out; create a new one instead). Collections it
        did not have before must exist, unless ``allow_unknown_collections``."""
        self.authorizer.authorize(
            actor, Permission.KEYS_MANAGE, Action.KEY_UPDATE, target=id_or_name, sensitive=True
        )
        with self.db.write() as s:
            row = self._find(s, id_or_name)
            before = self._describe(row)
            if restrictions is not None and not allow_unknown_collections:
                had = info_of(row).restrictions.collections or frozenset()
                self._refuse_unknown((restrictions.collections or frozenset()) - had)
            if name is not None and _check_name(name) != row.name:
                new_name = _check_name(name)
                if s.scalar(select(ClientKeyRow.id).where(ClientKeyRow.name == new_name)):
                    raise Conflict(f"a key named {new_name!r} exists already", field="name")
                row.name = new_name
            if restrictions is not None:
                _apply_restrictions(row, restrictions)
            after = self._describe(row)
            if after != before:
                self.audit.record(
                    s,
                    actor,
                    Action.KEY_UPDATE,
                    target=row.id,
                    details={"before": before, "after": after},
                )
            info = info_of(row)
        self.forget_cache()
        return info

    def set_expiry(self, actor: Actor, id_or_name: str, expires_at: datetime | None) -> KeyInfo:
        """Move the time a key stops working (a roll set one on the old key), or cancel
        it with None. A time in the past is refused: disable the key to stop it now."""
        self.authorizer.authorize(
            actor, Permission.KEYS_MANAGE, Action.KEY_EXPIRY, target=id_or_name, sensitive=True
        )
        if expires_at is not None and aware(expires_at) <= self.clock():
            raise InvalidInput(
                "the expiry must be in the future (to stop the key now, disable it)",
                field="expiresAt",
            )
        with self.db.write() as s:
            row = self._find(s, id_or_name)
            before = aware_or_none(row.expires_at)
            after = aware(expires_at) if expires_at is not None else None
            if before != after:
                row.expires_at = after
                self.audit.record(
                    s,
                    actor,
                    Action.KEY_EXPIRY,
                    target=row.id,
                    details={
                        "name": row.name,
                        "before": before.isoformat() if before else None,
                        "after": after.isoformat() if after else None,
                    },
                )
            info = info_of(row)
        self.forget_cache()
        return info

    def unknown_collections(self, names: frozenset[str] | None) -> list[str]:
        """Those of ``names`` that no collection has (None: every collection)."""
        if not names:
            return []
        known = self.collection_names()
        return sorted(n for n in names if n not in known)

    def _refuse_unknown(self, names: frozenset[str]) -> None:
        unknown = self.unknown_collections(names)
        if unknown:
            listed = ", ".join(repr(n) for n in unknown)
            raise UnknownCollection(
                f"no collection is named {listed}: check the spelling, or allow "
                "collections that do not exist yet",
                field="collections",
                unknown=unknown,
            )

    def disable(self, actor: Actor, id_or_name: str, reason: str | None = None) -> KeyInfo:
        """Reversible and immediate: every process refuses the key within the cache time."""
        reason = (reason or "").strip()[:REASON_MAX] or None
        self.authorizer.authorize(
            actor, Permission.KEYS_MANAGE, Action.KEY_DISABLE, target=id_or_name
        )
        with self.db.write() as s:
            row = self._find(s, id_or_name)
            if row.disabled_at is None:
                row.disabled_at = self.clock()
                row.disabled_reason = reason
                self.audit.record(
                    s,
                    actor,
                    Action.KEY_DISABLE,
                    target=row.id,
                    details={**self._describe(row), "reason": reason},
                )
            info = info_of(row)
        self.forget_cache()
        return info

    def enable(self, actor: Actor, id_or_name: str) -> KeyInfo:
        self.authorizer.authorize(
            actor, Permission.KEYS_MANAGE, Action.KEY_ENABLE, target=id_or_name, sensitive=True
        )
        with self.db.write() as s:
            row = self._find(s, id_or_name)
            if row.disabled_at is not None:
                was = row.disabled_reason
                row.disabled_at = None
                row.disabled_reason = None
                self.audit.record(
                    s,
                    actor,
                    Action.KEY_ENABLE,
                    target=row.id,
                    details={**self._describe(row), "wasDisabledFor": was},
                )
            info = info_of(row)
        self.forget_cache()
        return info

    def in_use(self, info: KeyInfo) -> list[str]:
        """Systems that used the key within the quiet period (empty: safe to delete)."""
        since = self.clock() - self.delete_quiet
        systems = self.recent_systems(info.id, since)
        if not systems and info.last_used_at is not None and info.last_used_at >= since:
            systems = [info.last_system or "unknown"]
        return systems

    def delete(
        self, actor: Actor, id_or_name: str, confirm_name: str, force: bool = False
    ) -> KeyInfo:
        """Irreversible: the key never authenticates again; a tombstone row stays with
        its metadata for the change log. Needs the key's name typed out, a recent
        re-authentication for sessions, and a key that nobody used within the quiet
        period (or ``force``)."""
        self.authorizer.authorize(
            actor, Permission.KEYS_MANAGE, Action.KEY_DELETE, target=id_or_name, sensitive=True
        )
        with self.authorizer.denials(actor, Action.KEY_DELETE, target=id_or_name):
            target = self.get(id_or_name)
            if confirm_name.strip() != target.name:
                raise InvalidInput(
                    "type the key's name exactly to confirm its deletion", field="confirmName"
                )
            systems = self.in_use(target)
            if systems and not force:
                minutes = int(self.delete_quiet.total_seconds() // 60)
                raise KeyInUse(
                    f"key {target.name!r} was used within the last {minutes} min by "
                    f"{', '.join(systems)}; move those systems to another key and wait, "
                    "disable the key first to see who breaks, or force the deletion",
                    systems=systems,
                )
            with self.db.write() as s:
                row = self._find(s, target.id)
                others = s.scalar(
                    select(ClientKeyRow.id).where(
                        ClientKeyRow.deleted_at.is_(None), ClientKeyRow.id != row.id
                    )
                )
                if row.is_primary and others is not None:
                    raise Conflict(
                        f"key {row.name!r} is the primary key; make another key primary "
                        "first (create a new primary key, or make an existing one primary)"
                    )
                row.deleted_at = self.clock()
                row.is_primary = False
                self.audit.record(
                    s,
                    actor,
                    Action.KEY_DELETE,
                    target=row.id,
                    details={
                        **self._describe(row),
                        "forced": bool(force and systems),
                        "recentSystems": systems,
                    },
                )
                info = info_of(row)
        self.forget_cache()
        return info

    def report_leak(
        self, presented: str, ip: str | None = None, user_agent: str | None = None
    ) -> KeyInfo | None:
        """Anyone holding a leaked key can switch it off: holding it is the proof."""
        if check_key_format(presented) is not None:
            return None
        digests = [p.digest(presented) for p in (self.pepper, *self.previous_peppers)]
        with self.db.write() as s:
            row = s.scalar(
                select(ClientKeyRow).where(
                    ClientKeyRow.digest.in_(digests), ClientKeyRow.deleted_at.is_(None)
                )
            )
            if row is None:
                return None
            reporter = Actor(
                kind=CredentialKind.CLIENT_KEY,
                name="leak report",
                token_id=row.id,
                ip=ip,
                user_agent=user_agent,
            )
            already = row.disabled_at is not None
            if not already:
                row.disabled_at = self.clock()
            row.disabled_reason = "leak reported"
            self.audit.record(
                s,
                reporter,
                Action.KEY_LEAK_REPORTED,
                target=row.id,
                details={**self._describe(row), "wasDisabled": already},
            )
            info = info_of(row)
        self.forget_cache()
        return info

    def record_use(
        self, s: Session, key_id: str, at: datetime, ip: str | None, system: str | None
    ) -> None:
        """Last use on the key row, in the usage flusher's transaction."""
        # A late flush from another process must not move the last use back in time.
        s.execute(
            update(ClientKeyRow)
            .where(
                ClientKeyRow.id == key_id,
                (ClientKeyRow.last_used_at.is_(None)) | (ClientKeyRow.last_used_at < at),
            )
            .values(last_used_at=at, last_ip=(ip or "")[:64] or None, last_system=system)
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
        now = time.monotonic()
        hit = self._cache.get(cache_key)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.db.read() as s:
            info = load(s)
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
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        if check_key_format(presented) is not None:
            return None
        digest = self.pepper.digest(presented)

        def load(s: Session) -> KeyInfo | None:
            row = s.scalar(select(ClientKeyRow).where(ClientKeyRow.digest == digest))
            return info_of(row) if row is not None else None

        info = self._cached(presented, load)
        if info is None and self.previous_peppers:
            info = self._rehash(presented, digest)
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


def aware_or_none(at: datetime | None) -> datetime | None:
    return aware(at) if at is not None else None
