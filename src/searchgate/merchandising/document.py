"""An area's merchandising, as one JSON document: what a draft holds, what a published
version freezes, what ``searchgate merch export`` writes and ``import`` reads.

Every object has a ``name`` unique within its kind, so that a diff, a history entry
and a review in git speak of "rule Summer TV banner", not of a list position.

Limits are part of the model (an import over them is a 400 that names the field):
at most ``MAX_SYNONYMS`` synonym sets, ``MAX_RULES`` rules, ``MAX_PROFILES`` biasing
profiles, ``MAX_RELATED`` related-query sets; each list inside an object is bounded too.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from searchgate.search.request import Scalar, Strength

MAX_SYNONYMS = 10_000
MAX_RULES = 1_000
MAX_PROFILES = 100
MAX_RELATED = 10_000
MAX_STOP_WORDS = 1_000
MAX_TERMS = 20  # terms of one synonym set, related queries of one set
MAX_TERM_CHARS = 100
MAX_TRIGGERS = 10
MAX_PINS = 100
MAX_PIN_POSITION = 100
MAX_HIDDEN = 1_000
MAX_BIASES = 100
MAX_ZONES = 20
MAX_ZONE_CHARS = 20_000
MAX_URL_CHARS = 2_000

NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,80}$")
ID = Annotated[str, Field(min_length=1, max_length=256)]


def _name(value: str) -> str:
    value = value.strip()
    if not NAME.match(value):
        raise ValueError("a name has 1 to 80 characters and no control characters")
    return value


CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Zone content may hold line breaks and tabs, never other control characters.
ZONE_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _term(value: str) -> str:
    value = " ".join(value.split())
    if not value or len(value) > MAX_TERM_CHARS or CONTROL.search(value):
        raise ValueError(f"a term has 1 to {MAX_TERM_CHARS} characters, no control characters")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    def wire(self) -> dict[str, Any]:
        """The object as the API and the export file show it (camelCase, no defaults
        left out, so a file in git shows every choice)."""
        return self.model_dump(mode="json", by_alias=True)


class _Named(_Model):
    name: str
    # Empty: every collection of the area.
    collections: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=100
    )

    _check_name = field_validator("name")(classmethod(lambda cls, v: _name(v)))

    def applies_to(self, collection: str) -> bool:
        return not self.collections or collection in self.collections


# --- synonyms ---------------------------------------------------------------------------


class SynonymSet(_Named):
    """``two-way``: every term finds what each of the others finds (``tv, television``).
    ``one-way``: ``terms`` also find what ``to`` finds, not the other way round
    (``tv => television, flat screen``). A term of several words is a phrase: it
    matches those words next to each other in the query, and finds records that hold
    all of its words."""

    kind: Literal["two-way", "one-way"] = "two-way"
    terms: list[str] = Field(min_length=1, max_length=MAX_TERMS)
    to: list[str] = Field(default_factory=list, max_length=MAX_TERMS)

    _check_terms = field_validator("terms", "to")(classmethod(lambda cls, v: [_term(t) for t in v]))

    @model_validator(mode="after")
    def _shape(self) -> SynonymSet:
        if self.kind == "two-way":
            if self.to:
                raise ValueError("a two-way set lists its terms only ('to' is for one-way)")
            if len(self.terms) < 2:
                raise ValueError("a two-way set needs at least two terms")
        elif not self.to:
            raise ValueError("a one-way set needs 'to': what its terms also find")
        return self


# --- rules ------------------------------------------------------------------------------


class QueryTrigger(_Model):
    """The query (folded like the index: case and accents ignored, words split the
    same way) equals, contains every word of, or starts with ``value``."""

    type: Literal["queryEquals", "queryContains", "queryStartsWith"]
    value: str

    _check_value = field_validator("value")(classmethod(lambda cls, v: _term(v)))


class NavigationTrigger(_Model):
    """A refinement of ``navigation`` with ``value`` is selected (not excluded)."""

    type: Literal["navigationSelected"]
    navigation: str = Field(min_length=1, max_length=128)
    value: str = Field(min_length=1, max_length=MAX_TERM_CHARS)


class ParamTrigger(_Model):
    """The request's ``customUrlParams`` hold ``key`` with ``value`` (compared as text)."""

    type: Literal["customUrlParam"]
    key: str = Field(min_length=1, max_length=128)
    value: str = Field(max_length=MAX_TERM_CHARS)


Trigger = Annotated[QueryTrigger | NavigationTrigger | ParamTrigger, Field(discriminator="type")]


class Pin(_Model):
    id: ID
    position: int = Field(default=1, ge=1, le=MAX_PIN_POSITION)


class FieldBias(_Model):
    """Boost (or bury) records whose value navigation ``name`` holds ``content``."""

    name: str = Field(min_length=1, max_length=128)
    content: Scalar
    strength: Strength

    @field_validator("content")
    @classmethod
    def _finite(cls, v: Scalar) -> Scalar:
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError("a bias's content is a finite number, a text or a boolean")
        return v


class Zone(_Model):
    """A template zone: ``Content`` (plain text), ``Rich_Content`` (HTML the storefront
    renders as it is) or ``Record`` (the records ``ids``, in that order)."""

    name: str = Field(min_length=1, max_length=80)
    type: Literal["Content", "Rich_Content", "Record"]
    content: str | None = Field(default=None, max_length=MAX_ZONE_CHARS)
    ids: list[ID] = Field(default_factory=list, max_length=MAX_PINS)

    @field_validator("content")
    @classmethod
    def _printable(cls, v: str | None) -> str | None:
        if v is not None and ZONE_CONTROL.search(v):
            raise ValueError("zone content holds no control characters but line breaks and tabs")
        return v

    @model_validator(mode="after")
    def _shape(self) -> Zone:
        if self.type == "Record":
            if not self.ids or self.content is not None:
                raise ValueError("a Record zone lists 'ids' (and has no 'content')")
        elif self.content is None or self.ids:
            raise ValueError(f"a {self.type} zone has 'content' (and no 'ids')")
        return self


class Template(_Model):
    name: str = Field(min_length=1, max_length=80)
    zones: list[Zone] = Field(default_factory=list, max_length=MAX_ZONES)

    @model_validator(mode="after")
    def _unique(self) -> Template:
        _unique_names("zones", [z.name for z in self.zones])
        return self


class Rule(_Named):
    """Fires when it is enabled, inside its active window (``activeFrom`` inclusive,
    ``activeTo`` exclusive, both UTC) and every trigger holds; then its actions apply.
    Rules are taken in ``priority`` order (lower first, then by name); how the actions
    of several rules combine is in ``merchandising.apply``."""

    priority: int = Field(default=100, ge=0, le=1_000_000)
    enabled: bool = True
    active_from: datetime | None = Field(default=None, alias="activeFrom")
    active_to: datetime | None = Field(default=None, alias="activeTo")
    triggers: list[Trigger] = Field(min_length=1, max_length=MAX_TRIGGERS)
    # Actions
    pins: list[Pin] = Field(default_factory=list, max_length=MAX_PINS)
    hide: list[ID] = Field(default_factory=list, max_length=MAX_HIDDEN)
    biases: list[FieldBias] = Field(default_factory=list, max_length=MAX_BIASES)
    filter: str | None = Field(default=None, max_length=4_000)
    navigations: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(
        default=None, max_length=100
    )
    redirect: str | None = Field(default=None, max_length=MAX_URL_CHARS)
    template: Template | None = None

    @field_validator("active_from", "active_to")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return None
        if v.tzinfo is None:
            raise ValueError("a time needs its offset (UTC: a trailing Z)")
        return v.astimezone(UTC)

    @field_validator("redirect")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip()
        if not v or any(c in v for c in "\x00\r\n\t "):
            raise ValueError("a redirect is a URL or a path, without spaces")
        lowered = v.lower()
        if not (lowered.startswith(("http://", "https://", "/"))) or lowered.startswith("//"):
            raise ValueError("a redirect starts with https://, http:// or / (a path)")
        return v

    @model_validator(mode="after")
    def _window(self) -> Rule:
        if self.active_from and self.active_to and self.active_from >= self.active_to:
            raise ValueError("activeFrom must be before activeTo")
        if not (
            self.pins
            or self.hide
            or self.biases
            or self.filter
            or self.navigations is not None
            or self.redirect
            or self.template
        ):
            raise ValueError(
                "a rule needs an action: pins, hide, biases, filter, navigations, "
                "redirect or template"
            )
        _unique_names("pins", [p.id for p in self.pins])
        return self

    def active_at(self, now: datetime) -> bool:
        if not self.enabled:
            return False
        if self.active_from is not None and now < self.active_from:
            return False
        return self.active_to is None or now < self.active_to


# --- biasing profiles, stop words, related queries ----------------------------------------


class BiasingProfile(_Model):
    """A named set of biases a request selects with ``biasingProfile`` (or the area's
    default applies). ``influence`` as in the request's ``biasing``."""

    name: str
    influence: float | None = Field(default=None, ge=0, le=10)
    biases: list[FieldBias] = Field(min_length=1, max_length=MAX_BIASES)

    _check_name = field_validator("name")(classmethod(lambda cls, v: _name(v)))


class StopWords(_Named):
    """Words dropped from a query before it is matched (unless every word of the query
    is one of them). Listed in the response's ``rewrites``."""

    words: list[str] = Field(min_length=1, max_length=MAX_STOP_WORDS)

    _check_words = field_validator("words")(classmethod(lambda cls, v: [_term(t) for t in v]))


class RelatedQueries(_Named):
    """When the query equals ``query``, the response's ``relatedQueries`` lists ``related``."""

    query: str
    related: list[str] = Field(min_length=1, max_length=MAX_TERMS)

    _check_terms = field_validator("query")(classmethod(lambda cls, v: _term(v)))
    _check_related = field_validator("related")(classmethod(lambda cls, v: [_term(t) for t in v]))


# --- the document -----------------------------------------------------------------------

KINDS = ("synonyms", "rules", "biasingProfiles", "stopWords", "relatedQueries")
Kind = Literal["synonyms", "rules", "biasingProfiles", "stopWords", "relatedQueries"]


class MerchandisingDocument(_Model):
    """Everything an area's merchandising holds. ``format`` names this layout, so that a
    file kept in git says which Searchgate reads it."""

    format: Literal["searchgate.merchandising/1"] = "searchgate.merchandising/1"
    default_biasing_profile: str | None = Field(default=None, alias="defaultBiasingProfile")
    synonyms: list[SynonymSet] = Field(default_factory=list, max_length=MAX_SYNONYMS)
    rules: list[Rule] = Field(default_factory=list, max_length=MAX_RULES)
    biasing_profiles: list[BiasingProfile] = Field(
        default_factory=list, alias="biasingProfiles", max_length=MAX_PROFILES
    )
    stop_words: list[StopWords] = Field(
        default_factory=list, alias="stopWords", max_length=MAX_PROFILES
    )
    related_queries: list[RelatedQueries] = Field(
        default_factory=list, alias="relatedQueries", max_length=MAX_RELATED
    )

    @model_validator(mode="after")
    def _consistent(self) -> MerchandisingDocument:
        for kind in KINDS:
            _unique_names(kind, [o.name for o in self.objects(kind)])
        names = {p.name for p in self.biasing_profiles}
        if self.default_biasing_profile is not None and self.default_biasing_profile not in names:
            raise ValueError(
                f"defaultBiasingProfile {self.default_biasing_profile!r} is not a biasing "
                f"profile of this area (profiles: {', '.join(sorted(names)) or 'none'})"
            )
        return self

    def objects(self, kind: Kind | str) -> list[Any]:
        """The objects of one kind (``KINDS``), in document order."""
        by_kind: dict[str, list[Any]] = {
            "synonyms": self.synonyms,
            "rules": self.rules,
            "biasingProfiles": self.biasing_profiles,
            "stopWords": self.stop_words,
            "relatedQueries": self.related_queries,
        }
        return by_kind[kind]

    def is_empty(self) -> bool:
        return self.default_biasing_profile is None and not any(self.objects(k) for k in KINDS)


OBJECT_MODELS: dict[str, type[_Model]] = {
    "synonyms": SynonymSet,
    "rules": Rule,
    "biasingProfiles": BiasingProfile,
    "stopWords": StopWords,
    "relatedQueries": RelatedQueries,
}


def _unique_names(what: str, names: list[str]) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ValueError(f"{what}: {n!r} appears twice (names are unique within a kind)")
        seen.add(n)


EMPTY = MerchandisingDocument()
