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
from dataclasses import dataclass, field, replace
from typing import Any

from searchgate.catalog.areas import AreaService
from searchgate.catalog.service import CatalogService
from searchgate.catalog.settings import CollectionSettings, NavigationSetting
from searchgate.clock import Clock, utc_now
from searchgate.config import Limits
from searchgate.engines.base import (
    Alternative,
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
from searchgate.merchandising.apply import (
    CompiledMerchandising,
    Outcome,
    SearchContext,
    UnknownProfile,
)
from searchgate.merchandising.live import MerchandisingLookup
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

# (area, collection, query, the query autocorrection ran instead, records found, the
# rules that fired, the rule whose redirect answered): QueryLog.count_search.
QueryRecorder = Callable[[str, str, str, str | None, int, tuple[str, ...], str | None], None]


@dataclass
class _Merch:
    """One search's merchandising, turned into the engine's terms."""

    compiled: CompiledMerchandising | None
    outcome: Outcome
    filters: tuple[Filter, ...] = ()  # the rules' filters, and the hidden records out
    boosts: tuple[Boost, ...] = ()  # the biasing profile's and the rules' biases
    pins: dict[str, int] = field(default_factory=dict)  # record id -> position (1-based)


class SearchService:
    def __init__(
        self,
        engine: SearchEngine,
        catalog: CatalogService,
        areas: AreaService,
        limits: Limits,
        settings_of: Callable[[str], CollectionSettings | None],
        record_query: QueryRecorder | None = None,
        merchandising: MerchandisingLookup | None = None,
        clock: Clock = utc_now,
    ) -> None:
        """``clock``: what decides whether a rule is inside its active window."""
        self.engine = engine
        self.catalog = catalog
        self.areas = areas
        self.limits = limits
        self.settings_of = settings_of
        self.record_query = record_query
        self.merchandising = merchandising
        self.clock = clock

    # --- entry points ------------------------------------------------------------------

    def search(self, req: SearchRequest, *, draft: bool = False) -> dict[str, Any]:
        """``draft``: with the area's merchandising draft instead of its published version
        (previews; the caller checks who may see it). The response then explains the
        merchandising, as ``debug`` asks for."""
        area = self.areas.get(req.area)
        self._check_limits(req)
        settings = self._settings(req.collection)
        m = self._merchandise(req, settings, draft)
        result, corrected = self._run(req, settings, m)
        if self.record_query is not None:
            total = result.total if result is not None else 0
            self.record_query(
                req.area,
                req.collection,
                req.query or "",
                corrected,
                total,
                m.outcome.fired,
                m.outcome.redirect_rule,
            )
        return self._response(
            req, settings, area.site_params, result, corrected, m, req.debug or draft
        )

    def refinements(self, req: SearchRequest, navigation_name: str) -> dict[str, Any]:
        self.areas.get(req.area)
        self._check_limits(req)
        settings = self._settings(req.collection)
        m = self._merchandise(req, settings, False)
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
        filt, without = self._filters(req, settings, m.filters)
        override = self._override(nav, multi, without)
        plan = SearchPlan(
            text=self._text(req, m.outcome.words, m.outcome.alternatives),
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

    def _text(
        self, req: SearchRequest, ws: list[str], alternatives: tuple[Alternative, ...] = ()
    ) -> TextQuery | None:
        if not ws:
            return None
        return TextQuery(
            words=tuple(ws), prefix_last=req.wildcard_search_enabled, alternatives=alternatives
        )

    # --- merchandising ---------------------------------------------------------------------

    def _merchandise(self, req: SearchRequest, settings: CollectionSettings, draft: bool) -> _Merch:
        ws = words(req.query or "")[:MAX_WORDS]
        compiled = self.merchandising.compiled(req.area, draft) if self.merchandising else None
        if compiled is None:
            if req.biasing_profile is not None:
                raise InvalidInput(
                    f"unknown biasing profile {req.biasing_profile!r}: area {req.area!r} has "
                    "no merchandising published",
                    field="biasingProfile",
                )
            return _Merch(None, Outcome(version=None, words=ws))
        selected = [
            (r.navigation_name, key)
            for r in req.refinements
            if r.type == "Value" and not r.exclude and (key := value_key(r.value)) is not None
        ]
        params = {p.key: v for p in req.custom_url_params if (v := value_key(p.value)) is not None}
        biasing = req.biasing
        ctx = SearchContext(
            collection=req.collection,
            query_words=ws,
            selected=selected,
            params=params,
            profile=req.biasing_profile,
            request_biases=bool(biasing and biasing.biases),
            augment_biases=bool(biasing and biasing.augment_biases),
            now=self.clock(),
        )
        try:
            outcome = compiled.outcome(ctx, explain=req.debug or draft)
        except UnknownProfile as exc:
            raise InvalidInput(
                f"unknown biasing profile {exc.name!r} (biasing profiles of area "
                f"{req.area!r}: {', '.join(exc.known) or 'none'})",
                field="biasingProfile",
            ) from None
        filters = compiled.exclusions(
            outcome, req.collection, settings, self.limits.max_prefilter_chars
        )
        influence = biasing.influence if biasing is not None else None
        influence = outcome.influence if influence is None else influence
        boosts: list[Boost] = []
        for source, b in outcome.biases:
            nav = settings.navigation(b.name)
            if nav is None or nav.type != "Value":
                outcome.skipped.append(
                    f"{source}: bias on {b.name!r} not applied: not a value navigation of "
                    f"{req.collection!r}"
                )
                continue
            boost = _boost(nav, b.content, b.strength, influence)
            if boost is not None:
                boosts.append(boost)
        asked = {*(biasing.bring_to_top if biasing else ()), *_sorted_ids(req)}
        pins: dict[str, int] = {}
        taken: set[int] = set()
        for rid, position in outcome.pins:
            if rid in pins or rid in asked or rid in outcome.hidden:
                continue
            while position in taken:
                position += 1
            taken.add(position)
            pins[rid] = position
        return _Merch(compiled, outcome, tuple(filters), tuple(boosts), pins)

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
        self, req: SearchRequest, settings: CollectionSettings, extra: tuple[Filter, ...] = ()
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
        base: list[Filter] = list(extra)
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
        self, req: SearchRequest, settings: CollectionSettings, shown: list[str] | None = None
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
        if shown is not None:
            # A rule's navigations: only these, in this order.
            navs = [n for n in (settings.navigation(name) for name in shown) if n is not None]
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
        shown: list[str] | None = None,
    ) -> tuple[FacetRequest, ...]:
        out = []
        for nav, size in self._navigations(req, settings, shown):
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
            boost = _boost(nav, b.content, b.strength, influence)
            if boost is not None:
                out.append(boost)
        return tuple(out)

    def _plan(
        self,
        req: SearchRequest,
        settings: CollectionSettings,
        ws: list[str],
        m: _Merch,
        alternatives: tuple[Alternative, ...],
    ) -> SearchPlan:
        filt, without = self._filters(req, settings, m.filters)
        sort, pinned = self._sort(req, settings)
        boosts = self._boosts(req, settings) + m.boosts
        ranked = not sort or any(k.field == "_relevance" for k in sort)
        if m.pins:
            pinned = pinned + tuple(sorted(m.pins, key=lambda rid: m.pins[rid]))
        return SearchPlan(
            text=self._text(req, ws, alternatives),
            filter=filt,
            boosts=boosts if ranked else (),
            sort=sort,
            pinned_ids=pinned,
            offset=req.skip,
            limit=max(req.page_size, 1),
            facets=self._facets(req, settings, without, m.outcome.navigations),
        )

    def _run(
        self, req: SearchRequest, settings: CollectionSettings, m: _Merch
    ) -> tuple[SearchResult | None, str | None]:
        outcome = m.outcome
        ws = outcome.words
        plan = self._plan(req, settings, ws, m, outcome.alternatives)  # validates the request
        if outcome.redirect is not None:
            return SearchResult(total=0, hits=[], facets={}), None
        if not self.engine.has_collection(req.collection):
            return None, None
        result = self._search(req.collection, plan, m.pins)
        if result.total or not ws or req.disable_autocorrection:
            return result, None
        corrected_words = [self._correct(req.collection, w) for w in ws]
        if corrected_words == ws:
            return result, None
        alternatives, applied = (
            m.compiled.expand(req.collection, corrected_words) if m.compiled else ((), [])
        )
        retry = self._search(
            req.collection, self._plan(req, settings, corrected_words, m, alternatives), m.pins
        )
        if not retry.total:
            return result, None
        outcome.synonyms = applied
        return retry, " ".join(corrected_words)

    def _search(self, collection: str, plan: SearchPlan, pins: dict[str, int]) -> SearchResult:
        """The engine's search, with the rules' pinned records moved to their positions.

        The engine puts every pinned record that matches first (the request's, then the
        rules'); moving the rules' to their positions only reorders the first ``window``
        records, which hold the same records either way, so a page past it is the
        engine's page as it is."""
        if not pins:
            return self.engine.search(collection, plan)
        window = max(max(pins.values()), len(plan.pinned_ids))
        if plan.offset >= window:
            return self.engine.search(collection, plan)
        wide = self.engine.search(
            collection, replace(plan, offset=0, limit=max(window, plan.offset + plan.limit))
        )
        top, rest = wide.hits[:window], wide.hits[window:]
        found = {h.record_id: h for h in top if h.record_id in pins}
        ordered = [h for h in top if h.record_id not in found]
        for rid in sorted(found, key=lambda r: pins[r]):
            ordered.insert(min(pins[rid] - 1, len(ordered)), found[rid])
        ordered += rest
        return replace(wide, hits=ordered[plan.offset : plan.offset + plan.limit])

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
        m: _Merch,
        debug: bool,
    ) -> dict[str, Any]:
        outcome = m.outcome
        total = result.total if result is not None else 0
        hits = result.hits if result is not None and req.page_size > 0 else []
        wanted = req.wanted_fields()
        records = [record_out(req.collection, settings, wanted, h) for h in hits]
        warnings: list[str] = []
        if result is None:
            warnings.append(f"collection {req.collection!r} is still being indexed")
        navigations = []
        if result is not None:
            for nav, size in self._navigations(req, settings, outcome.navigations):
                fr = result.facets.get(nav.name)
                if fr is None:
                    continue
                multi = self._multi(req, nav)
                asked = self._asked(req, nav, size)
                out = navigation_out(nav, fr, total, req.prune_refinements, size, multi, asked)
                if out["refinements"]:
                    navigations.append(out)
        original = req.query or ""
        template = outcome.template_out()
        if outcome.template is not None and result is not None:
            for zone in outcome.template[1].zones:
                if zone.type == "Record":
                    template["zones"][zone.name]["records"] = self._zone_records(
                        req, settings, wanted, zone.ids, outcome.hidden
                    )
        answer = {
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
            "template": template,
            "redirect": outcome.redirect,
            "biasingProfile": outcome.profile,
            "didYouMean": [corrected] if corrected else [],
            "relatedQueries": outcome.related,
            "rewrites": outcome.rewrites(),
            "warnings": warnings,
            "errors": "",
            "siteParams": site_params,
            "originalRequest": req.received(),
        }
        if debug:
            answer["debug"] = outcome.debug()
        return answer

    def _zone_records(
        self,
        req: SearchRequest,
        settings: CollectionSettings,
        wanted: set[str] | None,
        ids: list[str],
        hidden: tuple[str, ...],
    ) -> list[dict[str, Any]]:
        """A record zone's records in the rule's order; hidden ones never show."""
        if not self.engine.has_collection(req.collection):
            return []
        filt = and_(Ids(tuple(ids)), Not(Ids(hidden)) if hidden else None)
        got = self.engine.search(req.collection, SearchPlan(text=None, filter=filt, limit=len(ids)))
        by_id = {h.record_id: h for h in got.hits}
        return [record_out(req.collection, settings, wanted, by_id[i]) for i in ids if i in by_id]


def _boost(
    nav: NavigationSetting, content: Any, strength: str, influence: float | None
) -> Boost | None:
    key = value_key(content)
    factor = STRENGTH_FACTOR[strength]
    if key is None or factor == 0:
        return None
    influence = DEFAULT_INFLUENCE if influence is None else influence
    bonus = factor if abs(factor) >= ABSOLUTE else factor * influence
    return Boost(Terms(nav.name, (key,)), bonus)


def _sorted_ids(req: SearchRequest) -> list[str]:
    return [i for s in req.sorts() if s.type == "ByIds" for i in s.ids or []]


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
