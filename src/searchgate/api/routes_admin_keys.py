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
from typing import Any, TypeVar

from fastapi import APIRouter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from searchgate.api.deps import REQUEST_BODY, json_body, json_response, runtime
from searchgate.api.responses import JsonResponse
from searchgate.api.routes_admin import token_actor
from searchgate.audit import Action
from searchgate.errors import InvalidInput
from searchgate.keys.info import CreatedKey, KeyInfo
from searchgate.keys.restrictions import Restrictions
from searchgate.keys.scopes import Scope
from searchgate.keys.service import MAX_ROLL_DELAY, unknown_collection_warnings
from searchgate.keys.usage import RETENTION_DAYS, UsageQueries
from searchgate.params import whole_number
from searchgate.permissions import Actor, Permission

router = APIRouter(prefix="/api/v1/admin/keys", tags=["admin: client keys"])
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

# The action a refused read is recorded under (reads that succeed are not recorded).
KEYS_LIST = Action.KEYS_LIST
RESTRICTION_FIELDS = ("collections", "expiresAt", "ipRanges", "origins", "rateLimitPerMinute")
NO_STORE = {"Cache-Control": "no-store"}


async def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await run_in_threadpool(fn, *args, **kwargs)


async def _body(request: Request, model: type[M]) -> M:
    raw = await json_body(request)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or None
        raise InvalidInput(f"{loc + ': ' if loc else ''}{err['msg']}", field=loc) from None


async def _reader(request: Request) -> Actor:
    """The token's actor, once it is known to hold ``admin:keys:read``."""
    actor = await token_actor(request)
    await _call(
        runtime(request).services.authorizer.authorize, actor, Permission.KEYS_READ, KEYS_LIST
    )
    return actor


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _RestrictionFields(_Model):
    # Left untyped here: Restrictions.from_dict validates them and names the field.
    collections: Any = None
    expires_at: Any = Field(default=None, alias="expiresAt")
    ip_ranges: Any = Field(default=None, alias="ipRanges")
    origins: Any = None
    rate_limit_per_minute: Any = Field(default=None, alias="rateLimitPerMinute")

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
    expires_at: Any = Field(alias="expiresAt")


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


@router.get("", summary="List client keys (never their secrets); ?all=true adds tombstones")
async def list_keys(request: Request) -> JsonResponse:
    await _reader(request)
    keys = runtime(request).services.keys
    include_deleted = request.query_params.get("all", "").lower() in ("true", "1", "yes")
    infos = await _call(keys.list, include_deleted)
    now = keys.clock()
    return json_response({"keys": [i.to_dict(now) for i in infos]})


@router.get("/{key}", summary="One client key, by id or name (tombstones too)")
async def get_key(request: Request, key: str) -> JsonResponse:
    await _reader(request)
    info = await _call(runtime(request).services.keys.get, key, True)
    return _key_json(request, info)


@router.get("/{key}/usage", summary="A key's systems and hourly request counts (?days=1..30)")
async def key_usage(request: Request, key: str) -> JsonResponse:
    await _reader(request)
    days = whole_number(
        request.query_params.get("days") or None,
        "days",
        low=1,
        high=RETENTION_DAYS,
        default=RETENTION_DAYS,
    )
    services = runtime(request).services
    info = await _call(services.keys.get, key, True)
    now = services.keys.clock()
    since = now - timedelta(days=days)
    usage = UsageQueries(services.db, services.keys.clock)
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
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def create_key(request: Request) -> JsonResponse:
    actor = await token_actor(request)
    body = await _body(request, NewKey)
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
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def new_primary(request: Request) -> JsonResponse:
    actor = await token_actor(request)
    body = await _body(request, Successor)
    created = await _call(runtime(request).services.keys.new_primary, actor, body.name)
    return _created(request, created)


@router.post(
    "/{key}/roll",
    summary="Replace a key by a copy; the old one expires after expiresInSeconds",
    status_code=201,
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def roll_key(request: Request, key: str) -> JsonResponse:
    actor = await token_actor(request)
    body = await _body(request, Roll)
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
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def update_key(request: Request, key: str) -> JsonResponse:
    actor = await token_actor(request)
    body = await _body(request, KeyChange)
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
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def set_expiry(request: Request, key: str) -> JsonResponse:
    actor = await token_actor(request)
    body = await _body(request, Expiry)
    at = Restrictions.from_dict({"expiresAt": body.expires_at}).expires_at
    info = await _call(runtime(request).services.keys.set_expiry, actor, key, at)
    return _key_json(request, info)


@router.post(
    "/{key}/make-primary",
    summary="Make an existing key the primary one (the previous primary starts retiring)",
)
async def make_primary(request: Request, key: str) -> JsonResponse:
    actor = await token_actor(request)
    info = await _call(runtime(request).services.keys.make_primary, actor, key)
    return _key_json(request, info)


@router.post(
    "/{key}/disable",
    summary="Disable a key now (reversible): it and its browser tokens stop working",
    openapi_extra={"requestBody": {**REQUEST_BODY, "required": False}},
)
async def disable_key(request: Request, key: str) -> JsonResponse:
    actor = await token_actor(request)
    body = await _body(request, Disable)
    info = await _call(runtime(request).services.keys.disable, actor, key, body.reason)
    return _key_json(request, info)


@router.post("/{key}/enable", summary="Enable a disabled key again")
async def enable_key(request: Request, key: str) -> JsonResponse:
    actor = await token_actor(request)
    info = await _call(runtime(request).services.keys.enable, actor, key)
    return _key_json(request, info)


@router.delete(
    "/{key}",
    summary="Delete a key (irreversible; a tombstone stays): type its name to confirm",
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def delete_key(request: Request, key: str) -> JsonResponse:
    actor = await token_actor(request)
    body = await _body(request, Deletion)
    info = await _call(
        runtime(request).services.keys.delete, actor, key, body.confirm_name, body.force
    )
    return _key_json(request, info)
