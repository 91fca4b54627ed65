"""The admin API's answers, as the OpenAPI document shows them.

Routes build their answers from the services' ``to_dict`` and return them as they are;
these models only describe them (a route that returns a response object is not
re-validated). tests/functional/test_typed_bodies.py checks real answers against them,
every field named, so that a change to an answer shows here too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from searchgate.catalog.settings import CollectionSettings
from searchgate.merchandising.document import MerchandisingDocument


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- users and roles -----------------------------------------------------------------


class User(_Answer):
    id: str
    email: str
    displayName: str | None
    role: str
    state: str = Field(description="active or disabled")
    mfaEnrolled: bool
    admin: bool
    createdAt: datetime
    lastSignInAt: datetime | None
    mustChangePassword: bool


class UserAnswer(_Answer):
    user: User


class AdminCount(_Answer):
    active: int
    max: int
    tooMany: bool
    withoutMfa: int


class UsersAnswer(_Answer):
    users: list[User]
    admins: AdminCount


class TokenSummary(_Answer):
    id: str | None
    permissions: list[str]


class MeAnswer(_Answer):
    user: User
    token: TokenSummary


class Role(_Answer):
    id: str
    name: str
    description: str
    builtin: bool
    permissions: list[str]
    areas: list[str] | None = Field(description="null: every area")
    userCount: int


class RoleAnswer(_Answer):
    role: Role


class RolesAnswer(_Answer):
    roles: list[Role]


class Deleted(_Answer):
    deleted: str = Field(description="what was deleted, as the request named it")


# --- collections and the change log --------------------------------------------------


class Collection(_Answer):
    name: str
    recordCount: int
    createdAt: datetime
    updatedAt: datetime
    settings: CollectionSettings


class CollectionsAnswer(_Answer):
    collections: list[Collection]


class CollectionDeleted(_Answer):
    deleted: str
    records: int = Field(description="how many records were deleted with it")


class EventActor(_Answer):
    kind: str
    userId: str | None
    name: str | None
    email: str | None
    tokenId: str | None
    sessionId: str | None


class Event(_Answer):
    seq: int
    time: datetime
    actor: EventActor
    action: str
    target: str | None
    outcome: str
    ip: str | None
    userAgent: str | None
    details: dict[str, Any] = Field(description="what the action recorded; never a secret")


class AuditPage(_Answer):
    events: list[Event]
    nextBefore: int | None = Field(description="the next page's before; null on the last")


# --- invitations ---------------------------------------------------------------------


class Invitation(_Answer):
    id: str
    email: str
    displayName: str | None
    role: str
    invitedBy: str | None
    createdAt: datetime
    expiresAt: datetime
    state: str = Field(description="pending, accepted, expired or withdrawn")


class InvitationAnswer(_Answer):
    invitation: Invitation


class InvitationsAnswer(_Answer):
    invitations: list[Invitation]


class CreatedInvitation(_Answer):
    invitation: Invitation
    url: str = Field(description="the one-time link; shown in this answer only")


# --- client keys ---------------------------------------------------------------------


class Key(_Answer):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    collections: list[str] | None = Field(description="null: every collection")
    expiresAt: datetime | None
    ipRanges: list[str]
    origins: list[str]
    rateLimitPerMinute: int | None
    primary: bool
    retiring: bool
    retiringSince: datetime | None
    state: str
    createdAt: datetime
    createdBy: str
    disabledAt: datetime | None
    disabledReason: str | None
    deletedAt: datetime | None
    lastUsedAt: datetime | None
    lastIp: str | None
    lastSystem: str | None
    browserTokenKeyId: str | None


class KeyAnswer(_Answer):
    key: Key
    warnings: list[str] | None = Field(
        default=None, description="collections named that do not exist yet (allowUnknown)"
    )


class KeysAnswer(_Answer):
    keys: list[Key]


class CreatedKeyAnswer(_Answer):
    key: Key
    secret: str = Field(description="the key itself: in this answer only")
    replaced: Key | None = Field(description="the former primary, when this one replaced it")
    warnings: list[str] | None = None


class SystemUse(_Answer):
    system: str
    firstSeenAt: datetime
    lastSeenAt: datetime
    lastIp: str | None
    requests: int


class HourCount(_Answer):
    hour: datetime
    system: str
    outcome: str
    count: int


class UsageAnswer(_Answer):
    key: Key
    since: datetime
    systems: list[SystemUse]
    hourly: list[HourCount]


# --- rotation ------------------------------------------------------------------------


class StoreRef(_Answer):
    kind: str
    location: str


class Timing(_Answer):
    quietSeconds: float
    probationSeconds: float
    moveTimeoutSeconds: float


class Lease(_Answer):
    expiresAt: datetime | None
    holder: str | None
    seconds: int


class Delays(_Answer):
    usageFlushSeconds: float
    keyCacheSeconds: float


class Rotation(_Answer):
    id: str
    status: str
    step: int
    stepName: str
    nextStep: str | None
    store: StoreRef
    oldKeyId: str | None
    newKeyId: str | None
    replacedKeyIds: list[str]
    oldKey: Key | None
    newKey: Key | None
    storeVersionBefore: str | None
    storeVersionAfter: str | None
    options: Timing
    steps: dict[str, dict[str, Any]] = Field(description="what each completed step found")
    startedBy: str | None
    startedAt: datetime | None
    updatedAt: datetime | None
    finishedAt: datetime | None
    lastError: str | None
    lease: Lease
    delays: Delays


class RotationAnswer(_Answer):
    rotation: Rotation


class StartedRotation(_Answer):
    rotation: Rotation
    lease: str = Field(description="the run's lease: send it with every step")
    resumed: bool


class RotationKey(_Answer):
    rotation: Rotation
    key: Key
    secret: str = Field(description="the new key itself: in this answer only")


class RotationOverview(_Answer):
    rotation: Rotation | None
    primary: Key | None
    primaryAgeDays: float | None
    maxKeyAgeDays: float
    lastFinished: Rotation | None
    deletionCheckSeconds: float


class Traffic(_Answer):
    oldKey: list[SystemUse]
    newKey: list[SystemUse]
    since: datetime
    now: datetime


# --- the data plane's collections, records and keys -----------------------------------


class CollectionWritten(Collection):
    searchable: bool | None = Field(default=None, description="with ?wait=true")


class CollectionGone(_Answer):
    collection: str
    deleted: bool
    recordsDeleted: int
    searchable: bool | None = Field(default=None, description="with ?wait=true")


class InvalidRecord(_Answer):
    index: int | None = Field(default=None, description="0-based, in a JSON array")
    line: int | None = Field(default=None, description="1-based, in NDJSON or CSV")
    id: str | None = None
    field: str | None = None
    reason: str


class WriteSummary(_Answer):
    collection: str
    upserted: int
    deleted: int
    invalidRecordCount: int
    invalidRecordDetails: list[InvalidRecord]
    createdCollection: bool
    changeSeq: int
    searchable: bool | None = Field(default=None, description="with ?wait=true")


class UploadSummary(WriteSummary):
    status: str = Field(description="OK")
    recordCount: int


class Replacement(_Answer):
    id: str
    collection: str
    state: str = Field(description="open, or committed (kept until it expires)")
    stagedRecords: int = Field(description="distinct record ids staged so far")
    createdAt: datetime
    expiresAt: datetime = Field(description="renewed by every batch")


class StagedBatch(_Answer):
    replacement: Replacement
    staged: int = Field(description="valid records of this batch, staged by id")
    invalidRecordCount: int
    invalidRecordDetails: list[InvalidRecord]


class ReplacementCommitted(_Answer):
    collection: str
    replacementId: str
    records: int = Field(description="the collection's records now: the staged ones")
    replaced: int = Field(description="records the collection held before")
    createdCollection: bool
    changeSeq: int
    searchable: bool | None = Field(default=None, description="with ?wait=true")


class ReplacementAborted(_Answer):
    collection: str
    replacementId: str
    aborted: bool
    stagedRecordsRemoved: int


class BrowserTokenSummary(_Answer):
    expiresAt: datetime
    origins: list[str]
    collections: list[str]
    scopes: list[str]
    filter: str | None


class KeySelf(_Answer):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    collections: list[str] | None
    expiresAt: datetime | None
    primary: bool
    retiring: bool
    state: str
    system: str | None
    browserToken: BrowserTokenSummary | None


class Revoked(_Answer):
    revoked: bool
    id: str
    name: str


# --- merchandising ---------------------------------------------------------------------


class MerchDraft(_Answer):
    area: str
    revision: int = Field(description="one more on every change; 0: never edited")
    updatedAt: datetime | None
    updatedBy: str | None
    liveVersion: int | None = Field(description="the version shoppers get; null: none yet")
    changed: bool = Field(description="the draft differs from the live version")
    document: MerchandisingDocument


class MerchDraftAnswer(_Answer):
    draft: MerchDraft


class MerchChange(_Answer):
    kind: str = Field(
        description="synonyms, rules, biasingProfiles, stopWords, relatedQueries, or settings"
    )
    name: str
    change: str = Field(description="added, removed or changed")
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    fields: list[str] = Field(description="for a change: the fields that differ")


class MerchImported(_Answer):
    draft: MerchDraft
    changes: list[MerchChange] = Field(description="the draft against the live version")


class MerchVersionSummary(_Answer):
    number: int
    publishedAt: datetime
    publishedBy: str
    note: str
    rollbackOf: int | None


class MerchVersion(MerchVersionSummary):
    area: str
    document: MerchandisingDocument


class MerchVersionAnswer(_Answer):
    version: MerchVersion


class MerchVersionDetail(_Answer):
    version: MerchVersion
    against: int | None = Field(description="the version compared with (null: none before)")
    changes: list[MerchChange]


class MerchVersions(_Answer):
    versions: list[MerchVersionSummary] = Field(description="newest first")
    live: int | None


class MerchPreview(_Answer):
    version: str = Field(description="live or draft")
    response: dict[str, Any] = Field(description="the search answer (docs/api.md, Search)")
