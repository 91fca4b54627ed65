"""Searches a collection the way the GroupBy v1 protocol describes."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson

from searchgate.catalog.areas import AreaService
from searchgate.catalog.service import CatalogService
from searchgate.catalog.settings import CollectionSettings, NavigationSetting
from searchgate.config import Limits
from searchgate.engines.base import (
    Boost,
    FacetRequest,
    FacetResult,
    Filter,
    Ids,
    Not,
    Or,
    Range,
    SearchEngine,
    SearchPlan,
    SearchResult,
    SortKey,
    Terms,
    TextQuery,
    and_,
)
from searchgate.engines.tantivy.layout import value_key, words
from searchgate.errors import InvalidInput, NotFound
from searchgate.search.prefilter import parse_prefilter
from searchgate.search.request import SearchRequest, SelectedRefinement

MAX_WORDS = 32
STRENGTH_FACTOR = {
    "Absolute_Increase": 1e6,
    "Strong_Increase": 3.0,
    "Medium_Increase": 2.0,
    "Weak_Increase": 1.0,
    "Leave_Unchanged": 0.0,
    "Weak_Decrease": -1.0,
    "Medium_Decrease": -2.0,
    "Strong_Decrease": -3.0,
    "Absolute_Decrease": -1e6,
}
ABSOLUTE = 1e6
DEFAULT_INFLUENCE = 5.0

QueryRecorder = Callable[[str, str], None]


class SearchService:
    def __init__(
        self,
        engine: SearchEngine,
        catalog: CatalogService,
        areas: AreaService,
        limits: Limits,
        settings_of: Callable[[str], CollectionSettings | None],
        record_query: QueryRecorder | None = None,
    ) -> None:
        self.engine = engine
        self.catalog = catalog
        self.areas = areas
        self.limits = limits
        self.settings_of = settings_of
        self.record_query = record_query

    # --- entry points ------------------------------------------------------------------

    def search(self, req: SearchRequest) -> dict[str, Any]:
        area = self.areas.get(req.area)
        self._check_limits(req)
        settings = self._settings(req.collection)
        query = req.query or ""
        result, corrected = self._run(req, settings, query)
        if self.record_query is not None and query.strip() and result is not None and result.total:
            self.record_query(req.collection, query)
        return self._response(req, settings, area.site_params, result, corrected)

    def refinements(self, req: SearchRequest, navigation_name: str) -> dict[str, Any]:
        self.areas.get(req.area)
        self._check_limits(req)
        settings = self._settings(req.collection)
        nav = settings.navigation(navigation_name)
        if nav is None:
            raise InvalidInput(
                f"{navigation_name!r} is not a navigation of collection {req.collection!r}",
                field="navigationName",
            )
        limit = self.limits.max_navigation_values
        sub = req.model_copy(
            update={
                "page_size": 0,
                "restrict_navigation": None,
                "included_navigations": [],
                "excluded_navigations": [],
            }
        )
        if not self.engine.has_collection(req.collection):
            return {"navigation": self._navigation(nav, FacetResult(nav.name), 0, False, limit)}
        filt, _without = self._filters(sub, settings)
        facet = self._facet_request(sub, nav, settings, limit + 1)
        plan = SearchPlan(
            text=self._text(sub, words(req.query or "")[:MAX_WORDS]),
            filter=filt,
            limit=1,
            facets=(facet,),
        )
        result = self.engine.search(req.collection, plan)
        fr = result.facets.get(nav.name, FacetResult(nav.name))
        return {"navigation": self._navigation(nav, fr, result.total, False, limit)}

    # --- planning ------------------------------------------------------------------------

    def _settings(self, collection: str) -> CollectionSettings:
        settings = self.settings_of(collection)
        if settings is None:
            settings = self.catalog.settings_of(collection)
        if settings is None:
            raise NotFound(f"collection {collection!r} does not exist", field="collection")
        return settings

    def _check_limits(self, req: SearchRequest) -> None:
        lim = self.limits
        if len(req.query or "") > lim.max_query_chars:
            raise InvalidInput(f"query: at most {lim.max_query_chars} characters", field="query")
        if req.page_size > lim.max_page_size:
            raise InvalidInput(f"pageSize: at most {lim.max_page_size}", field="pageSize")
        if req.skip > lim.max_skip:
            raise InvalidInput(f"skip: at most {lim.max_skip}", field="skip")
        if len(req.refinements) > lim.max_refinements:
            raise InvalidInput(f"refinements: at most {lim.max_refinements}", field="refinements")
        if req.biasing is not None:
            for name, ids in (
                ("biasing.bringToTop", req.biasing.bring_to_top),
                ("biasing.restrictToIds", req.biasing.restrict_to_ids),
            ):
                if len(ids) > lim.max_ids:
                    raise InvalidInput(f"{name}: at most {lim.max_ids} ids", field=name)
        for s in req.sorts():
            if s.ids is not None and len(s.ids) > lim.max_ids:
                raise InvalidInput(f"sort.ids: at most {lim.max_ids} ids", field="sort.ids")

    def _text(self, req: SearchRequest, ws: list[str]) -> TextQuery | None:
        if not ws:
            return None
        return TextQuery(words=tuple(ws), prefix_last=req.wildcard_search_enabled)

    def _refinement_filter(
        self, nav: NavigationSetting, refs: list[SelectedRefinement]
    ) -> Filter | None:
        include: list[Filter] = []
        exclude: list[Filter] = []
        for r in refs:
            f = self._one_refinement(nav, r)
            (exclude if r.exclude else include).append(f)
        parts: list[Filter] = []
        if include:
            if nav.multi_select:
                parts.append(include[0] if len(include) == 1 else Or(tuple(include)))
            else:
                parts.extend(include)
        parts.extend(Not(f) for f in exclude)
        return and_(*parts) if parts else None

    def _one_refinement(self, nav: NavigationSetting, r: SelectedRefinement) -> Filter:
        field = f"refinements[{nav.name}]"
        if r.type == "Value":
            key = value_key(r.value)
            if key is None:
                raise InvalidInput("a Value refinement needs a value", field=field)
            if nav.type == "Range":
                try:
                    num = float(key)
                except ValueError:
                    raise InvalidInput(
                        f"{nav.name!r} is a range navigation: use low/high", field=field
                    ) from None
                return Range(nav.name, num, num, high_inclusive=True)
            return Terms(nav.name, (key,))
        low, high = _num(r.low, field), _num(r.high, field)
        if low is None and high is None:
            raise InvalidInput("a Range refinement needs low, high or both", field=field)
        if low is not None and high is not None and low > high:
            raise InvalidInput("a Range refinement's low must not exceed its high", field=field)
        if nav.type != "Range":
            raise InvalidInput(f"{nav.name!r} is not a range navigation", field=field)
        return Range(nav.name, low, high)

    def _grouped(
        self, req: SearchRequest, settings: CollectionSettings
    ) -> dict[str, tuple[NavigationSetting, list[SelectedRefinement]]]:
        grouped: dict[str, tuple[NavigationSetting, list[SelectedRefinement]]] = {}
        for r in req.refinements:
            nav = settings.navigation(r.navigation_name)
            if nav is None:
                raise InvalidInput(
                    f"{r.navigation_name!r} is not a navigation of collection {req.collection!r}",
                    field="refinements.navigationName",
                )
            if r.navigation_name in req.or_fields and not nav.multi_select:
                nav = nav.model_copy(update={"multi_select": True})
            grouped.setdefault(nav.name, (nav, []))[1].append(r)
        return grouped

    def _filters(
        self, req: SearchRequest, settings: CollectionSettings
    ) -> tuple[Filter, dict[str, Filter | None]]:
        """The full filter, and per navigation the filter without that navigation's own
        selection (for multi-select counts)."""
        grouped = self._grouped(req, settings)
        base: list[Filter | None] = []
        if req.pre_filter:
            base.append(parse_prefilter(req.pre_filter, settings, self.limits.max_prefilter_chars))
        if req.biasing is not None and req.biasing.restrict_to_ids:
            base.append(Ids(tuple(req.biasing.restrict_to_ids)))
        per_nav = {
            name: self._refinement_filter(nav, refs) for name, (nav, refs) in grouped.items()
        }
        full = and_(*base, *per_nav.values())
        without: dict[str, Filter | None] = {}
        for name, (nav, _refs) in grouped.items():
            if nav.multi_select:
                without[name] = and_(*base, *(f for n, f in per_nav.items() if n != name))
        return full, without

    def _facet_request(
        self,
        req: SearchRequest,
        nav: NavigationSetting,
        settings: CollectionSettings,
        size: int,
        override: Filter | None = None,
    ) -> FacetRequest:
        return FacetRequest(
            name=nav.name,
            kind=nav.type,
            size=size,
            ranges=tuple((b.low, b.high) for b in nav.ranges),
            filter_override=override,
        )

    def _facets(
        self, req: SearchRequest, settings: CollectionSettings, without: dict[str, Filter | None]
    ) -> tuple[FacetRequest, ...]:
        navs = settings.navigations
        if req.restrict_navigation is not None:
            navs = [n for n in navs if n.name == req.restrict_navigation.name]
        if req.included_navigations:
            navs = [n for n in navs if n.name in req.included_navigations]
        if req.excluded_navigations:
            navs = [n for n in navs if n.name not in req.excluded_navigations]
        out = []
        for nav in navs:
            size = nav.max_values
            if req.restrict_navigation is not None:
                size = req.restrict_navigation.count
            multi = nav.multi_select or nav.name in req.or_fields
            override = without.get(nav.name) if multi else None
            if multi and nav.name in without and override is None:
                override = and_()
            out.append(self._facet_request(req, nav, settings, size + 1, override))
        return tuple(out)

    def _sort(
        self, req: SearchRequest, settings: CollectionSettings
    ) -> tuple[tuple[SortKey, ...], tuple[str, ...]]:
        keys: list[SortKey] = []
        pinned: list[str] = []
        for i, s in enumerate(req.sorts()):
            if s.type == "ByIds":
                pinned.extend(s.ids or [])
                continue
            if not s.field:
                raise InvalidInput("a sort needs a field", field=f"sort[{i}].field")
            if s.field != "_relevance" and s.field not in settings.sortable:
                raise InvalidInput(
                    f"{s.field!r} is not sortable in {req.collection!r} "
                    f"(sortable: {', '.join(settings.sortable) or 'none'})",
                    field=f"sort[{i}].field",
                )
            keys.append(SortKey(s.field, s.order == "Descending"))
        if req.biasing is not None:
            pinned = list(req.biasing.bring_to_top) + pinned
        return tuple(keys), tuple(dict.fromkeys(pinned))

    def _boosts(self, req: SearchRequest, settings: CollectionSettings) -> tuple[Boost, ...]:
        if req.biasing is None:
            return ()
        influence = req.biasing.influence if req.biasing.influence is not None else 5.0
        out = []
        for i, b in enumerate(req.biasing.biases):
            nav = settings.navigation(b.name)
            if nav is None or nav.type != "Value":
                raise InvalidInput(
                    f"{b.name!r} is not a value navigation", field=f"biasing.biases[{i}].name"
                )
            key = value_key(b.content)
            factor = STRENGTH_FACTOR[b.strength]
            if key is None or factor == 0:
                continue
            bonus = factor if abs(factor) >= ABSOLUTE else factor * influence
            out.append(Boost(Terms(nav.name, (key,)), bonus))
        return tuple(out)

    def _plan(self, req: SearchRequest, settings: CollectionSettings, ws: list[str]) -> SearchPlan:
        filt, without = self._filters(req, settings)
        sort, pinned = self._sort(req, settings)
        return SearchPlan(
            text=self._text(req, ws),
            filter=filt,
            boosts=self._boosts(req, settings) if not sort else (),
            sort=sort,
            pinned_ids=pinned,
            offset=req.skip,
            limit=max(req.page_size, 1),
            facets=self._facets(req, settings, without),
        )

    def _run(
        self, req: SearchRequest, settings: CollectionSettings, query: str
    ) -> tuple[SearchResult | None, str | None]:
        ws = words(query)[:MAX_WORDS]
        plan = self._plan(req, settings, ws)
        if not self.engine.has_collection(req.collection):
            return None, None
        result = self.engine.search(req.collection, plan)
        if result.total or not ws or req.disable_autocorrection:
            return result, None
        corrected_words = [self._correct(req.collection, w) for w in ws]
        if corrected_words == ws:
            return result, None
        retry = self.engine.search(req.collection, self._plan(req, settings, corrected_words))
        if not retry.total:
            return result, None
        return retry, " ".join(corrected_words)

    def _correct(self, collection: str, word: str) -> str:
        if len(word) < 3 or word.isdigit():
            return word
        exact = self.engine.complete_words(collection, word, 1)
        if exact and exact[0][0] == word:
            return word
        similar = self.engine.similar_words(collection, word, 1)
        return similar[0][0] if similar else word

    # --- the response ----------------------------------------------------------------------

    def _response(
        self,
        req: SearchRequest,
        settings: CollectionSettings,
        site_params: list[dict[str, Any]],
        result: SearchResult | None,
        corrected: str | None,
    ) -> dict[str, Any]:
        total = result.total if result is not None else 0
        hits = result.hits if result is not None and req.page_size > 0 else []
        records = [self._record(req, settings, h.record_id, h.source) for h in hits]
        warnings: list[str] = []
        if result is None:
            warnings.append(f"collection {req.collection!r} is still being indexed")
        navigations = []
        if result is not None:
            for f in self._facets(req, settings, {}):
                nav = settings.navigation(f.name)
                fr = result.facets.get(f.name)
                if nav is None or fr is None:
                    continue
                nav_out = self._navigation(nav, fr, total, req.prune_refinements, f.size - 1)
                if req.or_fields and nav.name in req.or_fields:
                    nav_out["or"] = True
                if nav_out["refinements"]:
                    navigations.append(nav_out)
        original = req.query or ""
        return {
            "id": secrets.token_hex(12),
            "area": req.area,
            "query": corrected if corrected is not None else original,
            "originalQuery": original,
            "correctedQuery": corrected or "",
            "totalRecordCount": total,
            "pageInfo": {
                "recordStart": req.skip + 1 if records else 0,
                "recordEnd": req.skip + len(records) if records else 0,
            },
            "records": records,
            "availableNavigation": navigations,
            "selectedNavigation": self._selected(req, settings),
            "template": {"name": "default", "ruleName": None, "zones": {}},
            "redirect": None,
            "didYouMean": [corrected] if corrected else [],
            "relatedQueries": [],
            "rewrites": [],
            "warnings": warnings,
            "errors": "",
            "siteParams": site_params,
            "originalRequest": req.model_dump(
                by_alias=True, exclude={"client_key"}, exclude_unset=True, mode="json"
            ),
        }

    def _record(
        self, req: SearchRequest, settings: CollectionSettings, record_id: str, source: str
    ) -> dict[str, Any]:
        meta: dict[str, Any] = orjson.loads(source)
        title = meta.get(settings.title_field) if settings.title_field else None
        url = meta.get(settings.url_field) if settings.url_field else None
        if req.fields is not None and "*" not in req.fields:
            wanted = set(req.fields) | {settings.id_field}
            meta = {k: v for k, v in meta.items() if k in wanted}
        return {
            "_id": record_id,
            "_u": url if isinstance(url, str) else f"/{quote(req.collection)}/{quote(record_id)}",
            "_t": title if isinstance(title, str) else record_id,
            "allMeta": meta,
            "collection": req.collection,
        }

    def _navigation(
        self, nav: NavigationSetting, fr: FacetResult, total: int, prune: bool, size: int
    ) -> dict[str, Any]:
        refinements: list[dict[str, Any]] = []
        more = False
        # A refinement that every result has would not narrow anything: pruned. Multi-
        # select counts ignore their own selection, so they are never pruned.
        prune = prune and total > 0 and not nav.multi_select
        if nav.type == "Range":
            for low, high, count in fr.ranges:
                if count == 0 or (prune and count == total):
                    continue
                refinements.append({"type": "Range", "low": low, "high": high, "count": count})
        else:
            values = fr.values
            if len(values) > size:
                values, more = values[:size], True
            for value, count in values:
                if prune and count == total:
                    continue
                refinements.append({"type": "Value", "value": value, "count": count})
        return {
            "name": nav.name,
            "displayName": nav.display_name or nav.name,
            "type": nav.type,
            "range": nav.type == "Range",
            "or": nav.multi_select,
            "refinements": refinements,
            "metadata": [],
            "moreRefinements": more,
            "sort": None,
        }

    def _selected(self, req: SearchRequest, settings: CollectionSettings) -> list[dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for r in req.refinements:
            nav = settings.navigation(r.navigation_name)
            if nav is None:
                continue
            entry = out.setdefault(
                nav.name,
                {
                    "name": nav.name,
                    "displayName": nav.display_name or nav.name,
                    "type": nav.type,
                    "range": nav.type == "Range",
                    "or": nav.multi_select or nav.name in req.or_fields,
                    "refinements": [],
                },
            )
            ref: dict[str, Any] = {"type": r.type, "exclude": r.exclude}
            if r.type == "Value":
                ref["value"] = r.value
            else:
                ref["low"], ref["high"] = r.low, r.high
            entry["refinements"].append(ref)
        return list(out.values())


def _num(v: float | str | None, field: str) -> float | None:
    if v is None or v == "":
        return None
    try:
        return float(v)
    except ValueError:
        raise InvalidInput(f"{v!r} is not a number", field=field) from None
