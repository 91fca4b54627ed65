"""One contract for every writable secret store, run against real servers: OpenBao (the
Vault API), moto's Secrets Manager, and a local file."""

from __future__ import annotations

import multiprocessing
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from searchgate.secretstores import (
    SecretStore,
    SecretVersion,
    StoreConflict,
    StoreNotFound,
    StoreUnavailable,
    open_store,
)
from searchgate.secretstores.file import FileStore
from tests.stores import BaoServer, MotoServer, closed_url, unique_path


def new_key() -> str:
    return "sgk_" + secrets.token_hex(20)


def _hold_lock(lock_path: str, ready: Any, release: Any) -> None:
    import fcntl
    import os

    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    ready.set()
    release.wait(30)


class Backend:
    """Makes stores of one kind at fresh locations."""

    def __init__(self, kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.kind = kind
        self.request = request
        self.tmp_path = tmp_path
        self._cleanup: list[Callable[[], None]] = []

    def new(self) -> SecretStore:
        if self.kind == "vault":
            bao: BaoServer = self.request.getfixturevalue("bao_server")
            return open_store("vault", "secret/" + unique_path(), env=bao.env)
        if self.kind == "aws":
            moto: MotoServer = self.request.getfixturevalue("moto_server")
            return open_store("aws", unique_path(), env=moto.env)
        return open_store("file", str(self.tmp_path / f"{secrets.token_hex(4)}.json"), env={})

    def same(self, store: SecretStore) -> SecretStore:
        """A second, independent handle on ``store``'s secret (another process's view)."""
        kind, _, path = store.location.partition(":")
        if kind == "vault":
            return open_store("vault", path, env=self.request.getfixturevalue("bao_server").env)
        if kind == "aws":
            return open_store("aws", path, env=self.request.getfixturevalue("moto_server").env)
        return open_store("file", path)

    def unavailable(self) -> SecretStore:
        """A store that cannot be reached: a closed port, or a file lock held elsewhere."""
        if self.kind == "vault":
            env = {"VAULT_ADDR": closed_url(), "VAULT_TOKEN": "s.unused"}
            return open_store("vault", "secret/" + unique_path(), env=env, timeout=1)
        if self.kind == "aws":
            env = {**self.request.getfixturevalue("moto_server").env}
            env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = closed_url()
            return open_store("aws", unique_path(), env=env, timeout=1)
        store = FileStore(self.tmp_path / "held.json", lock_timeout=0.5)
        store.write(new_key(), None)
        ctx = multiprocessing.get_context("fork")
        ready, release = ctx.Event(), ctx.Event()
        holder = ctx.Process(target=_hold_lock, args=(str(store.lock_path), ready, release))
        holder.start()
        assert ready.wait(10)

        def stop() -> None:
            release.set()
            holder.join(10)

        self._cleanup.append(stop)
        return store

    def close(self) -> None:
        for stop in self._cleanup:
            stop()


@pytest.fixture(params=["vault", "aws", "file"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = Backend(request.param, request, tmp_path)
    yield b
    b.close()


def test_write_then_read_round_trips(backend: Backend) -> None:
    store = backend.new()
    key = new_key()
    written = store.write(key, None)
    assert written.value == key
    current = store.read()
    assert current == SecretVersion(key, written.version, current.created_at)
    assert current.created_at is not None
    # Another handle (another process) sees the same current version.
    assert backend.same(store).read().version == written.version
    assert store.kind == backend.kind and store.writable
    assert key not in repr(current) and key not in str(current) and key not in f"{current}"


def test_check_and_set_refuses_stale_and_missing_expectations(backend: Backend) -> None:
    store = backend.new()
    with pytest.raises(StoreConflict):
        store.write(new_key(), "1" if backend.kind != "aws" else "0" * 32)
    first = store.write(new_key(), None)
    intruder = new_key()
    with pytest.raises(StoreConflict) as refused:
        store.write(intruder, None)  # must not exist yet, but does
    assert intruder not in refused.value.message
    second = backend.same(store).write(new_key(), first.version)
    with pytest.raises(StoreConflict) as stale:
        store.write(intruder, first.version)
    assert stale.value.code == "store_conflict"
    assert intruder not in stale.value.message and store.location in stale.value.message
    assert store.read().version == second.version
    assert store.read().value == second.value


def test_versions_are_kept_and_readable(backend: Backend) -> None:
    store = backend.new()
    written = [store.write(new_key(), None)]
    for _ in range(2):
        written.append(store.write(new_key(), written[-1].version))
    assert len({w.version for w in written}) == 3
    for w in written:
        assert store.read_version(w.version).value == w.value
    assert store.read().value == written[-1].value
    if backend.kind == "file":
        assert [int(w.version) for w in written] == [1, 2, 3]


def test_restore_makes_an_older_version_current(backend: Backend) -> None:
    store = backend.new()
    old = store.write(new_key(), None)
    new = store.write(new_key(), old.version)
    with pytest.raises(StoreConflict):
        store.restore(old.version, old.version)  # stale: current is `new`
    restored = store.restore(old.version, new.version)
    assert restored.value == old.value
    current = store.read()
    assert current.value == old.value and current.version == restored.version
    # The key that was replaced stays readable, so the rollback can itself be undone.
    assert store.read_version(new.version).value == new.value
    again = store.restore(new.version, current.version)
    assert store.read().value == new.value == again.value


def test_missing_secret_and_version_are_not_found(backend: Backend) -> None:
    store = backend.new()
    with pytest.raises(StoreNotFound):
        store.read()
    first = store.write(new_key(), None)
    missing = "99" if backend.kind != "aws" else "f" * 36
    with pytest.raises(StoreNotFound):
        store.read_version(missing)
    with pytest.raises(StoreNotFound):
        store.restore(missing, first.version)
    assert store.read().version == first.version


def test_check_writable_passes_with_full_access(backend: Backend) -> None:
    store = backend.new()
    store.check_writable()  # before the secret exists
    store.write(new_key(), None)
    store.check_writable()


@pytest.mark.timeout(60)
def test_unavailable_store_fails_fast_and_loudly(backend: Backend) -> None:
    store = backend.unavailable()
    key = new_key()
    ops: list[Callable[[], object]] = [lambda: store.write(key, "1"), store.check_writable]
    if backend.kind == "file":
        # Readers never take the lock: a stuck writer does not stop the key being read.
        assert store.read().version == "1"
    else:
        ops.append(store.read)
    for op in ops:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as failed:
            op()
        # A bound, not a speed target: the retries are finite and the timeout is 1 s.
        assert time.monotonic() - started < 15
        assert failed.value.code == "store_unavailable"
        assert key not in failed.value.message
        assert store.location.split(":", 1)[1] in failed.value.message
