"""What an area's merchandising does to one search, and why: the outcome the search
service plans with, and the explanation ``debug`` returns.

How several rules combine. Rules are taken in priority order (lower number first,
ties by name); every enabled rule inside its active window whose triggers all hold
fires. Of the actions:
- ``redirect``: the first firing rule's redirect wins; the response carries it and no
  records;
- ``template`` and ``navigations``: the first firing rule that sets one wins;
- ``filter``: the filters of every firing rule add up (all must hold);
- ``hide``: the hidden records of every firing rule add up; hidden beats pinned;
- ``pins``: merged in priority order; a pin whose position is taken by an earlier
  rule's goes to the next free position, a record pinned twice keeps its first place;
- ``biases``: every firing rule's biases add up, on top of the biasing profile's.
A later rule's redirect, template or navigations that lose are listed in the
explanation as overridden, so nothing is silently dropped.

Triggers compare the query as the index reads it (case and accents folded, split into
words the same way), before stop words are dropped and synonyms applied.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from searchgate.catalog.settings import CollectionSettings
from searchgate.engines.base import Alternative, Filter, Ids, Not
from searchgate.engines.tantivy.layout import words
from searchgate.errors import InvalidInput
from searchgate.merchandising.document import (
    BiasingProfile,
    FieldBias,
    MerchandisingDocument,
    NavigationTrigger,
    ParamTrigger,
    QueryTrigger,
    Rule,
    Template,
)
from searchgate.merchandising.synonyms import Applied, SynonymIndex
from searchgate.search.prefilter import parse_prefilter

# ``version`` of an outcome: a published version's number, "draft", or None (nothing
# published for the area).
Label = int | str | None


@dataclass(frozen=True)
class RuleOutcome:
    name: str
    priority: int
    fired: bool
    why: str
    applied: tuple[str, ...] = ()
    overridden: tuple[str, ...] = ()

    def wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "priority": self.priority,
            "fired": self.fired,
            "why": self.why,
            "applied": list(self.applied),
            "overridden": list(self.overridden),
        }


@dataclass
class Outcome:
    version: Label
    words: list[str]
    alternatives: tuple[Alternative, ...] = ()
    synonyms: list[Applied] = field(default_factory=list)
    stop_words: list[str] = field(default_factory=list)
    rules: list[RuleOutcome] = field(default_factory=list)
    filters: list[tuple[str, str]] = field(default_factory=list)  # (rule, pre-filter)
    hidden: tuple[str, ...] = ()
    pins: list[tuple[str, int]] = field(default_factory=list)  # (record id, position)
    biases: list[tuple[str, FieldBias]] = field(default_factory=list)  # (source, bias)
    influence: float | None = None
    profile: str | None = None
    profile_source: str | None = None  # "request" | "area default"
    profile_biases_replaced: bool = False
    navigations: list[str] | None = None
    navigations_rule: str | None = None
    redirect: str | None = None
    redirect_rule: str | None = None
    template: tuple[str, Template] | None = None
    related: list[str] = field(default_factory=list)
    # Parts of the merchandising that could not apply to this collection (a filter or a
    # bias naming a field it does not have): listed, never an error for the shopper.
    skipped: list[str] = field(default_factory=list)

    @property
    def fired(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.rules if r.fired)

    def rewrites(self) -> list[str]:
        out = [f"synonym: {a.matched} => {', '.join(a.added)}" for a in self.synonyms]
        if self.stop_words:
            out.append(f"stop words dropped: {' '.join(self.stop_words)}")
        return out

    def template_out(self) -> dict[str, Any]:
        if self.template is None:
            return {"name": "default", "ruleName": None, "zones": {}}
        rule, t = self.template
        zones: dict[str, Any] = {}
        for z in t.zones:
            zone: dict[str, Any] = {"name": z.name, "type": z.type}
            if z.type == "Content":
                zone["content"] = z.content
            elif z.type == "Rich_Content":
                zone["richContent"] = z.content
            else:
                zone["records"] = []  # filled by the search service (needs the index)
            zones[z.name] = zone
        return {"name": t.name, "ruleName": rule, "zones": zones}

    def debug(self) -> dict[str, Any]:
        return {
            "merchandising": {"version": self.version},
            "synonyms": [
                {"set": a.set_name, "matched": a.matched, "added": list(a.added)}
                for a in self.synonyms
            ],
            "stopWords": list(self.stop_words),
            "rules": [r.wire() for r in self.rules],
            "biasingProfile": (
                None
                if self.profile is None
                else {
                    "name": self.profile,
                    "source": self.profile_source,
                    "replacedByRequestBiases": self.profile_biases_replaced,
                }
            ),
            "skipped": list(self.skipped),
        }


@dataclass(frozen=True)
class SearchContext:
    """What rules look at, taken from the request."""

    collection: str
    query_words: list[str]
    selected: list[tuple[str, str]]  # (navigation, value) of the included Value refinements
    params: dict[str, str]
    profile: str | None  # ``biasingProfile`` as asked
    request_biases: bool  # the request carries biases of its own
    augment_biases: bool
    now: datetime


class UnknownProfile(LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known


class CompiledMerchandising:
    """One document, ready to apply; built once per published version."""

    def __init__(self, document: MerchandisingDocument, version: Label) -> None:
        self.document = document
        self.version = version
        self.rules = sorted(document.rules, key=lambda r: (r.priority, r.name))
        # Trigger values folded once, not on every search.
        self._trigger_words: dict[int, list[str]] = {
            id(t): words(t.value)
            for r in self.rules
            for t in r.triggers
            if isinstance(t, QueryTrigger)
        }
        # Every query trigger needs all of its words in the query, so a rule whose
        # trigger starts with a word the query lacks cannot fire: a search checks only
        # the rules its words name, and those without a query trigger.
        self._by_word: dict[str, list[int]] = {}
        self._always: list[int] = []
        for i, r in enumerate(self.rules):
            first = next((w[0] for t in r.triggers if (w := self._trigger_words.get(id(t)))), None)
            if first is None:
                self._always.append(i)
            else:
                self._by_word.setdefault(first, []).append(i)
        self.profiles: dict[str, BiasingProfile] = {p.name: p for p in document.biasing_profiles}
        # (collection, filter text) -> (the settings it was parsed with, the filter or
        # why the collection cannot hold it): parsed once per version and settings.
        self._filters: dict[tuple[str, str], tuple[CollectionSettings, Filter | str]] = {}
        self._per_collection: dict[str, tuple[SynonymIndex, dict[tuple[str, ...], list[str]]]] = {}
        self._lock = threading.Lock()

    def _for(self, collection: str) -> tuple[SynonymIndex, dict[tuple[str, ...], list[str]]]:
        hit = self._per_collection.get(collection)
        if hit is not None:
            return hit
        doc = self.document
        index = SynonymIndex(
            [s for s in doc.synonyms if s.applies_to(collection)],
            [s for s in doc.stop_words if s.applies_to(collection)],
        )
        related: dict[tuple[str, ...], list[str]] = {}
        for r in doc.related_queries:
            if r.applies_to(collection):
                got = related.setdefault(tuple(words(r.query)), [])
                got.extend(q for q in r.related if q not in got)
        with self._lock:
            if len(self._per_collection) > 1000:
                self._per_collection.clear()
            self._per_collection[collection] = (index, related)
        return index, related

    def expand(
        self, collection: str, ws: list[str]
    ) -> tuple[tuple[Alternative, ...], list[Applied]]:
        """Synonyms for words that are not the query's (autocorrection's retry)."""
        return self._for(collection)[0].expand(ws)

    def outcome(self, ctx: SearchContext, explain: bool = True) -> Outcome:
        """``explain``: also say why each rule that did not fire did not (``debug``);
        searches without it list the rules that fired only."""
        index, related = self._for(ctx.collection)
        kept, dropped = index.drop_stop_words(ctx.query_words)
        alternatives, applied = index.expand(kept)
        out = Outcome(
            version=self.version,
            words=kept,
            alternatives=alternatives,
            synonyms=applied,
            stop_words=dropped,
            related=list(related.get(tuple(ctx.query_words), [])),
        )
        self._profile(ctx, out)
        if explain:
            rules = self.rules
        else:
            found = set(self._always)
            for w in set(ctx.query_words):
                found.update(self._by_word.get(w, ()))
            rules = [self.rules[i] for i in sorted(found)]
        for rule in rules:
            if not self._holds(rule, ctx):
                if explain:
                    why = _why_not(rule, ctx, self._trigger_words) or "does not fire"
                    out.rules.append(RuleOutcome(rule.name, rule.priority, False, why))
                continue
            out.rules.append(self._fire(rule, ctx, out))
        return out

    def _holds(self, rule: Rule, ctx: SearchContext) -> bool:
        """``_why_not(...) is None`` without wording the reasons: the search path."""
        if not rule.active_at(ctx.now) or not rule.applies_to(ctx.collection):
            return False
        tw = self._trigger_words
        return all(_trigger_holds(t, ctx, tw.get(id(t), [])) for t in rule.triggers)

    def exclusions(
        self, out: Outcome, collection: str, settings: CollectionSettings, max_chars: int
    ) -> list[Filter]:
        """What the firing rules take out of a search of ``collection``: their filters
        (those the collection cannot hold are skipped and named in ``out.skipped``) and
        their hidden records."""
        found: list[Filter] = []
        for rule, text in out.filters:
            hit = self._filters.get((collection, text))
            if hit is None or hit[0] is not settings:
                try:
                    parsed: Filter | str = parse_prefilter(text, settings, max_chars)
                except InvalidInput as exc:
                    parsed = exc.message
                hit = (settings, parsed)
                self._filters[(collection, text)] = hit
            if isinstance(hit[1], str):
                out.skipped.append(f"rule {rule!r}: filter not applied: {hit[1]}")
            else:
                found.append(hit[1])
        if out.hidden:
            found.append(Not(Ids(out.hidden)))
        return found

    def _profile(self, ctx: SearchContext, out: Outcome) -> None:
        if ctx.profile is not None:
            profile = self.profiles.get(ctx.profile)
            if profile is None:
                raise UnknownProfile(ctx.profile, sorted(self.profiles))
            source = "request"
        elif self.document.default_biasing_profile is not None:
            profile = self.profiles[self.document.default_biasing_profile]
            source = "area default"
        else:
            return
        out.profile = profile.name
        out.profile_source = source
        out.influence = profile.influence
        # As in the protocol: a request's own biases replace the profile's unless it
        # asks to augment them.
        if ctx.request_biases and not ctx.augment_biases:
            out.profile_biases_replaced = True
            return
        out.biases.extend((f"profile {profile.name}", b) for b in profile.biases)

    @staticmethod
    def _fire(rule: Rule, ctx: SearchContext, out: Outcome) -> RuleOutcome:
        applied: list[str] = []
        overridden: list[str] = []

        def first(what: str, taken_by: str | None) -> bool:
            if taken_by is None:
                applied.append(what)
                return True
            overridden.append(f"{what}: rule {taken_by!r} came first")
            return False

        if rule.redirect is not None and first("redirect", out.redirect_rule):
            out.redirect = rule.redirect
            out.redirect_rule = rule.name
        if rule.template is not None and first(
            "template", out.template[0] if out.template else None
        ):
            out.template = (rule.name, rule.template)
        if rule.navigations is not None and first("navigations", out.navigations_rule):
            out.navigations = list(rule.navigations)
            out.navigations_rule = rule.name
        if rule.filter:
            out.filters.append((rule.name, rule.filter))
            applied.append("filter")
        if rule.hide:
            out.hidden = tuple(dict.fromkeys((*out.hidden, *rule.hide)))
            applied.append("hide")
        if rule.pins:
            out.pins.extend((p.id, p.position) for p in rule.pins)
            applied.append("pins")
        if rule.biases:
            out.biases.extend((f"rule {rule.name}", b) for b in rule.biases)
            applied.append("biases")
        return RuleOutcome(
            rule.name,
            rule.priority,
            True,
            "; ".join(_holds(t) for t in rule.triggers),
            tuple(applied),
            tuple(overridden),
        )


def _why_not(rule: Rule, ctx: SearchContext, trigger_words: dict[int, list[str]]) -> str | None:
    """Why ``rule`` does not fire, or None when it does (the explanation's wording of
    ``CompiledMerchandising._holds``)."""
    if not rule.enabled:
        return "disabled"
    if rule.active_from is not None and ctx.now < rule.active_from:
        return f"not active yet: starts {rule.active_from.isoformat()}"
    if rule.active_to is not None and ctx.now >= rule.active_to:
        return f"no longer active: ended {rule.active_to.isoformat()}"
    if not rule.applies_to(ctx.collection):
        return f"only for collections {', '.join(rule.collections)}"
    for t in rule.triggers:
        want = trigger_words.get(id(t), [])
        if not _trigger_holds(t, ctx, want):
            return _failed(t, ctx, want)
    return None


def _trigger_holds(
    t: QueryTrigger | NavigationTrigger | ParamTrigger, ctx: SearchContext, want: list[str]
) -> bool:
    """``want``: a query trigger's value as folded words."""
    if isinstance(t, QueryTrigger):
        got = ctx.query_words
        if t.type == "queryEquals":
            return got == want
        if t.type == "queryStartsWith":
            return bool(want) and got[: len(want)] == want
        return all(w in got for w in want)
    if isinstance(t, NavigationTrigger):
        return (t.navigation, t.value) in ctx.selected
    return ctx.params.get(t.key) == t.value


def _failed(
    t: QueryTrigger | NavigationTrigger | ParamTrigger, ctx: SearchContext, want: list[str]
) -> str:
    if isinstance(t, QueryTrigger):
        shown = " ".join(ctx.query_words)
        if t.type == "queryEquals":
            return f"the query {shown!r} does not equal {t.value!r}"
        if t.type == "queryStartsWith":
            return f"the query {shown!r} does not start with {t.value!r}"
        missing = " ".join(w for w in want if w not in ctx.query_words)
        return f"the query {shown!r} lacks {missing!r}"
    if isinstance(t, NavigationTrigger):
        return f"{t.navigation} = {t.value!r} is not selected"
    return f"customUrlParams {t.key} is not {t.value!r}"


def _holds(t: QueryTrigger | NavigationTrigger | ParamTrigger) -> str:
    if isinstance(t, QueryTrigger):
        verb = {
            "queryEquals": "equals",
            "queryContains": "contains",
            "queryStartsWith": "starts with",
        }
        return f"the query {verb[t.type]} {t.value!r}"
    if isinstance(t, NavigationTrigger):
        return f"{t.navigation} = {t.value!r} is selected"
    return f"customUrlParams {t.key} = {t.value!r}"
