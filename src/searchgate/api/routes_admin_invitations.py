"""The admin API's side of passwords and invitations: set a (temporary) password for
someone, invite a person by a one-time link, list and withdraw invitations.

A personal token cannot change its owner's own password: that takes the current
password, in the Command Center (Account, Change password).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BeforeValidator, Field
from starlette.requests import Request

from searchgate.accounts.invitations import DEFAULT_LIFETIME, invitation_url
from searchgate.api import answers
from searchgate.api.bodies import JsonRoute
from searchgate.api.deps import json_response, runtime
from searchgate.api.errors import ERROR_RESPONSES
from searchgate.api.query import flag
from searchgate.api.responses import JsonResponse
from searchgate.api.routes_admin import TokenActor, _call, _Model

router = APIRouter(
    prefix="/api/v1/admin", tags=["admin"], route_class=JsonRoute, responses=ERROR_RESPONSES
)
DEFAULT_HOURS = int(DEFAULT_LIFETIME.total_seconds() // 3600)


class NewPassword(_Model):
    password: str
    # False: the person keeps it (no change asked at their next sign-in).
    temporary: bool = True


class NewInvitation(_Model):
    email: str
    role: str
    display_name: str | None = Field(default=None, alias="displayName")
    expires_in_hours: int = Field(default=DEFAULT_HOURS, alias="expiresInHours")


@router.post(
    "/users/{user}/password",
    summary="Set someone's password; they change it at their next sign-in unless temporary=false",
    response_model=answers.UserAnswer,
)
async def set_password(
    request: Request, actor: TokenActor, user: str, body: NewPassword
) -> JsonResponse:
    users = runtime(request).services.users
    await _call(users.reset_password, actor, user, body.password, temporary=body.temporary)
    info = await _call(users.get, actor, user)
    return json_response({"user": info.to_dict()})


@router.get(
    "/invitations",
    summary="Invitations waiting to be accepted (all with ?all=true)",
    response_model=answers.InvitationsAnswer,
)
async def list_invitations(
    request: Request,
    actor: TokenActor,
    show_all: Annotated[
        bool,
        Query(alias="all", description="true: accepted, expired and withdrawn ones too"),
        BeforeValidator(flag),
    ] = False,
) -> JsonResponse:
    service = runtime(request).services.invitations
    infos = await _call(service.list, actor, include_inactive=show_all)
    now = service.clock()
    return json_response({"invitations": [i.to_dict(now) for i in infos]})


@router.post(
    "/invitations",
    summary="Invite a person by a one-time link (returned once)",
    status_code=201,
    response_model=answers.CreatedInvitation,
)
async def create_invitation(
    request: Request, actor: TokenActor, body: NewInvitation
) -> JsonResponse:
    service = runtime(request).services.invitations
    created = await _call(
        service.create,
        actor,
        body.email,
        body.role,
        body.display_name,
        timedelta(hours=body.expires_in_hours),
    )
    origin = f"{request.url.scheme}://{request.headers.get('host', 'localhost')}"
    return json_response(
        {
            "invitation": created.info.to_dict(service.clock()),
            "url": invitation_url(origin, created.secret),
        },
        status=201,
    )


@router.delete(
    "/invitations/{invitation}",
    summary="Withdraw a pending invitation",
    response_model=answers.InvitationAnswer,
)
async def withdraw_invitation(request: Request, actor: TokenActor, invitation: str) -> JsonResponse:
    service = runtime(request).services.invitations
    info = await _call(service.revoke, actor, invitation)
    return json_response({"invitation": info.to_dict(service.clock())})
