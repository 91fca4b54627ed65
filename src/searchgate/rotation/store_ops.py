"""The runner's dealings with the secret store and the checks around them: step 1's
preconditions, step 3's check-and-set write, and the store's part of an abort."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from searchgate.keys.info import KeyState
from searchgate.rotation.backend import RotationBackend, RotationView
from searchgate.rotation.events import (
    AbortRefused,
    EventKind,
    PreconditionFailed,
    RotationEvent,
    StoreFailed,
)
from searchgate.secretstores.base import (
    SecretStore,
    SecretVersion,
    StoreConflict,
    StoreError,
    StoreNotFound,
    StoreUnavailable,
)

NEEDED = frozenset({"admin:keys:manage", "admin:audit:read"})


def same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def check_preconditions(
    backend: RotationBackend, store: SecretStore, expected_key: str
) -> tuple[str, str]:
    """Step 1's checks, all read-only: the token's permissions, the store reachable
    and writable, and the store holding the primary key. Returns (store version,
    key id)."""
    missing = sorted(NEEDED - backend.permissions())
    if missing:
        raise PreconditionFailed(
            f"the admin token lacks {', '.join(missing)}: a rotation manages keys and "
            "checks the change log at the end"
        )
    if not store.writable:
        raise PreconditionFailed(
            f"{store.location} is read-only: a rotation writes the new key there; "
            "use a vault, aws or file store"
        )
    try:
        store.check_writable()
        current = store.read()
    except StoreNotFound:
        raise PreconditionFailed(
            f"{store.location} holds no key yet: put the current primary key there "
            "first (a rotation replaces the key the store holds)"
        ) from None
    except StoreError as exc:
        raise PreconditionFailed(f"the store is not usable: {exc.message}") from None
    check = backend.check_key(current.value)
    if not check.ok:
        raise PreconditionFailed(
            f"the key in {store.location} (version {current.version}) is refused by "
            f"the server ({check.code}); the store must hold the current primary key"
        )
    if check.key_id != expected_key:
        raise PreconditionFailed(
            f"{store.location} holds key {check.key_id}, not the primary key "
            f"{expected_key}: systems reading this store do not use the key being "
            "replaced. Put the primary key in the store, or make its key primary, first"
        )
    return current.version, expected_key


def write_new_key(
    store: SecretStore,
    secret: str,
    before: str,
    attempts: int,
    emit: Callable[[RotationEvent], None],
    sleep: Callable[[float], None],
) -> SecretVersion:
    """Check-and-set against the version of step 1, with a bounded number of
    attempts when the store is unavailable; never a loop without end."""
    attempts = max(1, attempts)
    for attempt in range(1, attempts + 1):
        try:
            return store.write(secret, expected_version=before)
        except StoreConflict:
            current = store.read()
            if same_secret(current.value, secret):
                return current  # an earlier attempt was applied; its answer was lost
            raise StoreFailed(
                f"{store.location} changed since step 1 (it is no longer at version "
                f"{before}): someone else wrote it, so the new key was not written. The "
                "old key still works. Check the store, then re-run or --abort"
            ) from None
        except StoreUnavailable as exc:
            if attempt == attempts:
                raise StoreFailed(
                    f"{exc.message} ({attempts} attempts). Nothing changed for the "
                    "systems: the store still holds the old key, which still works. "
                    "Re-run when the store is back, or --abort"
                ) from None
            emit(
                RotationEvent(
                    EventKind.WARNING, f"store write failed, retrying: {exc.message}", step=3
                )
            )
            sleep(min(2.0**attempt, 10.0))
    raise AssertionError("unreachable")


def restore_for_abort(
    backend: RotationBackend,
    store: SecretStore,
    rot: RotationView,
    emit: Callable[[RotationEvent], None],
) -> str | None:
    """The runner's part of an abort, in the order that keeps a working key in the store:
    the old key enabled first, then the store put back to it. Returns the version the
    store was restored to (None: nothing to restore)."""
    old = rot.old_key
    if rot.step >= 5 or old is None or old.state == KeyState.DELETED:
        raise AbortRefused(
            f"rotation {rot.id} deleted the old key at step 5: there is no key to go back "
            "to. The new key is in the store and works; re-run without --abort to finish"
        )
    assert old is not None
    if old.state == KeyState.DISABLED:
        backend.enable_key(old.id)
    before = rot.store_version_before
    if before is None:
        return None  # step 1 was never recorded: the store was not touched
    try:
        current = store.read()
        if current.version == before:
            return None
        previous = store.read_version(before)
        if same_secret(current.value, previous.value):
            return None  # restored by an earlier abort that stopped before the server's part
        ours = current.version == rot.store_version_after or (
            backend.check_key(current.value).key_id == rot.new_key_id
        )
        if not ours:
            emit(
                RotationEvent(
                    EventKind.WARNING,
                    f"{store.location} holds a value this rotation did not write (version "
                    f"{current.version}); it is left as it is",
                )
            )
            return None
        restored = store.restore(before, expected_version=current.version)
    except StoreError as exc:
        raise StoreFailed(
            f"could not restore {store.location}: {exc.message}. Nothing was rolled back on "
            "the server: the new key still works. Re-run --abort when the store is back"
        ) from None
    return restored.version


# --- plumbing ------------------------------------------------------------------
