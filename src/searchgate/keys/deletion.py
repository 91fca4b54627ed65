"""Deleting a client key, and the guards before it: the name typed out, a recent
re-authentication, and a quiet period in which no system used the key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from searchgate.audit import Action
from searchgate.errors import Conflict, InvalidInput
from searchgate.keys.info import KeyInfo, info_of
from searchgate.keys.lifecycle import REASON_MAX, KeyChanges
from searchgate.keys.models import ClientKeyRow
from searchgate.permissions import Actor, Permission


class KeyInUse(Conflict):
    code = "key_in_use"


class KeyDeletion(KeyChanges):
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
                self._record(
                    s,
                    actor,
                    Action.KEY_DELETE,
                    row,
                    {"forced": bool(force and systems), "recentSystems": systems},
                )
                info = info_of(row)
        self.forget_cache()
        return info

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
        self._record(s, actor, Action.KEY_DELETE, row, details)
        return info_of(row)
