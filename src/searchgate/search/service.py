"""Searches a collection the way the GroupBy v1 protocol describes.

Decisions where the protocol is silent:
- Several values selected on one navigation combine with AND, unless the navigation
  is OR (``"or": true`` in its settings, or named in the request's ``orFields``): then
  they combine with OR, and that navigation's counts ignore its own selection while
  every other navigation's counts respect it. ``exclude: true`` refinements are
  removed from the result (``NOT``) in both cases.
- ``pruneRefinements`` (default true) drops refinements whose count equals the total,
  since selecting them would change nothing; an OR navigation's counts ignore its own
  selection, so it is never pruned. A navigation left without refinements is omitted.
- Value navigations list their values by count, most first, then by value; range
  navigations list their configured buckets in order, without the empty ones.
- ``restrictNavigation`` and the refinements endpoint reject an unknown navigation
  (400), as refinements do; ``includedNavigations``/``excludedNavigations`` only filter.
- Value biases apply to value navigations and count when results are ranked by
  relevance (no sort, or a ``_relevance`` key). A bias adds ``strength * influence`` to
  the score of the records it matches (a decrease adds it to every other record);
  ``Absolute_*`` strengths put matching records above (below) every other one.
- Autocorrection: when a query finds nothing, each word that matches no record alone
  is replaced by the most frequent indexed title word within a small edit distance,
  and the search is run again; if that finds something the response carries
  ``correctedQuery``, ``didYouMean`` and ``query`` (corrected) next to
  ``originalQuery`` (as typed).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from typing import Any

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
from searchgate.search.navigation import navigation_out, record_out, selected_out
from searchgate.search.prefilter import parse_prefilter
from searchgate.search.request import SearchRequest, SelectedRefinement

MAX_WORDS = 32
# Absolute strengths add a bonus far above text relevance (BM25 times field weights,
# in the tens), yet small enough that tantivy's f32 scores still tell the relevance
# of two boosted records apart (1e6 would round differences below 0.06 away).
ABSOLUTE = 1e4
STRENGTH_FACTOR = {
    "Absolute_Increase": ABSOLUTE,
    "Strong_Increase": 3.0,
    "Medium_Increase": 2.0,
    "Weak_Increase": 1.0,
    "Leave_Unchanged": 0.0,
    "Weak_Decrease": -1.0,
    "Medium_Decrease": -2.0,
    "Strong_Decrease": -3.0,
    "Absolute_Decrease": -ABSOLUTE,
}
DEFAULT_INFLUENCE = 5.0
# Extra values asked of a pruned navigation: the pruned ones (count == total) are the
# most frequent, so these keep ``maxValues`` refinements after pruning.
PRUNE_PAD = 16

# (area, collection, query, the query autocorrection ran instead, records found):
# QueryLog.count_search.
QueryRecorder = Callable[[str, str, str, str | None, int], None]


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
        result, corrected = self._run(req, settings)
        if self.record_query is not None:
            total = result.total if result is not None else 0
            self.record_query(req.area, req.collection, req.query or "", corrected, total)
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
        multi = self._multi(req, nav)
        limit = self.limits.max_navigation_values
        if not self.engine.has_collection(req.collection):
            return {
                "navigation": navigation_out(nav, FacetResult(nav.name), 0, False, limit, multi)
            }
        filt, without = self._filters(req, settings)
        override = self._override(nav, multi, without)
        plan = SearchPlan(
            text=self._text(req, words(req.query or "")[:MAX_WORDS]),
            filter=filt,
            limit=1,
            facets=(self._facet_request(nav, limit + 1, override),),
        )
        result = self.engine.search(req.collection, plan)
        fr = result.facets.get(nav.name, FacetResult(nav.name))
        return {"navigation": navigation_out(nav, fr, result.total, False, limit, multi)}

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
        if req.skip + req.page_size > lim.max_result_window:
            raise InvalidInput(
                f"skip + pageSize: at most {lim.max_result_window} "
                "(SEARCHGATE_LIMIT_MAX_RESULT_WINDOW); narrow the search rather than "
                "paging this deep",
                field="skip",
                limit=lim.max_result_window,
            )
        if len(req.refinements) > lim.max_refinements:
            raise InvalidInput(f"refinements: at most {lim.max_refinements}", field="refinements")
        if req.biasing is not None:
            for name, ids in (
                ("biasing.bringToTop", req.biasing.bring_to_top),
                ("biasing.restrictToIds", req.biasing.restrict_to_ids),
            ):
                if len(ids) > lim.max_ids:
                    raise InvalidInput(f"{name}: at most {lim.max_ids} ids", field=name)
        for i, s in enumerate(req.sorts()):
            if s.ids is not None and len(s.ids) > lim.max_ids:
                raise InvalidInput(f"sort: at most {lim.max_ids} ids", field=f"sort[{i}].ids")

    def _text(self, req: SearchRequest, ws: list[str]) -> TextQuery | None:
        if not ws:
            return None
        return TextQuery(words=tuple(ws), prefix_last=req.wildcard_search_enabled)

    @staticmethod
    def _multi(req: SearchRequest, nav: NavigationSetting) -> bool:
        return nav.multi_select or nav.name in req.or_fields

    def _refinement_filter(
        self, nav: NavigationSetting, multi: bool, refs: list[tuple[int, SelectedRefinement]]
    ) -> Filter:
        include: list[Filter] = []
        exclude: list[Filter] = []
        for i, r in refs:
            f = self._one_refinement(nav, i, r)
            (exclude if r.exclude else include).append(f)
        parts: list[Filter] = []
        if include:
            if multi and len(include) > 1:
                parts.append(Or(tuple(include)))
            else:
                parts.extend(include)
        parts.extend(Not(f) for f in exclude)
        return and_(*parts)

    def _one_refinement(self, nav: NavigationSetting, i: int, r: SelectedRefinement) -> Filter:
        field = f"refinements[{i}]"
        if r.type == "Value":
            key = value_key(r.value)
            if key is None:
                raise InvalidInput("a Value refinement needs a value", field=f"{field}.value")
            if nav.type == "Range":
                num = _num(key, f"{field}.value")
                if num is None:
                    raise InvalidInput(
                        f"{nav.name!r} is a range navigation: its values are numbers",
                        field=f"{field}.value",
                    )
                return Range(nav.name, num, num, high_inclusive=True)
            return Terms(nav.name, (key,))
        if nav.type != "Range":
            raise InvalidInput(
                f"{nav.name!r} is a value navigation: a Range refinement does not apply",
                field=f"{field}.type",
            )
        low, high = _num(r.low, f"{field}.low"), _num(r.high, f"{field}.high")
        if low is None and high is None:
            raise InvalidInput("a Range refinement needs low, high or both", field=field)
        if low is not None and high is not None and low > high:
            raise InvalidInput(
                "a Range refinement's low must not exceed its high", field=f"{field}.low"
            )
        return Range(nav.name, low, high)

    def _filters(
        self, req: SearchRequest, settings: CollectionSettings
    ) -> tuple[Filter, dict[str, Filter]]:
        """The full filter, and per OR navigation with a selection the filter without
        that navigation's own selection (its counts ignore it)."""
        grouped: dict[str, tuple[NavigationSetting, list[tuple[int, SelectedRefinement]]]] = {}
        for i, r in enumerate(req.refinements):
            nav = settings.navigation(r.navigation_name)
            if nav is None:
                raise InvalidInput(
                    f"{r.navigation_name!r} is not a navigation of collection {req.collection!r}",
                    field=f"refinements[{i}].navigationName",
                )
            grouped.setdefault(nav.name, (nav, []))[1].append((i, r))
        base: list[Filter] = []
        if req.pre_filter and req.pre_filter.strip():
            base.append(parse_prefilter(req.pre_filter, settings, self.limits.max_prefilter_chars))
        if req.biasing is not None and req.biasing.restrict_to_ids:
            base.append(Ids(tuple(req.biasing.restrict_to_ids)))
        per_nav = {
            name: self._refinement_filter(nav, self._multi(req, nav), refs)
            for name, (nav, refs) in grouped.items()
        }
        without = {
            name: and_(*base, *(f for n, f in per_nav.items() if n != name))
            for name, (nav, _refs) in grouped.items()
            if self._multi(req, nav)
        }
        return and_(*base, *per_nav.values()), without

    @staticmethod
    def _override(nav: NavigationSetting, multi: bool, without: dict[str, Filter]) -> Filter | None:
        # No override means "count over the result set"; an OR navigation with a
        # selection counts over the result set without that selection (MatchAll when
        # nothing else filters).
        return without.get(nav.name) if multi else None

    @staticmethod
    def _facet_request(
        nav: NavigationSetting, size: int, override: Filter | None = None
    ) -> FacetRequest:
        return FacetRequest(
            name=nav.name,
            kind=nav.type,
            size=size,
            ranges=tuple((b.low, b.high) for b in nav.ranges),
            filter_override=override,
        )

    def _navigations(
        self, req: SearchRequest, settings: CollectionSettings
    ) -> list[tuple[NavigationSetting, int]]:
        """The navigations to compute, each with how many values to return."""
        if req.restrict_navigation is not None:
            nav = settings.navigation(req.restrict_navigation.name)
            if nav is None:
                raise InvalidInput(
                    f"{req.restrict_navigation.name!r} is not a navigation of collection "
                    f"{req.collection!r}",
                    field="restrictNavigation.name",
                )
            return [(nav, req.restrict_navigation.count)]
        navs = settings.navigations
        if req.included_navigations:
            navs = [n for n in navs if n.name in req.included_navigations]
        if req.excluded_navigations:
            navs = [n for n in navs if n.name not in req.excluded_navigations]
        return [(n, n.max_values) for n in navs]

    def _asked(self, req: SearchRequest, nav: NavigationSetting, size: int) -> int:
        """How many values to ask the engine for: one more than shown tells whether
        there are more, and pruned values must not take the place of shown ones."""
        pad = PRUNE_PAD if req.prune_refinements and not self._multi(req, nav) else 0
        return size + 1 + pad

    def _facets(
        self,
        req: SearchRequest,
        settings: CollectionSettings,
        without: dict[str, Filter],
    ) -> tuple[FacetRequest, ...]:
        out = []
        for nav, size in self._navigations(req, settings):
            override = self._override(nav, self._multi(req, nav), without)
            out.append(self._facet_request(nav, self._asked(req, nav, size), override))
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
        influence = req.biasing.influence
        influence = DEFAULT_INFLUENCE if influence is None else influence
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
        boosts = self._boosts(req, settings)
        ranked = not sort or any(k.field == "_relevance" for k in sort)
        return SearchPlan(
            text=self._text(req, ws),
            filter=filt,
            boosts=boosts if ranked else (),
            sort=sort,
            pinned_ids=pinned,
            offset=req.skip,
            limit=max(req.page_size, 1),
            facets=self._facets(req, settings, without),
        )

    def _run(
        self, req: SearchRequest, settings: CollectionSettings
    ) -> tuple[SearchResult | None, str | None]:
        ws = words(req.query or "")[:MAX_WORDS]
        plan = self._plan(req, settings, ws)  # validates the request first
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
        # A word that finds records on its own is spelt right (the query found nothing
        # because of the other words); the engine checks that first.
        return self.engine.correct_word(collection, word)

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
        wanted = req.wanted_fields()
        records = [record_out(req.collection, settings, wanted, h) for h in hits]
        warnings: list[str] = []
        if result is None:
            warnings.append(f"collection {req.collection!r} is still being indexed")
        navigations = []
        if result is not None:
            for nav, size in self._navigations(req, settings):
                fr = result.facets.get(nav.name)
                if fr is None:
                    continue
                multi = self._multi(req, nav)
                asked = self._asked(req, nav, size)
                out = navigation_out(nav, fr, total, req.prune_refinements, size, multi, asked)
                if out["refinements"]:
                    navigations.append(out)
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
            "selectedNavigation": selected_out(req, settings),
            "template": {"name": "default", "ruleName": None, "zones": {}},
            "redirect": None,
            "didYouMean": [corrected] if corrected else [],
            "relatedQueries": [],
            "rewrites": [],
            "warnings": warnings,
            "errors": "",
            "siteParams": site_params,
            "originalRequest": req.received(),
        }


def _num(v: float | str | None, field: str) -> float | None:
    if v is None or v == "":
        return None
    try:
        num = float(v)
    except ValueError:
        raise InvalidInput(f"{v!r} is not a number", field=field) from None
    if not math.isfinite(num):
        raise InvalidInput(f"{v!r} is not a finite number", field=field)
    return num
