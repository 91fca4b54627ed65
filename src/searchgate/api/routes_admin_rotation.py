"""The admin API for key rotation, /api/v1/admin/rotations/...: the persisted state of
the six steps, driven by ``searchgate rotate`` (or the console's wizard).

Personal API tokens only, holding admin:keys:manage. The caller's permission is checked
before the body is read, so that a refusal never depends on what was sent.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field
from starlette.requests import Request

from searchgate.api.deps import REQUEST_BODY, json_response, runtime
from searchgate.api.responses import JsonResponse
from searchgate.api.routes_admin import _body, _call, _Model, token_actor
from searchgate.audit import Action
from searchgate.clock import utc_now
from searchgate.errors import InvalidInput
from searchgate.keys.usage import SystemUse
from searchgate.rotation.common import Timing
from searchgate.rotation.service import RotationInfo, RotationService, rotation_service

router = APIRouter(prefix="/api/v1/admin/rotations", tags=["admin: rotation"])


class StoreRef(_Model):
    kind: str
    location: str


class Options(_Model):
    quiet_seconds: float | None = Field(default=None, alias="quietSeconds")
    probation_seconds: float | None = Field(default=None, alias="probationSeconds")
    move_timeout_seconds: float | None = Field(default=None, alias="moveTimeoutSeconds")


class StartBody(_Model):
    store: StoreRef
    options: Options = Field(default_factory=Options)
    lease: str | None = Field(default=None, max_length=200)
    lease_seconds: int = Field(default=60, alias="leaseSeconds")
    holder: str | None = Field(default=None, max_length=320)


class LeaseBody(_Model):
    lease: str = Field(max_length=200)


class CreateKeyBody(LeaseBody):
    replace_unused: str | None = Field(default=None, alias="replaceUnused", max_length=32)


class StepBody(LeaseBody):
    step: str = Field(max_length=32)
    data: dict[str, Any] | None = None
    error: str | None = Field(default=None, max_length=2000)


class AbortBody(LeaseBody):
    reason: str | None = Field(default=None, max_length=500)
    store_version_restored: str | None = Field(
        default=None, alias="storeVersionRestored", max_length=128
    )


def _service(request: Request) -> RotationService:
    return rotation_service(runtime(request).services)


def _rotation(info: RotationInfo) -> dict[str, Any]:
    return info.to_dict(utc_now())


def _systems(uses: list[SystemUse]) -> list[dict[str, Any]]:
    return [u.to_dict() for u in uses]


@router.post(
    "",
    summary="Start a key rotation, or resume the unfinished one (same store)",
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def start(request: Request) -> JsonResponse:
    actor = await token_actor(request)
    svc = _service(request)
    await _call(svc.authorize, actor, Action.ROTATION_START)
    body = await _body(request, StartBody)
    timing = Timing.from_dict(body.options.model_dump(by_alias=True, exclude_none=True))
    started = await _call(
        svc.start,
        actor,
        body.store.kind,
        body.store.location,
        timing,
        lease=body.lease,
        lease_seconds=body.lease_seconds,
        holder=body.holder,
    )
    return json_response(
        {
            "rotation": _rotation(started.info),
            "lease": started.lease,
            "resumed": not started.created,
        },
        status=201 if started.created else 200,
    )


@router.get(
    "/current",
    summary="The unfinished rotation (or null), the primary key and the last finished rotation",
)
async def current(request: Request) -> JsonResponse:
    actor = await token_actor(request)
    overview = await _call(_service(request).overview, actor)
    now = utc_now()
    primary = overview.primary
    return json_response(
        {
            "rotation": overview.rotation.to_dict(now) if overview.rotation else None,
            "primary": primary.to_dict(now) if primary else None,
            "primaryAgeDays": round(primary.age_days(now), 3) if primary else None,
            "maxKeyAgeDays": overview.max_key_age_days,
            "lastFinished": overview.last_finished.to_dict(now) if overview.last_finished else None,
            "deletionCheckSeconds": overview.deletion_check_seconds,
        }
    )


@router.get("/{rotation_id}", summary="One rotation, finished or not")
async def get_rotation(request: Request, rotation_id: str) -> JsonResponse:
    actor = await token_actor(request)
    info = await _call(_service(request).get, actor, rotation_id)
    return json_response({"rotation": _rotation(info)})


@router.get(
    "/{rotation_id}/traffic",
    summary="Systems seen on the old key (since the quiet period before the start) and the new",
)
async def traffic(request: Request, rotation_id: str) -> JsonResponse:
    actor = await token_actor(request)
    seen = await _call(_service(request).traffic, actor, rotation_id)
    return json_response(
        {
            "oldKey": _systems(seen.old),
            "newKey": _systems(seen.new),
            "since": seen.since.isoformat(),
            "now": seen.now.isoformat(),
        }
    )


@router.post(
    "/{rotation_id}/create-key",
    summary="Step 2: create the new primary key (its secret is in this answer only)",
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def create_key(request: Request, rotation_id: str) -> JsonResponse:
    actor = await token_actor(request)
    svc = _service(request)
    await _call(svc.authorize, actor, Action.ROTATION_STEP)
    body = await _body(request, CreateKeyBody)
    info, created = await _call(svc.create_key, actor, rotation_id, body.lease, body.replace_unused)
    return json_response(
        {
            "rotation": _rotation(info),
            "key": created.info.to_dict(utc_now()),
            "secret": created.secret,
        },
        status=201,
    )


@router.post(
    "/{rotation_id}/steps",
    summary="Record a completed step with what it found (or, with 'error', a failed one)",
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def record_step(request: Request, rotation_id: str) -> JsonResponse:
    actor = await token_actor(request)
    svc = _service(request)
    await _call(svc.authorize, actor, Action.ROTATION_STEP)
    body = await _body(request, StepBody)
    if body.error is not None and body.data is not None:
        raise InvalidInput("send data (a step done) or error (a step failed), not both")
    if body.error is not None:
        info = await _call(svc.fail_step, actor, rotation_id, body.lease, body.step, body.error)
    else:
        info = await _call(
            svc.complete_step, actor, rotation_id, body.lease, body.step, body.data or {}
        )
    return json_response({"rotation": _rotation(info)})


@router.post(
    "/{rotation_id}/abort",
    summary="Roll back: the old key primary and enabled again, the new key deleted",
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def abort(request: Request, rotation_id: str) -> JsonResponse:
    actor = await token_actor(request)
    svc = _service(request)
    await _call(svc.authorize, actor, Action.ROTATION_ABORT)
    body = await _body(request, AbortBody)
    info = await _call(
        svc.abort, actor, rotation_id, body.lease, body.reason, body.store_version_restored
    )
    return json_response({"rotation": _rotation(info)})


@router.post(
    "/{rotation_id}/finish",
    summary="Close a rotation whose six steps are done (releases the lock)",
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def finish(request: Request, rotation_id: str) -> JsonResponse:
    actor = await token_actor(request)
    svc = _service(request)
    await _call(svc.authorize, actor, Action.ROTATION_FINISH)
    body = await _body(request, LeaseBody)
    info = await _call(svc.finish, actor, rotation_id, body.lease)
    return json_response({"rotation": _rotation(info)})
