"""The admin API for client keys, /api/v1/admin/keys/... (Key Management).

Personal API tokens only, like the rest of the admin API. Reading needs
``admin:keys:read`` (refusals are recorded, successful reads are not); every change
needs ``admin:keys:manage``, which the key service checks and records. A key's secret
appears in exactly one place: the 201 answer of the request that created it (served
with ``Cache-Control: no-store``). Lists, reads, audit details and errors never hold it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from searchgate.api import answers
from searchgate.api.bodies import JsonRoute
from searchgate.api.deps import json_response, runtime
from searchgate.api.errors import ERROR_RESPONSES
from searchgate.api.query import flag, whole_number_between
from searchgate.api.responses import JsonResponse
from searchgate.api.routes_admin import TokenActor
from searchgate.audit import Action
from searchgate.errors import InvalidInput
from searchgate.keys.info import CreatedKey, KeyInfo
from searchgate.keys.restrictions import Restrictions
from searchgate.keys.scopes import Scope
from searchgate.keys.service import MAX_ROLL_DELAY, unknown_collection_warnings
from searchgate.keys.usage import RETENTION_DAYS
from searchgate.permissions import Actor, Permission

router = APIRouter(
    prefix="/api/v1/admin/keys",
    tags=["admin: client keys"],
    route_class=JsonRoute,
    responses=ERROR_RESPONSES,
)
T = TypeVar("T")

# The action a refused read is recorded under (reads that succeed are not recorded).
KEYS_LIST = Action.KEYS_LIST
RESTRICTION_FIELDS = ("collections", "expiresAt", "ipRanges", "origins", "rateLimitPerMinute")
NO_STORE = {"Cache-Control": "no-store"}


async def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await run_in_threadpool(fn, *args, **kwargs)


async def _reader(request: Request, actor: TokenActor) -> Actor:
    """The token's actor, once it is known to hold ``admin:keys:read``."""
    await _call(
        runtime(request).services.authorizer.authorize, actor, Permission.KEYS_READ, KEYS_LIST
    )
    return actor


Reader = Annotated[Actor, Depends(_reader)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# Restrictions.from_dict validates these fields (one validator, its messages naming the
# field); the schemas only describe them.
STRINGS = {"type": "array", "items": {"type": "string"}}
Names = Annotated[Any, WithJsonSchema({"anyOf": [STRINGS, {"type": "null"}]})]
Instant = Annotated[
    Any, WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]})
]
PerMinute = Annotated[
    Any, WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]})
]


class _RestrictionFields(_Model):
    collections: Names = Field(default=None, description="null: every collection")
    expires_at: Instant = Field(default=None, alias="expiresAt")
    ip_ranges: Names = Field(default=None, alias="ipRanges", description="CIDR ranges")
    origins: Names = Field(default=None, description="page origins, like https://shop.example")
    rate_limit_per_minute: PerMinute = Field(default=None, alias="rateLimitPerMinute")

    def given(self) -> dict[str, Any]:
        """The restriction fields the body named, by their JSON names."""
        dumped = self.model_dump(by_alias=True)
        fields = type(self).model_fields
        named = {fields[f].alias or f for f in self.model_fields_set}
        return {k: dumped[k] for k in RESTRICTION_FIELDS if k in named}


class NewKey(_RestrictionFields):
    name: StrictStr
    scopes: list[StrictStr]
    primary: StrictBool = False
    # Collections that do not exist (yet) are refused unless this is true.
    allow_unknown: StrictBool = Field(default=False, alias="allowUnknown")


class KeyChange(_RestrictionFields):
    name: StrictStr | None = None
    allow_unknown: StrictBool = Field(default=False, alias="allowUnknown")


class Expiry(_Model):
    # Required, and null cancels the expiry: a body without it is a mistake.
    expires_at: Instant = Field(alias="expiresAt")


class Successor(_Model):
    name: StrictStr | None = None


class Roll(_Model):
    expires_in_seconds: StrictInt = Field(alias="expiresInSeconds")
    name: StrictStr | None = None


class Disable(_Model):
    reason: StrictStr | None = None


class Deletion(_Model):
    confirm_name: StrictStr = Field(alias="confirmName")
    force: StrictBool = False


def parse_scopes(names: list[str]) -> frozenset[Scope]:
    known = {s.value: s for s in Scope}
    for name in names:
        if name not in known:
            raise InvalidInput(
                f"unknown scope {name!r} (scopes: {', '.join(known)})", field="scopes"
            )
    return frozenset(known[n] for n in names)


def _created(
    request: Request, created: CreatedKey, warnings: list[str] | None = None
) -> JsonResponse:
    now = runtime(request).services.keys.clock()
    body: dict[str, Any] = {
        "key": created.info.to_dict(now),
        "secret": created.secret,
        "replaced": created.replaced.to_dict(now) if created.replaced is not None else None,
    }
    if warnings is not None:
        body["warnings"] = warnings
    return JsonResponse(body, status_code=201, headers=NO_STORE)


def _key_json(request: Request, info: KeyInfo, warnings: list[str] | None = None) -> JsonResponse:
    now = runtime(request).services.keys.clock()
    body: dict[str, Any] = {"key": info.to_dict(now)}
    if warnings is not None:
        body["warnings"] = warnings
    return json_response(body)


async def _warnings(request: Request, allowed: bool, names: frozenset[str] | None) -> list[str]:
    """Collections a change was allowed to name although none of them exists yet."""
    if not allowed:
        return []
    keys = runtime(request).services.keys
    return unknown_collection_warnings(await _call(keys.unknown_collections, names))


# --- reading -------------------------------------------------------------------------


@router.get(
    "",
    summary="List client keys (never their secrets); ?all=true adds tombstones",
    response_model=answers.KeysAnswer,
)
async def list_keys(
    request: Request,
    _: Reader,
    include_deleted: Annotated[
        bool,
        Query(alias="all", description="true: deleted keys' tombstones too"),
        BeforeValidator(flag),
    ] = False,
) -> JsonResponse:
    keys = runtime(request).services.keys
    infos = await _call(keys.list, include_deleted)
    now = keys.clock()
    return json_response({"keys": [i.to_dict(now) for i in infos]})


@router.get(
    "/{key}",
    summary="One client key, by id or name (tombstones too)",
    response_model=answers.KeyAnswer,
)
async def get_key(request: Request, _: Reader, key: str) -> JsonResponse:
    info = await _call(runtime(request).services.keys.get, key, True)
    return _key_json(request, info)


@router.get(
    "/{key}/usage",
    summary="A key's systems and hourly request counts (?days=1..30)",
    response_model=answers.UsageAnswer,
)
async def key_usage(
    request: Request,
    _: Reader,
    key: str,
    days: Annotated[
        int,
        Query(ge=1, le=RETENTION_DAYS, description="how many days back"),
        BeforeValidator(whole_number_between(1, RETENTION_DAYS, RETENTION_DAYS)),
    ] = RETENTION_DAYS,
) -> JsonResponse:
    services = runtime(request).services
    info = await _call(services.keys.get, key, True)
    now = services.keys.clock()
    since = now - timedelta(days=days)
    usage = services.usage
    systems = await _call(usage.systems, info.id, since)
    hourly = await _call(usage.hourly, info.id, since)
    return json_response(
        {
            "key": info.to_dict(now),
            "since": since.isoformat(),
            "systems": [u.to_dict() for u in systems],
            "hourly": [h.to_dict() for h in hourly],
        }
    )


# --- creating ------------------------------------------------------------------------


@router.post(
    "",
    summary="Create a client key: its secret is in this answer only",
    status_code=201,
    response_model=answers.CreatedKeyAnswer,
)
async def create_key(request: Request, actor: TokenActor, body: NewKey) -> JsonResponse:
    scopes = parse_scopes(body.scopes)
    restrictions = Restrictions.from_dict(body.given())
    created = await _call(
        runtime(request).services.keys.create,
        actor,
        body.name,
        scopes,
        restrictions,
        body.primary,
        body.allow_unknown,
    )
    warnings = await _warnings(request, body.allow_unknown, restrictions.collections)
    return _created(request, created, warnings)


@router.post(
    "/new-primary",
    summary="Create a new primary key like the current one; the old keeps working",
    status_code=201,
    response_model=answers.CreatedKeyAnswer,
)
async def new_primary(request: Request, actor: TokenActor, body: Successor) -> JsonResponse:
    created = await _call(runtime(request).services.keys.new_primary, actor, body.name)
    return _created(request, created)


@router.post(
    "/{key}/roll",
    summary="Replace a key by a copy; the old one expires after expiresInSeconds",
    status_code=201,
    response_model=answers.CreatedKeyAnswer,
)
async def roll_key(request: Request, actor: TokenActor, key: str, body: Roll) -> JsonResponse:
    if not 0 <= body.expires_in_seconds <= MAX_ROLL_DELAY.total_seconds():
        raise InvalidInput(
            f"expiresInSeconds is 0 to {int(MAX_ROLL_DELAY.total_seconds())} "
            f"({MAX_ROLL_DELAY.days} days)",
            field="expiresInSeconds",
        )
    created = await _call(
        runtime(request).services.keys.roll,
        actor,
        key,
        timedelta(seconds=body.expires_in_seconds),
        body.name,
    )
    return _created(request, created)


# --- changing ------------------------------------------------------------------------


@router.patch(
    "/{key}",
    summary="Rename a key or change its restrictions (never its scopes)",
    response_model=answers.KeyAnswer,
)
async def update_key(
    request: Request, actor: TokenActor, key: str, body: KeyChange
) -> JsonResponse:
    keys = runtime(request).services.keys
    changes = body.given()
    restrictions: Restrictions | None = None
    if changes:
        # Checked before the key is read, so that a token without the permission
        # learns nothing about the key, not even whether it exists.
        await _call(
            keys.authorizer.authorize, actor, Permission.KEYS_MANAGE, Action.KEY_UPDATE, target=key
        )
        current = await _call(keys.get, key)
        restrictions = current.restrictions.merged(changes)
    info = await _call(keys.update, actor, key, restrictions, body.name, body.allow_unknown)
    warnings = await _warnings(request, body.allow_unknown, info.restrictions.collections)
    return _key_json(request, info, warnings)


@router.post(
    "/{key}/expiry",
    summary="Move or cancel (expiresAt: null) the time a key stops working",
    response_model=answers.KeyAnswer,
)
async def set_expiry(request: Request, actor: TokenActor, key: str, body: Expiry) -> JsonResponse:
    at = Restrictions.from_dict({"expiresAt": body.expires_at}).expires_at
    info = await _call(runtime(request).services.keys.set_expiry, actor, key, at)
    return _key_json(request, info)


@router.post(
    "/{key}/make-primary",
    summary="Make an existing key the primary one (the previous primary starts retiring)",
    response_model=answers.KeyAnswer,
)
async def make_primary(request: Request, actor: TokenActor, key: str) -> JsonResponse:
    info = await _call(runtime(request).services.keys.make_primary, actor, key)
    return _key_json(request, info)


@router.post(
    "/{key}/disable",
    summary="Disable a key now (reversible): it and its browser tokens stop working",
    response_model=answers.KeyAnswer,
)
async def disable_key(
    request: Request, actor: TokenActor, key: str, body: Disable | None = None
) -> JsonResponse:
    reason = body.reason if body is not None else None
    info = await _call(runtime(request).services.keys.disable, actor, key, reason)
    return _key_json(request, info)


@router.post(
    "/{key}/enable", summary="Enable a disabled key again", response_model=answers.KeyAnswer
)
async def enable_key(request: Request, actor: TokenActor, key: str) -> JsonResponse:
    info = await _call(runtime(request).services.keys.enable, actor, key)
    return _key_json(request, info)


@router.delete(
    "/{key}",
    summary="Delete a key (irreversible; a tombstone stays): type its name to confirm",
    response_model=answers.KeyAnswer,
)
async def delete_key(request: Request, actor: TokenActor, key: str, body: Deletion) -> JsonResponse:
    info = await _call(
        runtime(request).services.keys.delete, actor, key, body.confirm_name, body.force
    )
    return _key_json(request, info)
