"""Search as you type: suggested terms, matching navigation values and products."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from searchgate.catalog.areas import AreaService
from searchgate.catalog.service import CatalogService
from searchgate.catalog.settings import CollectionSettings
from searchgate.config import Limits
from searchgate.engines.base import (
    FacetRequest,
    Filter,
    MatchAll,
    Range,
    SearchPlan,
    SortKey,
    Terms,
    TextQuery,
    and_,
)
from searchgate.engines.tantivy.engine import TantivyEngine
from searchgate.engines.tantivy.layout import fold, words
from searchgate.errors import InvalidInput, NotFound
from searchgate.search.querylog import QueryLog

MAX_ITEMS = 50
NAV_VALUES_CACHE_SECONDS = 5.0
_SORT = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\-]*):([AD])$")


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


def parse_product_sort(text: str | None, settings: CollectionSettings) -> tuple[SortKey, ...]:
    if not text:
        return ()
    keys = []
    for part in (p for p in text.split("~") if p):
        m = _SORT.match(part)
        if m is None:
            raise InvalidInput(
                f"productSort: {part!r} is not field:A or field:D", field="productSort"
            )
        if m.group(1) not in settings.sortable:
            raise InvalidInput(f"productSort: {m.group(1)!r} is not sortable", field="productSort")
        keys.append(SortKey(m.group(1), m.group(2) == "D"))
    return tuple(keys)


def parse_refinements(text: str | None, settings: CollectionSettings) -> Filter:
    """``~Brand=Bose~price:20..80``: values with '=', numeric ranges with ':low..high'."""
    if not text:
        return MatchAll()
    parts: dict[str, list[Filter]] = {}
    for item in (p for p in text.split("~") if p):
        if "=" in item:
            name, value = item.split("=", 1)
            nav = settings.navigation(name)
            if nav is None or nav.type != "Value":
                raise InvalidInput(
                    f"refinements: {name!r} is not a value navigation", field="refinements"
                )
            parts.setdefault(name, []).append(Terms(name, (value,)))
        elif ":" in item and ".." in item:
            name, span = item.split(":", 1)
            low_s, high_s = span.split("..", 1)
            nav = settings.navigation(name)
            if nav is None or nav.type != "Range":
                raise InvalidInput(
                    f"refinements: {name!r} is not a range navigation", field="refinements"
                )
            try:
                low = float(low_s) if low_s else None
                high = float(high_s) if high_s else None
            except ValueError:
                raise InvalidInput(
                    f"refinements: bad range {span!r}", field="refinements"
                ) from None
            parts.setdefault(name, []).append(Range(name, low, high))
        else:
            raise InvalidInput(
                f"refinements: {item!r} is neither Name=value nor name:low..high",
                field="refinements",
            )
    return and_(*(f for fs in parts.values() for f in fs))


class SaytService:
    def __init__(
        self,
        engine: TantivyEngine,
        catalog: CatalogService,
        areas: AreaService,
        query_log: QueryLog,
        limits: Limits,
    ) -> None:
        self.engine = engine
        self.catalog = catalog
        self.areas = areas
        self.query_log = query_log
        self.limits = limits
        self._nav_values: dict[tuple[str, str], tuple[float, list[tuple[str, int]]]] = {}

    def settings(self, collection: str) -> CollectionSettings:
        settings = self.engine.settings_of(collection) or self.catalog.settings_of(collection)
        if settings is None:
            raise NotFound(f"collection {collection!r} does not exist", field="collection")
        return settings

    def check(self, req: SaytRequest) -> None:
        if not req.query.strip():
            raise InvalidInput("query is required", field="query")
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
        self.check(req)
        self.areas.get(req.area)
        settings = self.settings(req.collection)
        indexed = self.engine.has_collection(req.collection)
        terms = self._terms(req) if indexed else []
        navs = self._navigations(req, settings) if indexed else []
        products = self._products(req, settings, public) if indexed else []
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
                    "autocompleteResponse": req.product_items == 0,
                    "productSearchResponse": req.product_items > 0,
                },
                "searchTerms": terms,
                "navigations": navs,
                "products": products,
            },
        }

    def _terms(self, req: SaytRequest) -> list[dict[str, Any]]:
        if req.search_items == 0:
            return []
        typed = " ".join(words(req.query))
        found: dict[str, None] = {}
        for q, _n in self.query_log.completions(req.collection, req.query, req.search_items):
            found[q] = None
        if len(found) < req.search_items:
            ws = words(req.query)
            head = " ".join(ws[:-1])
            ending_space = req.query.endswith(" ")
            if ws and not ending_space:
                for word, _c in self.engine.complete_words(
                    req.collection, ws[-1], req.search_items * 2
                ):
                    phrase = f"{head} {word}".strip()
                    found.setdefault(phrase, None)
                    if len(found) >= req.search_items:
                        break
        if not found and req.fuzzy:
            ws = words(req.query)
            if ws:
                head = " ".join(ws[:-1])
                for word, _c in self.engine.similar_words(req.collection, ws[-1], req.search_items):
                    found.setdefault(f"{head} {word}".strip(), None)
        values = list(found)[: req.search_items]
        if req.alphabetize:
            values.sort()
        return [
            {
                "value": v,
                "additionalInfo": {},
                "distanceToSearch": max(len(v) - len(typed), 0),
                "distanceToDepluralized": max(len(v.rstrip("s")) - len(typed.rstrip("s")), 0),
            }
            for v in values
        ]

    def _values_of(self, collection: str, nav_name: str) -> list[tuple[str, int]]:
        key = (collection, nav_name)
        now = time.monotonic()
        hit = self._nav_values.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        plan = SearchPlan(
            text=None,
            limit=1,
            facets=(FacetRequest(name=nav_name, kind="Value", size=5000),),
        )
        result = self.engine.search(collection, plan)
        values = result.facets[nav_name].values if nav_name in result.facets else []
        self._nav_values[key] = (now + NAV_VALUES_CACHE_SECONDS, values)
        return values

    def _navigations(self, req: SaytRequest, settings: CollectionSettings) -> list[dict[str, Any]]:
        if req.navigation_items == 0:
            return []
        typed = words(req.query)
        if not typed:
            return []
        out = []
        for name in settings.sayt.navigations:
            nav = settings.navigation(name)
            if nav is None or nav.type != "Value":
                continue
            matches = []
            for value, _count in self._values_of(req.collection, name):
                vwords = words(value)
                if _word_prefixes_match(typed, vwords):
                    matches.append(value)
                    if len(matches) >= req.navigation_items:
                        break
            if req.alphabetize:
                matches.sort(key=fold)
            if matches:
                out.append(
                    {"name": name, "displayName": nav.display_name or name, "values": matches}
                )
        return out

    def _products(
        self, req: SaytRequest, settings: CollectionSettings, public: bool
    ) -> list[dict[str, Any]]:
        if req.product_items == 0:
            return []
        ws = words(req.query)[:16]
        if not ws:
            return []
        plan = SearchPlan(
            text=TextQuery(words=tuple(ws), every_word_prefix=True),
            filter=parse_refinements(req.refinements, settings),
            sort=parse_product_sort(req.product_sort, settings),
            limit=req.product_items,
        )
        result = self.engine.search(req.collection, plan)
        out = []
        for h in result.hits:
            meta: dict[str, Any] = orjson.loads(h.source)
            title = meta.get(settings.title_field) if settings.title_field else None
            url = meta.get(settings.url_field) if settings.url_field else None
            if public:
                allowed = set(settings.sayt.public_fields)
                meta = {k: v for k, v in meta.items() if k in allowed}
            out.append(
                {
                    "_id": h.record_id,
                    "_u": url
                    if isinstance(url, str)
                    else f"/{quote(req.collection)}/{quote(h.record_id)}",
                    "_t": title if isinstance(title, str) else h.record_id,
                    "allMeta": meta,
                    "collection": req.collection,
                }
            )
        return out


def _word_prefixes_match(typed: list[str], value_words: list[str]) -> bool:
    """Every typed word is a prefix of some word of the value (the last may be partial)."""
    return all(any(vw.startswith(t) for vw in value_words) for t in typed)
