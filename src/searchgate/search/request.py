"""The GroupBy Searchandiser v1 search request, as received on the wire."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from searchgate.errors import InvalidInput

Scalar = str | int | float | bool


class _Wire(BaseModel):
    # Fields the protocol lists but Searchgate does not use are accepted and ignored.
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


class Bias(_Wire):
    name: str
    content: Scalar | None = None
    strength: Literal[
        "Absolute_Increase",
        "Strong_Increase",
        "Medium_Increase",
        "Weak_Increase",
        "Leave_Unchanged",
        "Weak_Decrease",
        "Medium_Decrease",
        "Strong_Decrease",
        "Absolute_Decrease",
    ] = "Leave_Unchanged"


class Biasing(_Wire):
    bring_to_top: list[str] = Field(default_factory=list, alias="bringToTop")
    restrict_to_ids: list[str] = Field(default_factory=list, alias="restrictToIds")
    augment_biases: bool = Field(default=False, alias="augmentBiases")
    influence: float | None = Field(default=None, ge=0, le=10)
    biases: list[Bias] = Field(default_factory=list, max_length=100)


class RestrictNavigation(_Wire):
    name: str
    count: int = Field(default=10, ge=1, le=10_000)


class KeyValue(_Wire):
    key: str
    value: Scalar | None = None


class SearchRequest(_Wire):
    client_key: str | None = Field(default=None, alias="clientKey")
    collection: str = "default"
    area: str = "Production"
    query: str | None = ""
    refinements: list[SelectedRefinement] = Field(default_factory=list)
    fields: list[str] | None = None
    or_fields: list[str] = Field(default_factory=list, alias="orFields")
    included_navigations: list[str] = Field(default_factory=list, alias="includedNavigations")
    excluded_navigations: list[str] = Field(default_factory=list, alias="excludedNavigations")
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
    custom_url_params: list[KeyValue] = Field(default_factory=list, alias="customUrlParams")
    language: str | None = None

    @field_validator("query", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return "" if v is None else v

    def sorts(self) -> list[SortSpec]:
        if self.sort is None:
            return []
        return self.sort if isinstance(self.sort, list) else [self.sort]


def _field_of(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        elif p not in ("list[SortSpec]", "SortSpec", "str", "int", "float", "bool"):
            parts.append(("." if parts else "") + str(p))
    return "".join(parts)


def validation_to_input_error(exc: ValidationError) -> InvalidInput:
    err = exc.errors()[0]
    field = _field_of(tuple(err["loc"])) or None
    message = f"{field}: {err['msg']}" if field else str(err["msg"])
    return InvalidInput(message, field=field)


def parse_search_request(body: bytes | dict[str, Any]) -> SearchRequest:
    try:
        if isinstance(body, bytes | bytearray):
            return SearchRequest.model_validate_json(body)
        return SearchRequest.model_validate(body)
    except ValidationError as exc:
        raise validation_to_input_error(exc) from None
