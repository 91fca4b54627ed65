"""The admin API for key rotation, /api/v1/admin/rotations/...: the persisted state of
the six steps, driven by ``searchgate rotate`` (or the console's wizard).

Personal API tokens only, holding admin:keys:manage. The caller's permission is checked
(a dependency) before the body is validated, so that a refusal never depends on what
was sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import Field
from starlette.requests import Request

from searchgate.api import answers
from searchgate.api.bodies import JsonRoute
from searchgate.api.deps import json_response, runtime
from searchgate.api.errors import ERROR_RESPONSES
from searchgate.api.responses import JsonResponse
from searchgate.api.routes_admin import TokenActor, _call, _Model
from searchgate.audit import Action
from searchgate.clock import utc_now
from searchgate.errors import InvalidInput
from searchgate.keys.usage import SystemUse
from searchgate.permissions import Actor
from searchgate.rotation.common import Timing
from searchgate.rotation.service import RotationInfo, RotationService

router = APIRouter(
    prefix="/api/v1/admin/rotations",
    tags=["admin: rotation"],
    route_class=JsonRoute,
    responses=ERROR_RESPONSES,
)


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
    return runtime(request).services.rotations


def allowed_to(action: Action) -> Any:
    """The token's actor, once it may do ``action``: checked before the body is read, so
    that a refusal never depends on what was sent."""

    async def check(request: Request, actor: TokenActor) -> Actor:
        await _call(_service(request).authorize, actor, action)
        return actor

    return Depends(check)


def _rotation(info: RotationInfo) -> dict[str, Any]:
    return info.to_dict(utc_now())


async def _answer(change: Callable[..., RotationInfo], *args: Any) -> JsonResponse:
    """Call the service off the event loop; answer with the rotation it returns."""
    return json_response({"rotation": _rotation(await _call(change, *args))})


def _systems(uses: list[SystemUse]) -> list[dict[str, Any]]:
    return [u.to_dict() for u in uses]


@router.post(
    "",
    summary="Start a key rotation, or resume the unfinished one (same store)",
    response_model=answers.StartedRotation,
)
async def start(
    request: Request,
    actor: Annotated[Actor, allowed_to(Action.ROTATION_START)],
    body: StartBody,
) -> JsonResponse:
    svc = _service(request)
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
    response_model=answers.RotationOverview,
)
async def current(request: Request, actor: TokenActor) -> JsonResponse:
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


@router.get(
    "/{rotation_id}", summary="One rotation, finished or not", response_model=answers.RotationAnswer
)
async def get_rotation(request: Request, actor: TokenActor, rotation_id: str) -> JsonResponse:
    return await _answer(_service(request).get, actor, rotation_id)


@router.get(
    "/{rotation_id}/traffic",
    summary="Systems seen on the old key (since the quiet period before the start) and the new",
    response_model=answers.Traffic,
)
async def traffic(request: Request, actor: TokenActor, rotation_id: str) -> JsonResponse:
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
    status_code=201,
    response_model=answers.RotationKey,
)
async def create_key(
    request: Request,
    actor: Annotated[Actor, allowed_to(Action.ROTATION_STEP)],
    rotation_id: str,
    body: CreateKeyBody,
) -> JsonResponse:
    svc = _service(request)
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
    response_model=answers.RotationAnswer,
)
async def record_step(
    request: Request,
    actor: Annotated[Actor, allowed_to(Action.ROTATION_STEP)],
    rotation_id: str,
    body: StepBody,
) -> JsonResponse:
    svc = _service(request)
    if body.error is not None and body.data is not None:
        raise InvalidInput("send data (a step done) or error (a step failed), not both")
    if body.error is not None:
        return await _answer(svc.fail_step, actor, rotation_id, body.lease, body.step, body.error)
    return await _answer(
        svc.complete_step, actor, rotation_id, body.lease, body.step, body.data or {}
    )


@router.post(
    "/{rotation_id}/abort",
    summary="Roll back: the old key primary and enabled again, the new key deleted",
    response_model=answers.RotationAnswer,
)
async def abort(
    request: Request,
    actor: Annotated[Actor, allowed_to(Action.ROTATION_ABORT)],
    rotation_id: str,
    body: AbortBody,
) -> JsonResponse:
    return await _answer(
        _service(request).abort,
        actor,
        rotation_id,
        body.lease,
        body.reason,
        body.store_version_restored,
    )


@router.post(
    "/{rotation_id}/finish",
    summary="Close a rotation whose six steps are done (releases the lock)",
    response_model=answers.RotationAnswer,
)
async def finish(
    request: Request,
    actor: Annotated[Actor, allowed_to(Action.ROTATION_FINISH)],
    rotation_id: str,
    body: LeaseBody,
) -> JsonResponse:
    return await _answer(_service(request).finish, actor, rotation_id, body.lease)
