"""Putting the secret store and the primary key back in agreement outside a rotation.

A primary key replaced by hand (Key Management's "Create new primary key") leaves the
store holding the previous key, and a rotation cannot start until the two agree. Two
ways back, each needing a recent re-authentication and each in the change log: write
the new primary key to the store (its secret was shown once; the person pastes it), or
make the key the store holds the primary key again (``KeyService.make_primary``).
"""

from __future__ import annotations

from dataclasses import dataclass

from searchgate.audit import Action
from searchgate.errors import Conflict, InvalidInput, Unavailable
from searchgate.permissions import Actor, Permission
from searchgate.rotation.service import RotationService
from searchgate.rotation.store_ops import same_secret
from searchgate.secretstores.base import SecretStore, StoreConflict, StoreError, StoreNotFound


@dataclass(frozen=True)
class StoreWritten:
    key_name: str
    version_before: str | None
    version_after: str


def write_primary_to_store(
    rotations: RotationService, actor: Actor, store: SecretStore, secret: str
) -> StoreWritten:
    """Writes ``secret`` to ``store`` with check-and-set, once it is known to be the
    usable primary key of this server and no rotation is under way."""
    audit, keys = rotations.audit, rotations.keys
    rotations.authorizer.authorize(
        actor,
        Permission.KEYS_MANAGE,
        Action.ROTATION_STORE_WRITE,
        target=store.location,
        sensitive=True,
    )
    info = keys.verify(secret.strip())
    primary = keys.primary()
    if info is None or primary is None or info.id != primary.id:
        raise InvalidInput(
            "that is not the secret of the primary key (it was shown once, when the key "
            "was made); paste it exactly, or make the stored key primary again",
            field="secret",
        )
    if not info.usable(keys.clock()):
        raise Conflict(f"the primary key {info.name} does not work ({info.state(keys.clock())})")
    if rotations.overview(actor).rotation is not None:
        raise Conflict("a rotation is under way: continue or abort it instead")
    try:
        try:
            current = store.read()
        except StoreNotFound:
            current = None
        if current is not None and same_secret(current.value, secret.strip()):
            return StoreWritten(info.name, current.version, current.version)
        written = store.write(secret.strip(), expected_version=current.version if current else None)
    except StoreConflict:
        raise Conflict(
            f"{store.location} changed while it was written: reload and check it"
        ) from None
    except StoreError as exc:
        raise Unavailable(f"the store is not usable: {exc.message}") from None
    before = current.version if current else None
    with audit.transaction() as s:
        audit.record(
            s,
            actor,
            Action.ROTATION_STORE_WRITE,
            target=store.location,
            details={
                "keyId": info.id,
                "name": info.name,
                "store": store.kind,
                "versionBefore": before,
                "versionAfter": written.version,
            },
        )
    return StoreWritten(info.name, before, written.version)


def restore_stored_primary(
    rotations: RotationService, actor: Actor, store: SecretStore, key_id: str
) -> str:
    """Makes ``key_id``, the key the store holds, the primary key again (the key made by
    hand then retires). Returns its name."""
    keys = rotations.keys
    rotations.authorizer.authorize(
        actor, Permission.KEYS_MANAGE, Action.KEY_UPDATE, target=key_id, sensitive=True
    )
    if rotations.overview(actor).rotation is not None:
        raise Conflict("a rotation is under way: continue or abort it instead")
    try:
        stored = keys.verify(store.read().value)
    except StoreError as exc:
        raise Unavailable(f"the store is not usable: {exc.message}") from None
    if stored is None or stored.id != key_id:
        raise Conflict(f"{store.location} no longer holds that key: reload the page")
    return keys.make_primary(actor, key_id).name
