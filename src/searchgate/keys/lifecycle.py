"""Client keys from creation on: the primary key, rolling, renaming, restrictions,
expiry, disabling and enabling, and a leak report.

Invariants the lifecycle keeps (tests/database/test_key_lifecycle_state.py checks them
with a state machine): a deleted key never authenticates again; a disabled key
authenticates only after it is enabled; a key never gains a scope after creation; and
while any key is not deleted, exactly one of them is the primary key.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from searchgate.audit import Action
from searchgate.clock import aware
from searchgate.errors import Conflict, InvalidInput, NotFound
from searchgate.keys.info import CreatedKey, KeyInfo, info_of
from searchgate.keys.models import ClientKeyRow
from searchgate.keys.reading import KeyRecords
from searchgate.keys.restrictions import Restrictions
from searchgate.keys.scopes import Scope
from searchgate.notify import KEYS, notify
from searchgate.permissions import Actor, CredentialKind, Permission
from searchgate_client.browser_tokens import derive_keypair, public_key_id
from searchgate_client.keyformat import check_key_format, display_prefix, generate_key

NAME_MAX = 128
REASON_MAX = 200
MAX_ROLL_DELAY = timedelta(days=30)
# Names and ids share one argument in the CLI (``keys delete ID|NAME``), so a name may
# not look like an id.
_ID_SHAPE = re.compile(r"^key_[0-9a-f]{16}$")


class UnknownCollection(InvalidInput):
    code = "unknown_collection"


def unknown_collection_warnings(unknown: Sequence[str]) -> list[str]:
    """What a caller that allowed unknown collections is told about each."""
    return [
        f"no collection is named {c!r} yet: the key works there once it exists" for c in unknown
    ]


def _apply_restrictions(row: ClientKeyRow, r: Restrictions) -> None:
    row.collections = sorted(r.collections) if r.collections is not None else None
    row.expires_at = r.expires_at
    row.ip_ranges = [str(n) for n in r.ip_ranges]
    row.origins = sorted(r.origins)
    row.rate_limit_per_minute = r.rate_limit_per_minute


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidInput(f"a key name has 1 to {NAME_MAX} characters", field="name")
    if _ID_SHAPE.match(name):
        raise InvalidInput("a key name may not look like a key id (key_...)", field="name")
    return name


class KeyChanges(KeyRecords):
    """What every change to a key shares, with deletion (keys/deletion.py) too."""

    def _record(
        self, s: Session, actor: Actor, action: Action, row: ClientKeyRow, details: dict[str, Any]
    ) -> None:
        """Audit a change to ``row``: the key as it now is, and what ``details`` add;
        and wake the key caches of every server process when it commits."""
        self.audit.record(
            s, actor, action, target=row.id, details={**self._describe(row), **details}
        )
        notify(s, KEYS, row.id)


class KeyLifecycle(KeyChanges):
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
            self._record(
                s, actor, Action.KEY_CREATE, row, {"replaces": replaced.id if replaced else None}
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
    # and calls ``forget_cache()`` after the commit. (``delete_in`` is with deletion.)

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
        self._enable_row(s, actor, row)
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
        self._record(
            s, actor, Action.KEY_UPDATE, row, {"replaces": replaced.id if replaced else None}
        )

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
        self._record(s, actor, action, row, {"replaces": old.id, **extra})
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
            scopes=sorted(s.value for s in scopes),
            created_at=self.clock(),
            created_by=actor.name[:320],
            is_primary=False,
            public_key=public,
            public_key_id=public_key_id(public),
            ip_ranges=[],
            origins=[],
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
        return self._change(id_or_name, lambda s, row: self._promote(s, actor, row))

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

        def update(s: Session, row: ClientKeyRow) -> None:
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

        return self._change(id_or_name, update)

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

        def set_expiry(s: Session, row: ClientKeyRow) -> None:
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

        return self._change(id_or_name, set_expiry)

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

        def disable(s: Session, row: ClientKeyRow) -> None:
            if row.disabled_at is None:
                row.disabled_at = self.clock()
                row.disabled_reason = reason
                self._record(s, actor, Action.KEY_DISABLE, row, {"reason": reason})

        return self._change(id_or_name, disable)

    def enable(self, actor: Actor, id_or_name: str) -> KeyInfo:
        self.authorizer.authorize(
            actor, Permission.KEYS_MANAGE, Action.KEY_ENABLE, target=id_or_name, sensitive=True
        )
        return self._change(id_or_name, lambda s, row: self._enable_row(s, actor, row))

    def _change(self, id_or_name: str, change: Callable[[Session, ClientKeyRow], None]) -> KeyInfo:
        """``change`` the key in one transaction; the key cache forgets it after the commit."""
        with self.db.write() as s:
            row = self._find(s, id_or_name)
            change(s, row)
            notify(s, KEYS, row.id)
            info = info_of(row)
        self.forget_cache()
        return info

    def _enable_row(self, s: Session, actor: Actor, row: ClientKeyRow) -> None:
        if row.disabled_at is not None:
            was = row.disabled_reason
            row.disabled_at = None
            row.disabled_reason = None
            self._record(s, actor, Action.KEY_ENABLE, row, {"wasDisabledFor": was})

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
            self._record(s, reporter, Action.KEY_LEAK_REPORTED, row, {"wasDisabled": already})
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


def aware_or_none(at: datetime | None) -> datetime | None:
    return aware(at) if at is not None else None
