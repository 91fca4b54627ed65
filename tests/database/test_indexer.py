"""The indexer: transaction-boundary commits, replace, restart repair and reindex.

These drive a real catalog (SQLite and PostgreSQL) and real tantivy indexes; the
background thread is not started unless a test says so, so that each pass is explicit.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import delete, select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from searchgate import indexer as indexer_module
from searchgate.catalog import changelog
from searchgate.catalog.models import IndexNodeRow
from searchgate.catalog.service import parse_settings
from searchgate.cli.main import app as cli
from searchgate.config import Settings
from searchgate.engines.base import Ids, MatchAll
from searchgate.engines.tantivy import engine as engine_module
from searchgate.engines.tantivy.engine import TantivyEngine
from searchgate.engines.tantivy.layout import VOCAB
from searchgate.engines.tantivy.store import STATE_FILE
from searchgate.indexer import Indexer
from searchgate.runtime import Services, build_runtime
from searchgate.webapp import create_app

SETTINGS = parse_settings(
    {"idField": "id", "titleField": "title", "searchable": [{"name": "title"}]}
)


def rows(prefix: str, n: int) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{i}", "title": f"{prefix} item {i}"} for i in range(n)]


class Node:
    """One process's index copy: an engine on a slot directory and its indexer."""

    def __init__(self, services: Services, slot: Path) -> None:
        slot.mkdir(parents=True, exist_ok=True)
        self.slot = slot
        self.engine = TantivyEngine(slot, 50_000_000, 1)
        self.indexer = Indexer(
            services.db, services.catalog, self.engine, f"test:{os.getpid()}:{slot.name}"
        )

    def sync(self) -> None:
        self.indexer.repair()
        self.indexer.catch_up()

    def count(self, collection: str) -> int:
        return self.engine.count(collection, None, MatchAll())

    def has(self, collection: str, record_id: str) -> bool:
        return self.engine.count(collection, None, Ids((record_id,))) == 1

    def close(self) -> None:
        self.engine.close()


@pytest.fixture
def node(services: Services, tmp_path: Path) -> Iterator[Node]:
    n = Node(services, tmp_path / "index" / "slot-0")
    yield n
    n.close()


def test_changes_become_visible_only_at_transaction_boundaries(
    services: Services, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small chunks make every transaction straddle several reads of the log.
    monkeypatch.setattr(indexer_module, "CHUNK", 7)
    catalog = services.catalog
    catalog.put_settings("c", SETTINGS)
    node.sync()
    catalog.write_records("c", rows("a", 10))
    catalog.write_records("c", rows("b", 3))
    catalog.write_records("c", rows("a", 10), replace=True)
    catalog.write_records("c", rows("d", 16))
    catalog.delete_records("c", [f"d{i}" for i in range(9)])

    seen: list[int] = []
    commit = node.engine.commit

    def observe(seq: int) -> None:
        commit(seq)
        if node.engine.has_collection("c"):
            seen.append(node.count("c"))

    monkeypatch.setattr(node.engine, "commit", observe)
    node.indexer.catch_up()
    # Each count is that of the catalog after some whole transaction, never in between,
    # even though the first two uploads' records were replaced or deleted since.
    assert seen, "nothing was committed"
    assert set(seen) <= {10, 13, 26, 17}, seen
    assert len(seen) >= 2 and seen[-1] == 17
    assert node.indexer.applied_seq == catalog.current_seq()
    assert node.has("c", "d12") and not node.has("c", "d3") and not node.has("c", "b1")


def test_replace_after_uncommitted_upserts_leaves_nothing_behind(
    services: Services, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(indexer_module, "CHUNK", 7)
    catalog = services.catalog
    catalog.put_settings("c", SETTINGS)
    node.sync()
    catalog.write_records("c", rows("old", 10))
    # A replace commits while the indexer is in the middle of the first upload (which
    # straddles two reads of the log): the records it already applied, uncommitted,
    # must go with the replace too.
    real_read = changelog.read_after
    reads = 0

    def read_then_replace(s: Any, after: int, limit: int) -> list[changelog.Change]:
        nonlocal reads
        changes = real_read(s, after, limit)
        reads += 1
        if reads == 1:
            catalog.write_records("c", rows("new", 5), replace=True)
        return changes

    monkeypatch.setattr(changelog, "read_after", read_then_replace)
    node.indexer.catch_up()
    assert reads >= 2
    assert node.count("c") == 5
    assert not node.has("c", "old1")
    assert node.has("c", "new1")


def test_reset_forgets_uncommitted_changes(services: Services, node: Node) -> None:
    services.catalog.write_records("c", rows("a", 3))
    node.sync()
    node.engine.upsert("c", "ghost", orjson.dumps({"id": "ghost", "title": "x"}).decode())
    node.engine.clear("c")
    node.engine.reset()
    node.engine.commit(node.engine.applied_seq())
    assert node.count("c") == 3
    assert not node.has("c", "ghost")


def _index_dir(node: Node, collection: str) -> Path:
    state = orjson.loads((node.slot / STATE_FILE).read_bytes())
    return node.slot / str(state["collections"][collection]["dir"])


@pytest.mark.parametrize("damage", ["remove-dir", "remove-meta", "corrupt-state", "no-state"])
def test_restart_repairs_a_damaged_index(services: Services, tmp_path: Path, damage: str) -> None:
    catalog = services.catalog
    catalog.write_records("a", rows("a", 40))
    catalog.write_records("b", rows("b", 25))
    first = Node(services, tmp_path / "slot")
    first.sync()
    target = _index_dir(first, "a")
    first.close()
    del first
    if damage == "remove-dir":
        shutil.rmtree(target)
    elif damage == "remove-meta":
        (target / "meta.json").unlink()
    elif damage == "corrupt-state":
        (tmp_path / "slot" / STATE_FILE).write_bytes(b'{"applied_seq": 12, "collec')
    else:
        (tmp_path / "slot" / STATE_FILE).unlink()
    catalog.write_records("b", rows("late", 5))  # written while the process was down

    second = Node(services, tmp_path / "slot")
    try:
        second.sync()
        assert second.count("a") == 40
        assert second.count("b") == 30
        assert second.has("a", "a39") and second.has("b", "late4")
        assert second.indexer.applied_seq == catalog.current_seq()
    finally:
        second.close()


def test_index_from_another_database_or_pruned_log_is_rebuilt(
    services: Services, node: Node, tmp_path: Path
) -> None:
    catalog = services.catalog
    catalog.write_records("c", rows("a", 10))
    node.sync()
    node.close()
    # The index claims a position this database never reached.
    state_path = node.slot / STATE_FILE
    state = orjson.loads(state_path.read_bytes())
    state["applied_seq"] = 10_000
    state_path.write_bytes(orjson.dumps(state))
    ahead = Node(services, node.slot)
    ahead.sync()
    assert ahead.indexer.applied_seq == catalog.current_seq()
    assert ahead.count("c") == 10
    ahead.close()

    # A copy that is behind a pruned log cannot catch up from it: it is rebuilt.
    behind_slot = tmp_path / "behind"
    shutil.copytree(node.slot, behind_slot)
    catalog.write_records("c", rows("b", 4))
    with services.db.write() as s:
        changelog.prune_before(s, changelog.current_seq(s) + 1)
    behind = Node(services, behind_slot)
    try:
        behind.sync()
        assert behind.count("c") == 14
    finally:
        behind.close()


def test_settings_change_rebuilds_and_drop_removes(services: Services, node: Node) -> None:
    catalog = services.catalog
    catalog.put_settings("c", SETTINGS)
    catalog.write_records("c", rows("a", 12))
    node.sync()
    old_dir = _index_dir(node, "c")
    with_nav = parse_settings(
        {**SETTINGS.model_dump(by_alias=True), "navigations": [{"name": "title"}]}
    )
    catalog.put_settings("c", with_nav)
    node.indexer.catch_up()
    assert node.count("c") == 12
    assert node.engine.settings_of("c") == with_nav
    assert _index_dir(node, "c") != old_dir and not old_dir.exists()
    catalog.delete_collection("c")
    node.indexer.catch_up()
    assert not node.engine.has_collection("c")
    assert orjson.loads((node.slot / STATE_FILE).read_bytes())["collections"] == {}


def test_background_start_reports_ready_and_waits(settings: Settings) -> None:
    rt = build_runtime(settings)
    rt.services.catalog.write_records("c", rows("a", 30))
    rt.start()
    try:
        assert rt.indexer.wait_ready(30)
        assert rt.indexer.ready and rt.indexer.last_error is None
        result = rt.services.catalog.write_records("c", rows("b", 7))
        rt.indexer.notify()
        assert rt.wait_searchable(result.seq, 30)
        assert rt.engine.count("c", None, MatchAll()) == 37
        assert rt.indexer.lag() == 0
    finally:
        rt.stop()


def test_health_at_once_and_readiness_after_the_first_pass(settings: Settings) -> None:
    rt = build_runtime(settings)
    rt.services.catalog.write_records("c", rows("a", 20))
    # Holding the indexer's work lock keeps its first pass (repair, catch-up) waiting,
    # as a long rebuild would.
    rt.indexer._work.acquire()
    held = True
    rt.start()
    try:
        with TestClient(create_app(settings, runtime=rt)) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            r = client.get("/readyz")
            assert r.status_code == 503
            assert r.json()["status"] == "not_ready"
            assert r.json()["database"] == "ok"
            rt.indexer._work.release()
            held = False
            assert rt.indexer.wait_ready(30)
            r = client.get("/readyz")
            assert r.status_code == 200, r.text
            assert r.json()["indexLag"] == 0
            assert rt.engine.count("c", None, MatchAll()) == 20
    finally:
        if held:
            rt.indexer._work.release()
        rt.stop()


def test_position_of_a_killed_process_on_this_slot_is_forgotten(settings: Settings) -> None:
    rt = build_runtime(settings)
    slot = rt.slot_lock.path
    assert slot is not None
    now = datetime.now(UTC)
    with rt.services.db.write() as s:
        for node in (f"{socket.gethostname()}:999999:{slot.name}", f"elsewhere:1:{slot.name}"):
            s.add(IndexNodeRow(node=node, applied_seq=0, heartbeat_at=now))
    rt.start()
    try:
        assert rt.indexer.wait_ready(30)
        result = rt.services.catalog.write_records("c", rows("a", 3))
        rt.indexer.notify()
        # Another host's process is alive as far as anyone knows: it is waited for.
        assert not rt.wait_searchable(result.seq, 0.5)
        with rt.services.db.write() as s:
            s.execute(delete(IndexNodeRow).where(IndexNodeRow.node == f"elsewhere:1:{slot.name}"))
        # The earlier holder of this slot on this host is gone: it is not.
        assert rt.wait_searchable(result.seq, 3)
    finally:
        rt.stop()
    with rt.services.db.read() as s:
        assert list(s.scalars(select(IndexNodeRow.node))) == []


def test_reindex_cli_rebuilds_with_progress(services: Services, settings: Settings) -> None:
    services.catalog.write_records("shop", rows("a", 120))
    services.catalog.write_records("other", rows("o", 3))
    env = {
        "SEARCHGATE_DATABASE_URL": services.db.url,
        # The pepper the services were built with: the database knows its fingerprint.
        "SEARCHGATE_KEY_PEPPER": str(settings.key_pepper),
        "SEARCHGATE_INDEX_WRITER_HEAP_BYTES": "50000000",
        "SEARCHGATE_INDEX_WRITER_THREADS": "1",
    }
    data_dir = str(settings.data_dir)
    runner = CliRunner()
    result = runner.invoke(cli, ["reindex", "--data-dir", data_dir], env=env)
    assert result.exit_code == 0, result.output
    assert "reindexed other, shop" in result.output
    assert "rebuilding 2 collection(s)" in result.output
    slot = settings.index_dir / "slot-0"
    engine = TantivyEngine(slot, 50_000_000, 1)
    try:
        assert engine.count("shop", None, MatchAll()) == 120
        assert engine.count("other", None, MatchAll()) == 3
        assert engine.applied_seq() == services.catalog.current_seq()
    finally:
        engine.close()
    # A one-off rebuild serves no searches: uploads with ?wait=true never wait for it.
    with services.db.read() as s:
        assert list(s.scalars(select(IndexNodeRow.node))) == []

    result = runner.invoke(
        cli, ["reindex", "--collection", "nope", "--data-dir", data_dir], env=env
    )
    assert result.exit_code == 2
    assert "collection 'nope' does not exist" in result.output


def test_pruned_log_is_caught_up_by_a_rebuild(services: Services, tmp_path: Path) -> None:
    a = Node(services, tmp_path / "index" / "slot-0")
    b = Node(services, tmp_path / "index" / "slot-1")
    try:
        services.catalog.put_settings("c", SETTINGS)
        a.sync()
        b.sync()
        services.catalog.write_records("c", rows("one", 30))
        a.indexer.catch_up()
        with services.db.write() as s:
            s.add(
                IndexNodeRow(
                    node=a.indexer.node,
                    applied_seq=a.indexer.applied_seq,
                    heartbeat_at=datetime.now(UTC),
                )
            )
        # Only A is live, so everything A indexed may go, however far behind B is.
        removed = a.indexer.prune(retain=0)
        assert removed >= 30
        with services.db.read() as s:
            assert changelog.oldest_retained(s) is None
        services.catalog.write_records("c", rows("two", 5))
        b.indexer.catch_up()
        b.indexer.catch_up()
        assert b.count("c") == 35
        assert b.has("c", "one7") and b.has("c", "two4")
        assert b.indexer.applied_seq == services.catalog.current_seq()
    finally:
        a.close()
        b.close()


def test_prune_keeps_what_a_live_process_has_not_indexed(
    services: Services, tmp_path: Path
) -> None:
    a = Node(services, tmp_path / "index" / "slot-0")
    try:
        services.catalog.put_settings("c", SETTINGS)
        a.sync()
        behind = services.catalog.current_seq()
        services.catalog.write_records("c", rows("x", 10))
        with services.db.write() as s:
            s.add(
                IndexNodeRow(
                    node="other:1:slot-9", applied_seq=behind, heartbeat_at=datetime.now(UTC)
                )
            )
        a.indexer.prune(retain=0)
        with services.db.read() as s:
            assert changelog.oldest_retained(s) == behind + 1
    finally:
        a.close()


def test_the_head_reader_sees_every_commit_and_reopens_after_a_failure(
    services: Services,
) -> None:
    catalog = services.catalog
    catalog.put_settings("c", SETTINGS)
    head = changelog.HeadReader(services.db)
    try:
        assert head() == catalog.current_seq()
        before = head()
        # Committed by other connections while the reader's stays open: a reader that
        # kept a snapshot (a transaction left open) would go on answering ``before``.
        catalog.write_records("c", rows("a", 3))
        assert head() == catalog.current_seq() == before + 3
        catalog.write_records("c", rows("b", 2))
        assert head() == before + 5
        # A connection that broke (a database restart) fails one look, then reopens.
        head._conn.invalidate()
        with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
            head()
        assert head._conn is None
        assert head() == before + 5
    finally:
        head.close()


def test_similar_words_match_a_lookup_of_every_candidate(services: Services, node: Node) -> None:
    """The automaton check in front of the lookups may only save work, never change an
    answer: compared with looking up every one-edit candidate, word by word."""
    titles = [
        "wireless headphones",
        "wireles speaker",
        "samsung galaxy",
        "laptop sleeve",
        "laptops stand",
        "café crème",
        "usb c hub",
        "hdmi 2 cable",
        "ipad case",
    ]
    catalog = services.catalog
    catalog.put_settings("c", SETTINGS)
    catalog.write_records("c", [{"id": str(i), "title": t} for i, t in enumerate(titles)])
    node.sync()
    ci = node.engine._get("c")
    tried = [
        "wirless",
        "wirelesss",
        "headphnoes",
        "samsnug",
        "laptpo",
        "lapto",
        "cafe",
        "creme",
        "hdmj",
        "ipda",
        "zzzz",
        "qqqqq",
        "usbc",
        "galaxi",
        "nothinglikeit",
    ]
    for word in tried:
        brute = sorted(
            (
                (c, int(ci.searcher.doc_freq(VOCAB, c)))
                for c in engine_module._edits1(word)
                if int(ci.searcher.doc_freq(VOCAB, c))
            ),
            key=lambda kv: (-kv[1], kv[0]),
        )
        assert node.engine.similar_words("c", word, 50) == brute, word
    # Some had neighbours and some had none: both paths were taken.
    assert node.engine.similar_words("c", "samsnug", 1) == [("samsung", 1)]
    assert node.engine.similar_words("c", "qqqqq", 1) == []
