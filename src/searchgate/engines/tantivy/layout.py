"""How a collection's settings become a tantivy schema, and records become documents."""

from __future__ import annotations

import base64
import hashlib
import unicodedata
from dataclasses import dataclass
from typing import Any

import orjson
import tantivy

from searchgate.catalog.settings import CollectionSettings

# Bump when the mapping below changes: every index is then rebuilt on start-up.
LAYOUT_VERSION = 3
PREFIX_MAX = 20
# Fields of at least this weight (and the title) are prefix-matched by SAYT previews.
STRONG_WEIGHT = 1.5

ID = "_id"
SOURCE = "_src"
VOCAB = "_w"


def _analyzer(tokenizer: tantivy.Tokenizer, *filters: tantivy.Filter) -> tantivy.TextAnalyzer:
    builder = tantivy.TextAnalyzerBuilder(tokenizer)
    for f in filters:
        builder = builder.filter(f)
    return builder.build()


# The index's analyzers. Text is split into words by tantivy's simple tokenizer (runs
# of letters and digits: "_" and "-" separate words); words are lowercased and their
# accents folded.
TEXT = _analyzer(
    tantivy.Tokenizer.simple(),
    tantivy.Filter.remove_long(64),
    tantivy.Filter.lowercase(),
    tantivy.Filter.ascii_fold(),
    tantivy.Filter.stemmer("english"),
)
# Each word is its own value of a multi-valued prefix field: an n-gram tokenizer works
# on the whole value, so this gives per-word prefixes.
PREFIXES = _analyzer(
    tantivy.Tokenizer.ngram(1, PREFIX_MAX, True),
    tantivy.Filter.lowercase(),
    tantivy.Filter.ascii_fold(),
)
VOCABULARY = _analyzer(
    tantivy.Tokenizer.simple(),
    tantivy.Filter.remove_long(40),
    tantivy.Filter.lowercase(),
    tantivy.Filter.ascii_fold(),
)
# Query text and prefix-field values are split into words by these same steps, so a
# word of a query is always one token of the index: a word that the index would split
# ("usb_c") would otherwise become a phrase, which fields without positions refuse.
_SPLIT = _analyzer(
    tantivy.Tokenizer.simple(), tantivy.Filter.lowercase(), tantivy.Filter.ascii_fold()
)
# One word (from ``words``) as the text fields index it: the remaining steps of TEXT.
_TERM = _analyzer(
    tantivy.Tokenizer.raw(),
    tantivy.Filter.remove_long(64),
    tantivy.Filter.lowercase(),
    tantivy.Filter.ascii_fold(),
    tantivy.Filter.stemmer("english"),
)


def fold(text: str) -> str:
    """Lowercase and strip accents, as the index's analyzers do."""
    if text.isascii():
        # Most catalog text: nothing to decompose (and ten times faster).
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """The words of ``text``, split, lowercased and folded exactly as the index does."""
    return _SPLIT.analyze(text)


def text_term(word: str) -> str | None:
    """A word of ``words`` as the text fields hold it (stemmed); None when they keep no
    such word (too long)."""
    got = _TERM.analyze(word)
    return got[0] if got and got[0] else None


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
    # Title and strong fields -> (prefix field, weight), for SAYT previews and wildcard
    # search; fields of one weight share a prefix field.
    prefixes: dict[str, tuple[str, float]]
    vocab_sources: tuple[str, ...]
    values: dict[str, str]  # value navigation -> tantivy field
    ranges: dict[str, str]  # range navigation -> tantivy field
    sort_numbers: dict[str, str]
    sort_texts: dict[str, str]
    fingerprint: str
    prefix_fields: tuple[tuple[str, float], ...] = ()  # distinct (prefix field, weight)
    # The same mappings as pairs, walked for every indexed record.
    _searchable: tuple[tuple[str, str], ...] = ()
    _prefixes: tuple[tuple[str, str, float], ...] = ()
    _values: tuple[tuple[str, str], ...] = ()
    _ranges: tuple[tuple[str, str], ...] = ()
    _sorts: tuple[tuple[str, str | None, str], ...] = ()  # None: the range field holds it

    @classmethod
    def of(cls, settings: CollectionSettings) -> Layout:
        searchable = {f.name: (f"t{i}", f.weight) for i, f in enumerate(settings.searchable)}
        title = settings.title_field
        weights = {f.name: f.weight for f in settings.searchable}
        strong = [f.name for f in settings.searchable if f.weight >= STRONG_WEIGHT]
        # A title that is not searchable still weighs as much as the strongest field.
        title_weight = weights.get(title or "", max(weights.values(), default=1.0))
        prefix_weights = {
            name: title_weight if name == title else weights[name]
            for name in dict.fromkeys(([title] if title else []) + strong)
        }
        # One field per weight: each prefix field is one more posting list to walk for
        # every word of every SAYT keystroke.
        by_weight = {w: f"p{i}" for i, w in enumerate(dict.fromkeys(prefix_weights.values()))}
        prefixes = {name: (by_weight[w], w) for name, w in prefix_weights.items()}
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
                prefixes,
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
            prefixes=prefixes,
            vocab_sources=vocab_sources,
            values=values,
            ranges=ranges,
            sort_numbers=sort_numbers,
            sort_texts=sort_texts,
            fingerprint=hashlib.sha256(spec).hexdigest()[:16],
            _searchable=tuple((name, tf) for name, (tf, _w) in searchable.items()),
            _prefixes=tuple((name, pf, w) for name, (pf, w) in prefixes.items()),
            prefix_fields=tuple(dict.fromkeys(prefixes.values())),
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
        for pfield, _w in self.prefix_fields:
            sb.add_text_field(pfield, tokenizer_name="sg_prefix", index_option="basic")
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
        # Each word goes into the prefix field of the strongest field that holds it, and
        # only there: a preview counts a word once, at its best weight, and every prefix
        # posting list is no longer than it must be.
        split = _SPLIT.analyze
        best: dict[str, tuple[float, str]] = {}
        for name, pfield, weight in self._prefixes:
            value = get(name)
            for text in [value] if type(value) is str else _strings(value):
                for w in split(text):
                    w = w[:PREFIX_MAX]
                    held = best.get(w)
                    if held is None or held[0] < weight:
                        best[w] = (weight, pfield)
        for w, (_weight, pfield) in best.items():
            doc.setdefault(pfield, []).append(w)
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
    index.register_tokenizer("sg_text", TEXT)
    index.register_tokenizer("sg_prefix", PREFIXES)
    index.register_tokenizer("sg_word", VOCABULARY)
