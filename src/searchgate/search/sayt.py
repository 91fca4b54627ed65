"""Search as you type: suggested terms, matching navigation values and products."""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from searchgate.catalog.areas import AreaService
from searchgate.catalog.service import CatalogService
from searchgate.catalog.settings import CollectionSettings, SaytSettings
from searchgate.clock import Clock, Monotonic, utc_now
from searchgate.config import Limits
from searchgate.engines.base import (
    Alternative,
    And,
    FacetRequest,
    Filter,
    MatchAll,
    SearchPlan,
    SortKey,
    TextQuery,
)
from searchgate.engines.tantivy.engine import TantivyEngine
from searchgate.engines.tantivy.layout import fold, words
from searchgate.errors import InvalidInput, NotFound
from searchgate.merchandising.apply import CompiledMerchandising, SearchContext
from searchgate.merchandising.live import MerchandisingLookup
from searchgate.search.prefilter import parse_prefilter
from searchgate.search.querylog import QueryLog, normalise
from searchgate.search.sayt_forms import parse_product_sort, parse_refinements

MAX_ITEMS = 50
MAX_WORDS = 16
NAV_VALUES_CACHE_SECONDS = 5.0
# How long the stored SAYT settings (public or not, public fields) are reused.
SAYT_SETTINGS_CACHE_SECONDS = 1.0
NAV_VALUES_MAX = 5000
# How many value words one typed prefix may visit: a one-letter prefix stops early.
NAV_SCAN_MAX = 2000
# With a browser token's fixed filter, candidate terms are checked against it one by
# one: gather a few more than asked for, since some will not pass.
FORCED_OVERSAMPLE = 3


@dataclass(frozen=True)
class SaytRequest:
    query: str
    collection: str = "default"
    area: str = "Production"
    search_items: int = 5
    navigation_items: int = 5
    product_items: int = 0
    fuzzy: bool = False
    alphabetize: bool = False
    product_sort: str | None = None
    refinements: str | None = None
    # A browser token's fixed filter: products outside it are never suggested.
    pre_filter: str | None = None


def _distance(a: str, b: str) -> int:
    """Characters to add, drop or change to turn ``b`` (what was typed) into ``a``."""
    if a.startswith(b):
        return len(a) - len(b)
    if len(a) > 64 or len(b) > 64:
        return abs(len(a) - len(b))
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _depluralise(text: str) -> str:
    return " ".join(w[:-1] if w.endswith("s") and not w.endswith("ss") else w for w in text.split())


@dataclass(frozen=True)
class _NavValues:
    """One navigation's values, most frequent first, with a sorted word index."""

    expires: float
    seq: int  # the index position they were read at
    values: list[str]
    index: list[tuple[str, int]]  # (folded word, position in values), sorted

    def matching(self, typed: list[str], limit: int) -> list[str]:
        """Values with a word that starts with one of the typed words; values that match
        more of the typed words first, then the more frequent."""
        hits: dict[int, int] = {}
        for t in dict.fromkeys(typed):
            seen: set[int] = set()
            i = bisect.bisect_left(self.index, (t, -1))
            end = min(len(self.index), i + NAV_SCAN_MAX)
            while i < end and self.index[i][0].startswith(t):
                seen.add(self.index[i][1])
                i += 1
            for pos in seen:
                hits[pos] = hits.get(pos, 0) + 1
        ranked = sorted(hits, key=lambda pos: (-hits[pos], pos))[:limit]
        return [self.values[pos] for pos in ranked]


class SaytService:
    def __init__(
        self,
        engine: TantivyEngine,
        catalog: CatalogService,
        areas: AreaService,
        query_log: QueryLog,
        limits: Limits,
        monotonic: Monotonic = time.monotonic,
        merchandising: MerchandisingLookup | None = None,
        clock: Clock = utc_now,
    ) -> None:
        """``merchandising``: the area's published synonyms, stop words and the hiding
        and filters of the rules the typed text triggers apply to product previews."""
        self.engine = engine
        self.catalog = catalog
        self.areas = areas
        self.query_log = query_log
        self.limits = limits
        self.monotonic = monotonic
        self.merchandising = merchandising
        self.clock = clock
        self._nav_values: dict[tuple[str, str], _NavValues] = {}
        self._sayt_settings: dict[str, tuple[float, SaytSettings | None]] = {}

    def settings(self, collection: str) -> CollectionSettings:
        settings = self.engine.settings_of(collection) or self.catalog.settings_of(collection)
        if settings is None:
            raise NotFound(f"collection {collection!r} does not exist", field="collection")
        return settings

    def sayt_settings(self, collection: str) -> SaytSettings | None:
        """The SAYT settings as stored now, not as the index was built: making SAYT
        private again takes effect within a second, not after the index rebuild."""
        now = self.monotonic()
        hit = self._sayt_settings.get(collection)
        if hit is not None and hit[0] > now:
            return hit[1]
        stored = self.catalog.settings_of(collection)
        if len(self._sayt_settings) > 1000:
            self._sayt_settings.clear()
        sayt = stored.sayt if stored is not None else None
        self._sayt_settings[collection] = (now + SAYT_SETTINGS_CACHE_SECONDS, sayt)
        return sayt

    def is_public(self, collection: str) -> bool:
        """Whether SAYT on ``collection`` answers without a key (False when unknown)."""
        sayt = self.sayt_settings(collection)
        return sayt is not None and sayt.public

    def check(self, req: SaytRequest) -> None:
        if not req.query.strip():
            raise InvalidInput("query is required (the text typed so far)", field="query")
        if len(req.query) > self.limits.max_query_chars:
            raise InvalidInput(
                f"query: at most {self.limits.max_query_chars} characters", field="query"
            )
        for name, value in (
            ("searchItems", req.search_items),
            ("navigationItems", req.navigation_items),
            ("productItems", req.product_items),
        ):
            if not 0 <= value <= MAX_ITEMS:
                raise InvalidInput(f"{name}: 0 to {MAX_ITEMS}", field=name)

    def search(self, req: SaytRequest, public: bool) -> dict[str, Any]:
        """``public``: the caller has no key, so products carry only the public fields."""
        self.check(req)
        self.areas.get(req.area)
        settings = self.settings(req.collection)
        if public:
            stored = self.sayt_settings(req.collection)
            shown = stored.public_fields if stored is not None and stored.public else []
            settings = settings.model_copy(
                update={"sayt": settings.sayt.model_copy(update={"public_fields": shown})}
            )
        # Parsed before searching so that a malformed one is a 400 even on an empty index.
        filter = parse_refinements(req.refinements, settings, self.limits.max_refinements)
        forced: Filter | None = None
        if req.pre_filter:
            forced = parse_prefilter(req.pre_filter, settings, self.limits.max_prefilter_chars)
            filter = And((forced, filter))
        sort = parse_product_sort(req.product_sort, settings)
        ws = words(req.query)[:MAX_WORDS]
        compiled = self.merchandising.compiled(req.area) if self.merchandising is not None else None
        product_ws = ws
        if compiled is not None and ws:
            product_ws, merch_filter = self._merchandise(compiled, req, settings, ws)
            if merch_filter is not None:
                filter = And((filter, merch_filter))
        terms: list[dict[str, Any]] = []
        navs: list[dict[str, Any]] = []
        products: list[dict[str, Any]] = []
        if self.engine.has_collection(req.collection) and ws:
            open_end = req.query.endswith(" ")
            terms = self._terms(req, ws, open_end, forced)
            navs = self._navigations(req, settings, ws, forced)
            products = self._products(req, settings, public, product_ws, filter, sort, compiled)
            missing = (
                (req.search_items and not terms)
                or (req.navigation_items and not navs)
                or (req.product_items and not products)
            )
            if req.fuzzy and missing:
                # A typo: what was asked for and not found, for the closest indexed words.
                fixed = self._corrected(req.collection, ws)
                if fixed is not None:
                    terms = terms or self._terms(req, fixed, open_end, forced)
                    navs = navs or self._navigations(req, settings, fixed, forced)
                    products = products or self._products(
                        req, settings, public, fixed, filter, sort, compiled
                    )
        typed = " ".join(ws)
        for t in terms:
            t["distanceToSearch"] = _distance(t["value"], typed)
            t["distanceToDepluralized"] = _distance(_depluralise(t["value"]), _depluralise(typed))
        return {
            "status": {
                "code": 200,
                "internalCode": 0,
                "message": "OK",
                "additionalInfo": None,
                "serverTimeStamp": int(time.time() * 1000),
            },
            "result": {
                "stats": {
                    "navigationCount": len(navs),
                    "searchCount": len(terms),
                    "productCount": len(products),
                    "autocompleteResponse": req.search_items > 0 or req.navigation_items > 0,
                    "productSearchResponse": req.product_items > 0,
                },
                "searchTerms": terms,
                "navigations": navs,
                "products": products,
            },
        }

    def _merchandise(
        self,
        compiled: CompiledMerchandising,
        req: SaytRequest,
        settings: CollectionSettings,
        ws: list[str],
    ) -> tuple[list[str], Filter | None]:
        """The words products are matched with (stop words dropped), and what the rules
        the typed text triggers take out: their hidden records and their filters."""
        outcome = compiled.outcome(
            SearchContext(req.collection, ws, [], {}, None, False, False, self.clock()),
            explain=False,
        )
        parts = compiled.exclusions(
            outcome, req.collection, settings, self.limits.max_prefilter_chars
        )
        merch = parts[0] if len(parts) == 1 else And(tuple(parts)) if parts else None
        return outcome.words, merch

    def _corrected(self, collection: str, ws: list[str]) -> list[str] | None:
        """``ws`` with each word that starts no indexed word replaced by the closest one."""
        out = []
        for w in ws:
            if len(w) >= 3 and not w.isdigit() and not self.engine.complete_words(collection, w, 1):
                similar = self.engine.similar_words(collection, w, 1)
                out.append(similar[0][0] if similar else w)
            else:
                out.append(w)
        return out if out != ws else None

    def _terms(
        self, req: SaytRequest, ws: list[str], open_end: bool, forced: Filter | None = None
    ) -> list[dict[str, Any]]:
        """What people searched that starts with the typed text, most searched first, then
        completions of the last word among the records that match the earlier ones.

        With a browser token's fixed filter, only terms that find a record within it are
        suggested: the vocabulary of the other records must not show through."""
        wanted = req.search_items
        if wanted == 0:
            return []
        limit = wanted * FORCED_OVERSAMPLE if forced is not None else wanted
        typed = " ".join(ws) + (" " if open_end else "")
        found: dict[str, None] = {}
        for q, _n in self.query_log.completions(req.collection, typed, limit):
            found[q] = None
        if len(found) < limit and not open_end:
            head = ws[:-1]
            within = TextQuery(words=tuple(head), every_word_prefix=True) if head else None
            for word, _c in self.engine.complete_words(req.collection, ws[-1], limit * 2, within):
                if word in head:
                    continue
                found.setdefault(normalise(" ".join([*head, word])), None)
                if len(found) >= limit:
                    break
        values = list(found)
        if forced is not None:
            values = [v for v in values if self._finds_any(req.collection, v, forced)]
        values = values[:wanted]
        if req.alphabetize:
            values.sort()
        return [
            {"value": v, "additionalInfo": {}, "distanceToSearch": 0, "distanceToDepluralized": 0}
            for v in values
        ]

    def _values_of(self, collection: str, nav_name: str) -> _NavValues:
        key = (collection, nav_name)
        now = self.monotonic()
        hit = self._nav_values.get(key)
        if hit is not None and hit.expires > now:
            return hit
        seq = self.engine.applied_seq()
        if hit is not None and hit.seq == seq:
            # Nothing changed since: reading them again would only cost a facet count.
            entry = _NavValues(now + NAV_VALUES_CACHE_SECONDS, seq, hit.values, hit.index)
            self._nav_values[key] = entry
            return entry
        read = self._read_values(collection, nav_name, MatchAll(), 0.0)
        entry = _NavValues(now + NAV_VALUES_CACHE_SECONDS, seq, read.values, read.index)
        self._nav_values[key] = entry
        return entry

    def _read_values(
        self, collection: str, nav_name: str, filter: Filter, expires: float
    ) -> _NavValues:
        """A navigation's values, most frequent first, among the records ``filter`` keeps."""
        plan = SearchPlan(
            text=None,
            filter=filter,
            limit=1,
            facets=(FacetRequest(name=nav_name, kind="Value", size=NAV_VALUES_MAX),),
        )
        result = self.engine.search(collection, plan)
        values = (
            [v for v, _c in result.facets[nav_name].values] if nav_name in result.facets else []
        )
        index = sorted((w, pos) for pos, v in enumerate(values) for w in set(words(v)))
        return _NavValues(expires, -1, values, index)

    def _finds_any(self, collection: str, term: str, forced: Filter) -> bool:
        plan = SearchPlan(text=TextQuery(words=tuple(words(term))), filter=forced, limit=1)
        return bool(self.engine.search(collection, plan).hits)

    def _values_within(self, collection: str, nav_name: str, forced: Filter) -> _NavValues:
        """Not cached: the filter is the token's, and tokens are many."""
        return self._read_values(collection, nav_name, forced, 0.0)

    def _navigations(
        self,
        req: SaytRequest,
        settings: CollectionSettings,
        ws: list[str],
        forced: Filter | None = None,
    ) -> list[dict[str, Any]]:
        if req.navigation_items == 0:
            return []
        out = []
        for name in settings.sayt.navigations:
            nav = settings.navigation(name)
            if nav is None or nav.type != "Value":
                continue
            known = (
                self._values_of(req.collection, name)
                if forced is None
                else self._values_within(req.collection, name, forced)
            )
            matches = known.matching(ws, req.navigation_items)
            if req.alphabetize:
                matches.sort(key=fold)
            if matches:
                out.append(
                    {"name": name, "displayName": nav.display_name or name, "values": matches}
                )
        return out

    def _products(
        self,
        req: SaytRequest,
        settings: CollectionSettings,
        public: bool,
        ws: list[str],
        filter: Filter,
        sort: tuple[SortKey, ...],
        compiled: CompiledMerchandising | None = None,
    ) -> list[dict[str, Any]]:
        if req.product_items == 0:
            return []
        alternatives: tuple[Alternative, ...] = ()
        if compiled is not None:
            alternatives = compiled.expand(req.collection, ws)[0]
        plan = SearchPlan(
            text=TextQuery(words=tuple(ws), every_word_prefix=True, alternatives=alternatives),
            filter=filter,
            sort=sort,
            limit=req.product_items,
        )
        result = self.engine.search(req.collection, plan)
        return [
            _product(req.collection, settings, public, h.record_id, orjson.loads(h.source))
            for h in result.hits
        ]


def _product(
    collection: str,
    settings: CollectionSettings,
    public: bool,
    record_id: str,
    meta: dict[str, Any],
) -> dict[str, Any]:
    title = meta.get(settings.title_field) if settings.title_field else None
    url = meta.get(settings.url_field) if settings.url_field else None
    if not public:
        return {
            "_id": record_id,
            "_u": url if isinstance(url, str) else f"/{quote(collection)}/{quote(record_id)}",
            "_t": title if isinstance(title, str) else record_id,
            "allMeta": meta,
            "collection": collection,
        }
    # Without a key a browser sees only what the collection's SAYT settings list:
    # title and URL too are shown only when they are among those fields.
    allowed = settings.sayt.public_fields
    out: dict[str, Any] = {"_id": record_id}
    if settings.url_field in allowed and isinstance(url, str):
        out["_u"] = url
    if settings.title_field in allowed and isinstance(title, str):
        out["_t"] = title
    out["allMeta"] = {k: meta[k] for k in allowed if k in meta}
    out["collection"] = collection
    return out
