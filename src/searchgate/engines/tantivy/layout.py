"""How a collection's settings become a tantivy schema, and records become documents."""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import orjson
import tantivy

from searchgate.catalog.settings import CollectionSettings

# Bump when the mapping below changes: every index is then rebuilt on start-up.
LAYOUT_VERSION = 2
PREFIX_MAX = 20
WORD = re.compile(r"\w+", re.UNICODE)

ID = "_id"
SOURCE = "_src"
PREFIX = "_p"
VOCAB = "_w"


def fold(text: str) -> str:
    """Lowercase and strip accents, as the index's analyzers do."""
    if text.isascii():
        # Most catalog text: nothing to decompose (and ten times faster).
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    return WORD.findall(fold(text))


def _strings(value: Any) -> list[str]:
    # Called for every indexed field of every record: the common cases go first.
    if type(value) is str:
        return [value]
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for v in items:
        if v is None:
            continue
        if isinstance(v, bool):
            out.append("true" if v else "false")
        elif isinstance(v, float) and v.is_integer():
            out.append(str(int(v)))
        elif isinstance(v, str | int | float):
            out.append(str(v))
    return out


def value_key(value: Any) -> str | None:
    """The string under which a scalar value is indexed in a value navigation."""
    got = _strings(value)
    return got[0] if got else None


@dataclass(frozen=True)
class Layout:
    """Record field -> internal tantivy field names, for one collection."""

    searchable: dict[str, tuple[str, float]]  # record field -> (tantivy field, weight)
    prefix_sources: tuple[str, ...]
    vocab_sources: tuple[str, ...]
    values: dict[str, str]  # value navigation -> tantivy field
    ranges: dict[str, str]  # range navigation -> tantivy field
    sort_numbers: dict[str, str]
    sort_texts: dict[str, str]
    fingerprint: str
    # The same mappings as pairs, walked for every indexed record.
    _searchable: tuple[tuple[str, str], ...] = ()
    _values: tuple[tuple[str, str], ...] = ()
    _ranges: tuple[tuple[str, str], ...] = ()
    _sorts: tuple[tuple[str, str | None, str], ...] = ()  # None: the range field holds it

    @classmethod
    def of(cls, settings: CollectionSettings) -> Layout:
        searchable = {f.name: (f"t{i}", f.weight) for i, f in enumerate(settings.searchable)}
        title = settings.title_field
        strong = [f.name for f in settings.searchable if f.weight >= 1.5]
        prefix_sources = tuple(dict.fromkeys(([title] if title else []) + strong))
        vocab_sources = tuple(
            dict.fromkeys(settings.sayt.completion_fields or ([title] if title else []))
        )
        values = {n.name: f"v{i}" for i, n in enumerate(settings.navigations) if n.type == "Value"}
        ranges = {n.name: f"r{i}" for i, n in enumerate(settings.navigations) if n.type == "Range"}
        # A range navigation that is also sortable sorts on its own field: one numeric
        # fast field less to index per record.
        sort_numbers = {
            name: ranges.get(name, f"on{i}") for i, name in enumerate(settings.sortable)
        }
        sort_texts = {name: f"os{i}" for i, name in enumerate(settings.sortable)}
        spec = orjson.dumps(
            [
                LAYOUT_VERSION,
                searchable,
                prefix_sources,
                vocab_sources,
                values,
                ranges,
                sort_numbers,
                sort_texts,
            ],
            option=orjson.OPT_SORT_KEYS,
        )
        return cls(
            searchable=searchable,
            prefix_sources=prefix_sources,
            vocab_sources=vocab_sources,
            values=values,
            ranges=ranges,
            sort_numbers=sort_numbers,
            sort_texts=sort_texts,
            fingerprint=hashlib.sha256(spec).hexdigest()[:16],
            _searchable=tuple((name, tf) for name, (tf, _w) in searchable.items()),
            _values=tuple(values.items()),
            _ranges=tuple(ranges.items()),
            _sorts=tuple(
                (name, None if name in ranges else nf, sort_texts[name])
                for name, nf in sort_numbers.items()
            ),
        )

    def schema(self) -> tantivy.Schema:
        sb = tantivy.SchemaBuilder()
        sb.add_text_field(ID, stored=True, tokenizer_name="raw", index_option="basic")
        sb.add_bytes_field(SOURCE, stored=True, indexed=False)
        for tfield, _w in self.searchable.values():
            sb.add_text_field(tfield, tokenizer_name="sg_text", index_option="freq")
        sb.add_text_field(PREFIX, tokenizer_name="sg_prefix", index_option="basic")
        sb.add_text_field(VOCAB, tokenizer_name="sg_word", index_option="basic")
        for vfield in self.values.values():
            sb.add_text_field(vfield, tokenizer_name="raw", fast=True, index_option="basic")
        for rfield in self.ranges.values():
            sb.add_float_field(rfield, indexed=True, fast=True)
        for nfield in self.sort_numbers.values():
            if nfield not in self.ranges.values():
                sb.add_float_field(nfield, indexed=True, fast=True)
        for sfield in self.sort_texts.values():
            sb.add_text_field(sfield, tokenizer_name="raw", fast=True, index_option="basic")
        return sb.build()

    def document_json(self, record_id: str, record: dict[str, Any], source: str) -> str:
        """``document`` as the JSON that ``IndexWriter.add_json`` parses, built from the
        record already parsed: handing tantivy one JSON text costs half as much Python
        work as building a ``tantivy.Document`` from a dict."""
        doc = self.fields(record)
        doc[ID] = record_id
        doc[SOURCE] = base64.b64encode(source.encode()).decode("ascii")
        return orjson.dumps(doc).decode()

    def fields(self, rec: dict[str, Any]) -> dict[str, Any]:
        # Runs for every indexed record: plain strings, the common case, skip the
        # general conversion.
        doc: dict[str, Any] = {}
        get = rec.get
        for name, tfield in self._searchable:
            texts = _texts(get(name))
            if texts is not None:
                doc[tfield] = texts
        prefix_words: dict[str, None] = {}
        for name in self.prefix_sources:
            value = get(name)
            for text in [value] if type(value) is str else _strings(value):
                for w in WORD.findall(fold(text)):
                    prefix_words[w[:PREFIX_MAX]] = None
        if prefix_words:
            doc[PREFIX] = list(prefix_words)
        vocab: list[str] = []
        for name in self.vocab_sources:
            value = get(name)
            if type(value) is str:
                vocab.append(value)
            elif value is not None:
                vocab.extend(_strings(value))
        if vocab:
            doc[VOCAB] = vocab
        for name, vfield in self._values:
            vals = _texts(get(name))
            if vals is not None:
                doc[vfield] = vals
        for name, rfield in self._ranges:
            num = _number(get(name))
            if num is not None:
                doc[rfield] = num
        for name, nfield, sfield in self._sorts:
            value = get(name)
            num = _number(value)
            if num is not None:
                if nfield is not None:
                    doc[nfield] = num
            elif isinstance(value, str):
                doc[sfield] = fold(value)[:200]
        return doc


def _texts(value: Any) -> str | list[str] | None:
    """A field's value as a text field takes it: a plain string as it is (the common
    case, skipping the general conversion), else its strings, None when it has none."""
    if type(value) is str:
        return value
    if value is None:
        return None
    return _strings(value) or None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def register_analyzers(index: tantivy.Index) -> None:
    text = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(64))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )
    # Each word is its own value of the multi-valued prefix field: an n-gram tokenizer
    # works on the whole value, so this gives per-word prefixes (see the notes).
    prefix = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.ngram(1, PREFIX_MAX, True))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .build()
    )
    word = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .build()
    )
    index.register_tokenizer("sg_text", text)
    index.register_tokenizer("sg_prefix", prefix)
    index.register_tokenizer("sg_word", word)
