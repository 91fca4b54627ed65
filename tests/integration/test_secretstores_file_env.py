"""The local file store (permissions, atomic replace, cross-process check-and-set,
history bound) and the read-only environment store."""

from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest

from searchgate.secretstores import (
    StoreConflict,
    StoreMisconfigured,
    StoreNotFound,
    StorePermissionDenied,
    open_store,
)
from searchgate.secretstores.env import EnvStore
from searchgate.secretstores.file import FileStore


def new_key() -> str:
    return "sgk_" + secrets.token_hex(20)


def test_the_file_is_private_and_replaced_atomically(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "client-key.json"
    store = open_store("file", str(path))
    first = store.write(new_key(), None)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    inode = path.stat().st_ino
    store.write(new_key(), first.version)
    assert path.stat().st_ino != inode  # a new file renamed into place, not rewritten
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "client-key.json",
        "client-key.json.lock",
    ]
    doc = json.loads(path.read_text())
    assert doc["current"] == "2" and [v["version"] for v in doc["versions"]] == ["1", "2"]


def test_only_the_last_n_versions_are_kept(tmp_path: Path) -> None:
    store = open_store("file", str(tmp_path / "k.json"), max_versions=3)
    version = None
    values = []
    for _ in range(5):
        values.append(new_key())
        version = store.write(values[-1], version).version
    assert version == "5"
    for gone in ("1", "2"):
        with pytest.raises(StoreNotFound) as pruned:
            store.read_version(gone)
        assert "kept: 3, 4, 5" in pruned.value.message
    assert [store.read_version(v).value for v in ("3", "4", "5")] == values[2:]
    # Restoring makes a new, higher version; ids never go back.
    assert store.restore("3", "5").version == "6"
    with pytest.raises(StoreMisconfigured):
        open_store("file", str(tmp_path / "k.json"), max_versions=1)


def test_a_file_open_to_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    store = open_store("file", str(path))
    key = new_key()
    store.write(key, None)
    path.chmod(0o644)
    with pytest.raises(StoreMisconfigured) as loose:
        store.read()
    assert "chmod 600" in loose.value.message and key not in loose.value.message


def test_a_foreign_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_text('{"password": "hunter2-secret"}')
    path.chmod(0o600)
    with pytest.raises(StoreMisconfigured) as foreign:
        open_store("file", str(path)).read()
    assert "hunter2" not in foreign.value.message


def _try_as_nobody(path: str, conn: Any) -> None:
    os.setgid(65534)
    os.setuid(65534)
    store = FileStore(path)
    outcome = []
    for op in (store.read, lambda: store.write("sgk_x" * 8, "1")):
        try:
            op()
            outcome.append("ok")
        except Exception as exc:
            outcome.append(type(exc).__name__)
    conn.send(outcome)


def test_permission_errors_are_permission_denied(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root reads any file: the check runs as `nobody` in a forked child instead.
        base = Path(tempfile.mkdtemp(prefix="searchgate-perm-"))
        try:
            base.chmod(0o755)
            path = base / "k.json"
            FileStore(path).write(new_key(), None)
            ctx = multiprocessing.get_context("fork")
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_try_as_nobody, args=(str(path), child))
            proc.start()
            outcome = parent.recv()
            proc.join(10)
        finally:
            shutil.rmtree(base)
        assert outcome == ["StorePermissionDenied", "StorePermissionDenied"]
        return
    path = tmp_path / "k.json"
    store = FileStore(path)
    store.write(new_key(), None)
    path.chmod(0)
    with pytest.raises(StorePermissionDenied):
        store.read()
    path.chmod(0o600)
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(StorePermissionDenied):
            store.write(new_key(), "1")
    finally:
        tmp_path.chmod(0o700)


def _race(path: str, expected: str, start: Any, conn: Any) -> None:
    store = FileStore(path)
    start.wait(10)
    try:
        conn.send(store.write("sgk_" + secrets.token_hex(20), expected).version)
    except StoreConflict:
        conn.send("conflict")


def test_check_and_set_holds_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    first = FileStore(path).write(new_key(), None)
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    pipes = [ctx.Pipe() for _ in range(6)]
    procs = [
        ctx.Process(target=_race, args=(str(path), first.version, start, child))
        for _, child in pipes
    ]
    for p in procs:
        p.start()
    start.set()
    results = sorted(parent.recv() for parent, _ in pipes)
    for p in procs:
        p.join(10)
    assert results == ["2"] + ["conflict"] * 5
    assert FileStore(path).read().version == "2"


def test_env_store_is_read_only() -> None:
    key = new_key()
    store = open_store("env", "", env={"SEARCHGATE_CLIENT_KEY": key})
    assert isinstance(store, EnvStore) and store.location == "env:SEARCHGATE_CLIENT_KEY"
    current = store.read()
    assert current.value == key and current.version.startswith("sha256:")
    assert store.read_version(current.version) == current
    assert not store.writable
    for op in (
        lambda: store.write(new_key(), current.version),
        lambda: store.restore(current.version, current.version),
        store.check_writable,
    ):
        with pytest.raises(StoreMisconfigured) as refused:
            op()
        assert "read-only store" in refused.value.message
    with pytest.raises(StoreNotFound):
        store.read_version("sha256:000000000000")
    named = open_store("env", "SHOP_SEARCH_KEY", env={"SHOP_SEARCH_KEY": key})
    assert named.read().version == current.version
    with pytest.raises(StoreNotFound):
        open_store("env", "SHOP_SEARCH_KEY", env={}).read()
    with pytest.raises(StoreMisconfigured):
        open_store("env", "not a name", env={})
