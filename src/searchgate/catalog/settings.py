"""Collection settings, and how sensible ones are inferred from the first records."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")


def _check_field(name: str) -> str:
    if not FIELD_NAME.match(name):
        raise ValueError(
            f"{name!r} is not a valid field name (letters, digits, _ . -; at most 64 characters)"
        )
    return name


class RangeBucket(BaseModel):
    model_config = ConfigDict(extra="forbid")
    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> RangeBucket:
        if self.low is None and self.high is None:
            raise ValueError("a range bucket needs low, high or both")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError("a range bucket's low must not exceed its high")
        return self


class NavigationSetting(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str
    display_name: str | None = Field(default=None, alias="displayName")
    type: Literal["Value", "Range"] = "Value"
    multi_select: bool = Field(default=False, alias="or")
    ranges: list[RangeBucket] = Field(default_factory=list)
    max_values: int = Field(default=20, ge=1, le=10_000, alias="maxValues")

    _name = field_validator("name")(classmethod(lambda cls, v: _check_field(v)))

    @model_validator(mode="after")
    def _buckets(self) -> NavigationSetting:
        if self.type == "Value" and self.ranges:
            raise ValueError("ranges are only for navigations of type Range")
        return self


class SearchableField(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    weight: float = Field(default=1.0, gt=0, le=100)

    _name = field_validator("name")(classmethod(lambda cls, v: _check_field(v)))


class SaytSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    # Public SAYT answers browsers without a client key, so it is off by default and
    # then returns only the fields listed here.
    public: bool = False
    public_fields: list[str] = Field(default_factory=list, alias="publicFields")
    navigations: list[str] = Field(default_factory=list)
    completion_fields: list[str] = Field(default_factory=list, alias="completionFields")


class CollectionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    id_field: str = Field(default="id", alias="idField")
    title_field: str | None = Field(default=None, alias="titleField")
    url_field: str | None = Field(default=None, alias="urlField")
    searchable: list[SearchableField] = Field(default_factory=list)
    navigations: list[NavigationSetting] = Field(default_factory=list)
    sortable: list[str] = Field(default_factory=list)
    sayt: SaytSettings = Field(default_factory=SaytSettings)

    @model_validator(mode="after")
    def _consistent(self) -> CollectionSettings:
        _check_field(self.id_field)
        for f in (self.title_field, self.url_field, *self.sortable):
            if f is not None:
                _check_field(f)
        names = [n.name for n in self.navigations]
        if len(names) != len(set(names)):
            raise ValueError("each navigation name may appear once")
        if len(self.navigations) > 64 or len(self.searchable) > 64 or len(self.sortable) > 64:
            raise ValueError("at most 64 navigations, searchable fields and sortable fields")
        for n in self.sayt.navigations:
            if n not in names:
                raise ValueError(f"SAYT navigation {n!r} is not one of the navigations")
        return self

    def navigation(self, name: str) -> NavigationSetting | None:
        for nav in self.navigations:
            if nav.name == name:
                return nav
        return None

    def public_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")


_TITLE_NAMES = ("title", "name", "product_name", "productName")
_URL_NAMES = ("url", "link", "product_url", "productUrl")
_ID_NAMES = ("id", "_id", "sku", "productId", "product_id")


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def infer_settings(records: list[dict[str, Any]]) -> CollectionSettings:
    """Settings that suit a typical product catalog, from a sample of records."""
    sample = records[:1000]
    fields: dict[str, list[Any]] = {}
    for rec in sample:
        for k, v in rec.items():
            if FIELD_NAME.match(k):
                fields.setdefault(k, []).append(v)

    def first(names: tuple[str, ...]) -> str | None:
        return next((n for n in names if n in fields), None)

    id_field = first(_ID_NAMES) or "id"
    title = first(_TITLE_NAMES)
    url = first(_URL_NAMES)
    searchable: list[SearchableField] = []
    navigations: list[NavigationSetting] = []
    sortable: list[str] = []
    for name, values in fields.items():
        if name in (id_field, url) or name.lower().startswith(("image", "img")):
            continue
        present = [v for v in values if v is not None]
        if not present:
            continue
        flat = [x for v in present for x in (v if isinstance(v, list) else [v])]
        if all(isinstance(x, str) for x in flat):
            avg_len = sum(len(x) for x in flat) / max(len(flat), 1)
            distinct = len(set(flat))
            if name == title:
                searchable.append(SearchableField(name=name, weight=3.0))
                sortable.append(name)
            elif avg_len > 40:
                searchable.append(SearchableField(name=name, weight=1.0))
            else:
                # A navigation value is worth showing when records share it: on average
                # at least two records per value (or few values in a small sample).
                low_cardinality = distinct <= max(50, len(flat) // 2)
                weight = 2.0 if name.lower() in ("brand", "manufacturer") else 1.5
                searchable.append(SearchableField(name=name, weight=weight))
                if low_cardinality and avg_len <= 40:
                    navigations.append(
                        NavigationSetting(name=name, display_name=_display(name), max_values=20)
                    )
        elif all(_is_number(x) for x in flat):
            sortable.append(name)
            if not any(isinstance(v, list) for v in present):
                navigations.append(_range_nav(name, [float(x) for x in flat]))
        elif all(isinstance(x, bool) for x in flat):
            navigations.append(NavigationSetting(name=name, display_name=_display(name)))
    sayt_navs = [n.name for n in navigations if n.type == "Value"][:3]
    completion = [title] if title else [f.name for f in searchable[:1]]
    public_fields = [f for f in (title, url) if f]
    return CollectionSettings(
        id_field=id_field,
        title_field=title,
        url_field=url,
        searchable=searchable,
        navigations=navigations,
        sortable=sortable,
        sayt=SaytSettings(
            navigations=sayt_navs, completion_fields=completion, public_fields=public_fields
        ),
    )


def _display(name: str) -> str:
    """``inStock`` -> "In Stock", ``category_1`` and ``category1`` -> "Category 1"."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z0-9])|(?<=[0-9])(?=[A-Za-z])", " ", name)
    words = re.sub(r"[_\-.]+", " ", spaced).split()
    return " ".join(w[:1].upper() + w[1:] for w in words)


def _range_nav(name: str, values: list[float]) -> NavigationSetting:
    ordered = sorted(values)
    cuts: list[float] = []
    for q in (0.25, 0.5, 0.75):
        cut = _nice(ordered[int(q * (len(ordered) - 1))])
        if (not cuts or cut > cuts[-1]) and cut > ordered[0]:
            cuts.append(cut)
    if not cuts:
        # Every sampled value is the same: one bucket below it and one from it on.
        cuts.append(min(_nice(ordered[0]), ordered[0]))
    buckets: list[RangeBucket] = []
    low: float | None = None
    for cut in cuts:
        buckets.append(RangeBucket(low=low, high=cut))
        low = cut
    buckets.append(RangeBucket(low=low, high=None))
    return NavigationSetting(name=name, display_name=_display(name), type="Range", ranges=buckets)


def _nice(x: float) -> float:
    if x <= 0:
        return round(x)
    magnitude = 10 ** max(len(str(int(x))) - 1, 0)
    return float(round(x / magnitude) * magnitude) if magnitude > 1 else float(round(x))
