"""The answers of the API, typed as they arrive: JSON objects with the documented keys
(docs/api.md), so ``found["totalRecordCount"]`` reads the same as the API reference and
a type checker knows its type. TypedDicts, not classes: an answer is the server's
JSON, never a copy of it, and fields a newer server adds stay reachable."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict


class Record(TypedDict):
    _id: str
    _u: NotRequired[str]
    _t: NotRequired[str]
    allMeta: NotRequired[dict[str, Any]]
    collection: NotRequired[str]


class Refinement(TypedDict):
    type: Literal["Value", "Range"]
    count: NotRequired[int]
    value: NotRequired[str]
    low: NotRequired[float | None]
    high: NotRequired[float | None]
    exclude: NotRequired[bool]


class Navigation(TypedDict):
    name: str
    displayName: str
    type: Literal["Value", "Range"]
    range: bool
    refinements: list[Refinement]
    # ``or``, a Python keyword, is read as navigation.get("or").
    moreRefinements: NotRequired[bool]


class PageInfo(TypedDict):
    recordStart: int
    recordEnd: int


class SearchResponse(TypedDict):
    """POST /api/v1/search."""

    id: str
    area: str
    query: str
    originalQuery: str
    correctedQuery: str
    totalRecordCount: int
    pageInfo: PageInfo
    records: list[Record]
    availableNavigation: list[Navigation]
    selectedNavigation: list[Navigation]
    didYouMean: list[str]
    warnings: list[str]
    siteParams: list[dict[str, Any]]
    originalRequest: dict[str, Any]


class RefinementsResponse(TypedDict):
    """POST /api/v1/search/refinements: every value of one navigation."""

    navigation: Navigation


class SaytSearchTerm(TypedDict):
    value: str
    additionalInfo: dict[str, Any]


class SaytNavigation(TypedDict):
    name: str
    displayName: str
    values: list[str]


class SaytResult(TypedDict):
    stats: dict[str, Any]
    searchTerms: list[SaytSearchTerm]
    navigations: list[SaytNavigation]
    products: list[Record]


class SaytResponse(TypedDict):
    """GET /api/v1/sayt/search."""

    status: dict[str, Any]
    result: SaytResult


class InvalidRecord(TypedDict):
    reason: str
    field: NotRequired[str]
    id: NotRequired[str]


class UploadResponse(TypedDict):
    """POST /api/v1/collections/{collection}/records."""

    collection: str
    upserted: int
    deleted: int
    invalidRecordCount: int
    invalidRecordDetails: list[InvalidRecord]
    createdCollection: bool
    changeSeq: int
    # Only when the upload asked to wait: whether the records became searchable in time.
    searchable: NotRequired[bool]


class ReplacementInfo(TypedDict):
    """A staged replacement (POST/GET /api/v1/collections/{collection}/replacements)."""

    id: str
    collection: str
    state: str  # open, or committed (kept until it expires)
    stagedRecords: int
    createdAt: str
    expiresAt: str


class StagedBatchResponse(TypedDict):
    """POST .../replacements/{id}/records: a batch staged by record id."""

    replacement: ReplacementInfo
    staged: int
    invalidRecordCount: int
    invalidRecordDetails: list[InvalidRecord]


class ReplacementCommitResponse(TypedDict):
    """POST .../replacements/{id}/commit: the collection now holds the staged records."""

    collection: str
    replacementId: str
    records: int
    replaced: int
    createdCollection: bool
    changeSeq: int
    searchable: NotRequired[bool]


class ReplacementAbortResponse(TypedDict):
    collection: str
    replacementId: str
    aborted: bool
    stagedRecordsRemoved: int


class BrowserTokenInfo(TypedDict):
    expiresAt: str
    origins: list[str]
    collections: list[str]
    scopes: list[str]
    filter: str | None


class KeySelf(TypedDict):
    """GET /api/v1/keys/self: which key the caller uses."""

    id: str
    name: str
    prefix: str
    scopes: list[str]
    collections: list[str] | None
    expiresAt: str | None
    primary: bool
    retiring: bool
    state: str
    system: str | None
    browserToken: BrowserTokenInfo | None
