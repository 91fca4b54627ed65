"""The GroupBy Searchandiser v1 search request, as received on the wire.

Decisions where the protocol is silent:
- fields the protocol lists but Searchgate does not use (``userId``, ``matchStrategy``,
  ...) and fields it does not know are accepted and ignored, as protocol servers do;
- ``biasingProfile`` names one of the area's biasing profiles (merchandising); ``debug``
  (Searchgate's own) adds the merchandising explanation to the response;
- ``fields: []`` means the same as no ``fields`` (every field): protocol clients send
  the empty default list;
- lists are bounded (``MAX_LIST``) so that no request makes the server do unbounded
  work; names are at most 128 characters;
- ``originalRequest`` in the response is the JSON object as received, minus
  ``clientKey``, so unknown fields are echoed too.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)

from searchgate.errors import InvalidInput

Scalar = str | int | float | bool
MAX_LIST = 1000


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class SelectedRefinement(_Wire):
    navigation_name: str = Field(alias="navigationName", min_length=1, max_length=128)
    type: Literal["Value", "Range"] = "Value"
    value: Scalar | None = None
    low: float | str | None = None
    high: float | str | None = None
    exclude: bool = False


class SortSpec(_Wire):
    field: str | None = Field(default=None, max_length=128)
    order: Literal["Ascending", "Descending"] = "Ascending"
    type: Literal["Field", "ByIds"] | None = None
    ids: list[str] | None = None


Strength = Literal[
    "Absolute_Increase",
    "Strong_Increase",
    "Medium_Increase",
    "Weak_Increase",
    "Leave_Unchanged",
    "Weak_Decrease",
    "Medium_Decrease",
    "Strong_Decrease",
    "Absolute_Decrease",
]


class Bias(_Wire):
    name: str = Field(max_length=128)
    content: Scalar | None = None
    strength: Strength = "Leave_Unchanged"


class Biasing(_Wire):
    bring_to_top: list[str] = Field(default_factory=list, alias="bringToTop")
    restrict_to_ids: list[str] = Field(default_factory=list, alias="restrictToIds")
    augment_biases: bool = Field(default=False, alias="augmentBiases")
    influence: float | None = Field(default=None, ge=0, le=10)
    biases: list[Bias] = Field(default_factory=list, max_length=100)


class RestrictNavigation(_Wire):
    name: str = Field(min_length=1, max_length=128)
    count: int = Field(default=10, ge=1, le=10_000)


class KeyValue(_Wire):
    key: str
    value: Scalar | None = None


class SearchRequest(_Wire):
    client_key: str | None = Field(default=None, alias="clientKey")
    collection: str = Field(default="default", min_length=1, max_length=128)
    area: str = Field(default="Production", min_length=1, max_length=128)
    query: str | None = ""
    refinements: list[SelectedRefinement] = Field(default_factory=list, max_length=MAX_LIST)
    fields: list[str] | None = Field(default=None, max_length=MAX_LIST)
    or_fields: list[str] = Field(default_factory=list, alias="orFields", max_length=MAX_LIST)
    included_navigations: list[str] = Field(
        default_factory=list, alias="includedNavigations", max_length=MAX_LIST
    )
    excluded_navigations: list[str] = Field(
        default_factory=list, alias="excludedNavigations", max_length=MAX_LIST
    )
    sort: SortSpec | list[SortSpec] | None = None
    skip: int = Field(default=0, ge=0)
    page_size: int = Field(default=10, ge=0, alias="pageSize")
    prune_refinements: bool = Field(default=True, alias="pruneRefinements")
    wildcard_search_enabled: bool = Field(default=False, alias="wildcardSearchEnabled")
    disable_autocorrection: bool = Field(default=False, alias="disableAutocorrection")
    restrict_navigation: RestrictNavigation | None = Field(default=None, alias="restrictNavigation")
    biasing: Biasing | None = None
    match_strategy: dict[str, Any] | None = Field(default=None, alias="matchStrategy")
    pre_filter: str | None = Field(default=None, alias="pre-filter")
    custom_url_params: list[KeyValue] = Field(
        default_factory=list, alias="customUrlParams", max_length=MAX_LIST
    )
    language: str | None = None
    biasing_profile: str | None = Field(
        default=None, alias="biasingProfile", min_length=1, max_length=128
    )
    debug: bool = False
    _received: dict[str, Any] = PrivateAttr(default_factory=dict)

    @field_validator("query", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return "" if v is None else v

    @field_validator("sort", mode="after")
    @classmethod
    def _bounded_sort(cls, v: SortSpec | list[SortSpec] | None) -> Any:
        if isinstance(v, list) and len(v) > 16:
            raise ValueError("at most 16 sort keys")
        return v

    def sorts(self) -> list[SortSpec]:
        if self.sort is None:
            return []
        return self.sort if isinstance(self.sort, list) else [self.sort]

    def wanted_fields(self) -> set[str] | None:
        """The record fields to return, or None for all of them."""
        if not self.fields or "*" in self.fields:
            return None
        return set(self.fields)

    def received(self) -> dict[str, Any]:
        """The request as received, without its client key."""
        source = self._received or self.model_dump(by_alias=True, exclude_unset=True, mode="json")
        return {k: v for k, v in source.items() if k != "clientKey"}


_TYPE_LABELS = {"str", "int", "float", "bool", "none"} | {
    cls.__name__ for cls in (SelectedRefinement, SortSpec, Bias, Biasing, RestrictNavigation)
}


def _field_of(loc: tuple[int | str, ...]) -> str:
    """``("refinements", 0, "low", "float")`` -> ``refinements[0].low``: pydantic adds
    the union member's type to the location, which names no field."""
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        elif p not in _TYPE_LABELS and "[" not in p:
            parts.append(("." if parts else "") + p)
    return "".join(parts)


def validation_to_input_error(exc: ValidationError) -> InvalidInput:
    # A value that fits no member of a union gets one error per member; the deepest
    # says most (``sort[0].order`` rather than "sort is not an object").
    ranked = enumerate(exc.errors())
    err = max(ranked, key=lambda ie: (len(ie[1]["loc"]), -ie[0]))[1]
    field = _field_of(tuple(err["loc"])) or None
    message = f"{field}: {err['msg']}" if field else str(err["msg"])
    return InvalidInput(message, field=field)


def parse_search_request(body: bytes | dict[str, Any]) -> SearchRequest:
    if isinstance(body, bytes | bytearray):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"the body is not valid JSON: {exc}", field="body") from None
    if not isinstance(body, dict):
        raise InvalidInput("a search request is a JSON object", field="body")
    try:
        req = SearchRequest.model_validate(body)
    except ValidationError as exc:
        raise validation_to_input_error(exc) from None
    req._received = body
    return req
