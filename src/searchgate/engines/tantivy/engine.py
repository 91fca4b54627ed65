"""Applying changes to, and searching, one process's tantivy indexes."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
import tantivy

from searchgate.catalog.settings import CollectionSettings
from searchgate.engines.base import (
    FacetResult,
    Filter,
    MatchAll,
    SearchPlan,
    SearchResult,
    TextQuery,
)
from searchgate.engines.tantivy.layout import ID, VOCAB, Layout, words
from searchgate.engines.tantivy.query import QueryCompiler, run_search, total_of
from searchgate.engines.tantivy.store import (
    CollectionIndex,
    SlotState,
    open_index,
    remove_unreferenced,
)


class UnknownCollection(LookupError):
    pass


class TantivyEngine:
    def __init__(self, slot: Path, heap_bytes: int = 256 * 1024 * 1024, threads: int = 2) -> None:
        self.slot = slot
        self.heap_bytes = heap_bytes
        self.threads = threads
        self.state = SlotState.load(slot)
        self._searchable_seq = self.state.applied_seq
        self._indexes: dict[str, CollectionIndex] = {}
        # Rebuilt indexes wait here until their commit, so searches keep the old one.
        self._pending: dict[str, CollectionIndex] = {}
        self._fingerprints: dict[int, tuple[CollectionSettings, str]] = {}
        self._write_lock = threading.Lock()
        self._open_all()

    # --- opening -------------------------------------------------------------------

    def _open_all(self) -> None:
        indexes: dict[str, CollectionIndex] = {}
        broken = []
        for name, entry in self.state.collections.items():
            try:
                indexes[name] = self._open(name, entry["dir"], entry["layout_settings"])
            except (OSError, ValueError, KeyError):
                broken.append(name)
        for name in broken:
            # Missing or unreadable: forgotten here, so the indexer rebuilds it.
            self.state.collections.pop(name, None)
        # One assignment: a search running meanwhile sees the old set or the new one.
        self._indexes = indexes
        remove_unreferenced(self.slot, self.state)

    def _open(self, name: str, dirname: str, settings_json: str) -> CollectionIndex:
        layout = Layout.of(CollectionSettings.model_validate_json(settings_json))
        path = self.slot / dirname
        # Without its meta.json tantivy would open a damaged directory as a new, empty
        # index, and the records in it would silently go missing from search.
        if not path.is_dir() or not tantivy.Index.exists(str(path)):
            raise ValueError(f"no committed index in {path}")
        index, schema = open_index(path, layout, create=False)
        return CollectionIndex(
            name=name,
            dirname=dirname,
            layout=layout,
            settings=CollectionSettings.model_validate_json(settings_json),
            index=index,
            schema=schema,
            searcher=index.searcher(),
        )

    def _new_dir(self) -> str:
        self.state.generation += 1
        return f"c-{self.state.generation}"

    def _create(self, name: str, settings: CollectionSettings) -> CollectionIndex:
        dirname = self._new_dir()
        layout = Layout.of(settings)
        path = self.slot / dirname
        if path.exists():
            shutil.rmtree(path)
        index, schema = open_index(path, layout, create=True)
        return CollectionIndex(
            name=name,
            dirname=dirname,
            layout=layout,
            settings=settings,
            index=index,
            schema=schema,
            searcher=index.searcher(),
        )

    # --- IndexWriterPort -------------------------------------------------------------

    def applied_seq(self) -> int:
        """The change-log position that searches see (set once the searchers reloaded)."""
        return self._searchable_seq

    def collections(self) -> list[str]:
        return sorted(self._indexes)

    def _fingerprint(self, settings: CollectionSettings) -> str:
        # The indexer asks for every change with the same settings object: computing
        # the layout each time cost more than indexing some records.
        hit = self._fingerprints.get(id(settings))
        if hit is not None and hit[0] is settings:
            return hit[1]
        if len(self._fingerprints) > 256:
            self._fingerprints.clear()
        fp = Layout.of(settings).fingerprint
        self._fingerprints[id(settings)] = (settings, fp)
        return fp

    def matches(self, collection: str, settings: CollectionSettings) -> bool:
        ci = self._indexes.get(collection)
        return ci is not None and ci.layout.fingerprint == self._fingerprint(settings)

    def prepare(self, collection: str, settings: CollectionSettings) -> bool:
        pending = self._pending.get(collection)
        if pending is not None:
            return pending.layout.fingerprint == self._fingerprint(settings)
        return self.matches(collection, settings)

    def _writer(self, ci: CollectionIndex) -> tantivy.IndexWriter:
        if ci.writer is None:
            ci.writer = ci.index.writer(self.heap_bytes, self.threads)
        return ci.writer

    def _get(self, collection: str) -> CollectionIndex:
        ci = self._indexes.get(collection)
        if ci is None:
            raise UnknownCollection(collection)
        return ci

    def _get_for_write(self, collection: str) -> CollectionIndex | None:
        return self._pending.get(collection) or self._indexes.get(collection)

    def upsert(self, collection: str, record_id: str, source: str) -> None:
        self.upsert_many(collection, [(record_id, orjson.loads(source), source)])

    def upsert_many(
        self,
        collection: str,
        records: Sequence[tuple[str, dict[str, Any], str]],
        replace: bool = True,
    ) -> None:
        """Indexes (record id, parsed record, stored JSON) triples, each replacing the
        document of its id unless ``replace`` is False (the ids are new to the index).

        The ids must be distinct: one delete for all of them goes first.
        """
        ci = self._get_for_write(collection)
        if ci is None:
            raise UnknownCollection(collection)
        if not records:
            return
        w = self._writer(ci)
        if replace:
            ids = [r[0] for r in records]
            w.delete_documents_by_query(tantivy.Query.term_set_query(ci.schema, ID, ids))
        add = w.add_json
        document = ci.layout.document_json
        for record_id, record, source in records:
            add(document(record_id, record, source))
        ci.dirty = True

    def delete(self, collection: str, record_id: str) -> None:
        ci = self._get_for_write(collection)
        if ci is None:
            return
        self._writer(ci).delete_documents_by_term(ID, record_id)
        ci.dirty = True

    def clear(self, collection: str) -> None:
        ci = self._get_for_write(collection)
        if ci is None:
            raise UnknownCollection(collection)
        # Not delete_all_documents(): it misses documents added since the last commit,
        # so records of an earlier upload in the same batch of changes would survive a
        # replace. A delete by query applies to everything added before it.
        self._writer(ci).delete_documents_by_query(tantivy.Query.all_query())
        ci.dirty = True

    def drop(self, collection: str) -> None:
        for ci in (self._pending.pop(collection, None), self._indexes.pop(collection, None)):
            if ci is not None and ci.writer is not None:
                ci.writer.rollback()
                ci.writer = None
        self.state.collections.pop(collection, None)

    def rebuild(
        self,
        collection: str,
        settings: CollectionSettings,
        chunks: Iterable[list[tuple[str, str]]],
    ) -> int:
        """Builds a fresh index beside the live one and swaps it in when committed."""
        for old in (self._pending.pop(collection, None), self._indexes.get(collection)):
            if old is not None and old.writer is not None:
                old.writer.rollback()
                old.writer = None
        ci = self._create(collection, settings)
        writer = self._writer(ci)
        count = 0
        add = writer.add_json
        document = ci.layout.document_json
        loads = orjson.loads
        for chunk in chunks:
            for record_id, source in chunk:
                add(document(record_id, loads(source), source))
            count += len(chunk)
        ci.dirty = True
        self._pending[collection] = ci
        self.state.collections[collection] = {
            "dir": ci.dirname,
            "layout_settings": settings.model_dump_json(by_alias=True),
        }
        return count

    def commit(self, applied_seq: int) -> None:
        with self._write_lock:
            committed = []
            for ci in [*self._indexes.values(), *self._pending.values()]:
                if ci.dirty and ci.writer is not None:
                    ci.writer.commit()
                    ci.dirty = False
                    committed.append(ci)
            self.state.applied_seq = applied_seq
            # The state file is written after the indexes: a crash in between only
            # makes the indexer re-apply changes, which are idempotent.
            self.state.save(self.slot)
            for ci in committed:
                ci.refresh()
            if self._pending:
                self._indexes.update(self._pending)
                self._pending.clear()
            # Only now: a waiter told "searchable" must find the changes in a search.
            self._searchable_seq = applied_seq
            remove_unreferenced(self.slot, self.state)

    def pick_up_merges(self) -> int:
        """Lets searches use the segments that tantivy's background merges produced.

        Merges are committed by tantivy itself, but a searcher sees them only once
        reloaded, which otherwise happens at our next commit: after a bulk upload the
        searches went on over a dozen small segments, at up to twice the CPU, until
        the next upload. Returns how many indexes changed.
        """
        changed = 0
        with self._write_lock:
            for ci in list(self._indexes.values()):
                ci.index.reload()
                searcher = ci.index.searcher()
                if searcher.num_segments != ci.searcher.num_segments:
                    # The same documents: what is cached about them still holds.
                    ci.searcher = searcher
                    changed += 1
        return changed

    def close(self) -> None:
        for ci in [*self._indexes.values(), *self._pending.values()]:
            if ci.writer is not None:
                ci.writer.rollback()
                ci.writer = None

    def reset(self) -> None:
        """Forgets every uncommitted change and returns to the last committed state
        (after a failed pass, so that the indexer re-applies from a clean position)."""
        with self._write_lock:
            self.close()
            generation = self.state.generation
            self._pending.clear()
            self.state = SlotState.load(self.slot)
            # Directory names are never reused, even those of abandoned rebuilds.
            self.state.generation = max(self.state.generation, generation)
            self._searchable_seq = self.state.applied_seq
            self._open_all()

    # --- SearchEngine ------------------------------------------------------------------

    def has_collection(self, collection: str) -> bool:
        return collection in self._indexes

    def settings_of(self, collection: str) -> CollectionSettings | None:
        """The settings the searchable index was built with (consistent with it)."""
        ci = self._indexes.get(collection)
        return None if ci is None else ci.settings

    def search(self, collection: str, plan: SearchPlan) -> SearchResult:
        ci = self._get(collection)
        return run_search(ci, plan)

    def count(self, collection: str, text: TextQuery | None, filter: Filter) -> int:
        ci = self._get(collection)
        compiler = QueryCompiler(ci)
        query = compiler.where(compiler.text(text), filter)
        return total_of(ci.searcher.search(query, 1, count=True))

    def facet(self, collection: str, plan: SearchPlan) -> dict[str, FacetResult]:
        return self.search(collection, plan).facets

    def complete_words(
        self, collection: str, prefix: str, limit: int, within: TextQuery | None = None
    ) -> list[tuple[str, int]]:
        """Completions of the last word of ``prefix``, most frequent first; with
        ``within``, counted only over the records that match it (SAYT's earlier words)."""
        ci = self._get(collection)
        folded = words(prefix)
        if not folded:
            return []
        scope = QueryCompiler(ci).text(within) if within is not None else None
        if scope is None:
            pairs = ci.searcher.terms_with_prefix(VOCAB, folded[-1], limit=limit)
        else:
            pairs = ci.searcher.terms_with_prefix(
                VOCAB, folded[-1], filter_query=scope, limit=limit
            )
        return [(str(t), int(c)) for t, c in pairs if int(c) > 0]

    def correct_word(self, collection: str, word: str) -> str:
        ci = self._get(collection)
        # Storefront queries repeat: corrections are remembered until the index changes.
        memo = ci.cache.setdefault("corrections", {})
        assert isinstance(memo, dict)
        hit = memo.get(word)
        if hit is not None:
            return str(hit)
        if self.count(collection, TextQuery(words=(word,)), MatchAll()):
            corrected = word
        else:
            similar = self.similar_words(collection, word, 1)
            corrected = similar[0][0] if similar else word
        if len(memo) < 20_000:
            memo[word] = corrected
        return corrected

    def similar_words(self, collection: str, word: str, limit: int) -> list[tuple[str, int]]:
        """Indexed completion words one edit (insert, delete, replace or swap of two
        neighbours) away from ``word``, most frequent first.

        Each candidate is looked up in the term dictionary: a few hundred lookups in
        tantivy cost well under a millisecond, however large the vocabulary.
        """
        ci = self._get(collection)
        folded = words(word)
        if not folded or len(folded[0]) < 3 or len(folded[0]) > 40:
            return []
        w = folded[0]
        searcher = ci.searcher
        # Most words that find nothing have no neighbour at all (9 in 10 of those in
        # the storefront query mix): one walk of the term dictionary with tantivy's
        # edit-distance automaton says so for a third of the cost of the lookups below.
        # The automaton accepts every candidate below, so a miss is final.
        probe = tantivy.Query.fuzzy_term_query(
            ci.schema, VOCAB, w, distance=1, transposition_cost_one=True
        )
        if not total_of(searcher.search(probe, 1, count=True)):
            return []
        found: dict[str, int] = {}
        for candidate in _edits1(w):
            count = int(searcher.doc_freq(VOCAB, candidate))
            if count:
                found[candidate] = count
        return sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


_LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789"


def _edits1(word: str) -> set[str]:
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = {a + b[1:] for a, b in splits if b}
    swaps = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    replaces = {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
    inserts = {a + c + b for a, b in splits for c in _LETTERS}
    out = deletes | swaps | replaces | inserts
    out.discard(word)
    return out
