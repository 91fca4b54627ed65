"""The admin API, /api/v1/admin/...: users, roles, collections and the change log.

It accepts personal API tokens only (``Authorization: Bearer sgp_...``): never a
client key, never a session cookie. Every refusal and every change is recorded in
the change log by the services.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse

from searchgate.api import answers
from searchgate.api.bodies import JsonRoute
from searchgate.api.deps import json_response, runtime
from searchgate.api.errors import ERROR_RESPONSES, AuthError
from searchgate.api.query import instant, optional_text, whole_number_between
from searchgate.api.responses import JsonResponse
from searchgate.audit import AuditFilter
from searchgate.audit.service import MAX_PAGE
from searchgate.errors import Unauthenticated
from searchgate.params import SQL_INT_MAX
from searchgate.permissions import Actor

router = APIRouter(
    prefix="/api/v1/admin", tags=["admin"], route_class=JsonRoute, responses=ERROR_RESPONSES
)
T = TypeVar("T")

CREDENTIAL_HELP = (
    "the admin API accepts personal API tokens only: 'Authorization: Bearer sgp_...' "
    "(create one on your account page in the Command Center)"
)


def _client(request: Request) -> tuple[str | None, str | None]:
    ua = request.headers.get("user-agent")
    return (request.client.host if request.client else None), ua


async def token_actor(request: Request) -> Actor:
    """The actor behind the request's personal API token, or a 401 that says why."""
    auth = request.headers.get("authorization", "").strip()
    if not auth:
        if request.headers.get("x-client-key"):
            raise AuthError(
                401, "client_key_not_accepted", f"client keys are refused here; {CREDENTIAL_HELP}"
            )
        raise AuthError(401, "missing_token", f"no credential; {CREDENTIAL_HELP}")
    scheme, _, value = auth.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        raise AuthError(
            401, "bad_authorization", f"Authorization must be 'Bearer <token>'; {CREDENTIAL_HELP}"
        )
    if value.startswith("sgk_"):
        raise AuthError(
            401,
            "client_key_not_accepted",
            "this is a client key: it works on the data plane only, never on the admin API; "
            + CREDENTIAL_HELP,
        )
    ip, ua = _client(request)
    rt = runtime(request)
    try:
        return await run_in_threadpool(rt.services.tokens.authenticate, value, ip=ip, user_agent=ua)
    except Unauthenticated as exc:
        reason = str(exc.details.get("reason", "invalid_token"))
        raise AuthError(401, reason, exc.message) from None


# A dependency, so that the credential is checked before the body is validated.
TokenActor = Annotated[Actor, Depends(token_actor)]


async def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await run_in_threadpool(fn, *args, **kwargs)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NewUser(_Model):
    email: str
    password: str
    role: str
    display_name: str | None = Field(default=None, alias="displayName")


class UserChange(_Model):
    role: str | None = None
    display_name: str | None = Field(default=None, alias="displayName")


class NewRole(_Model):
    name: str
    permissions: list[str]
    areas: list[str] | None = None
    description: str = ""


class RoleChange(_Model):
    name: str | None = None
    permissions: list[str] | None = None
    # Absent: unchanged; null: every area; a list: those areas.
    areas: list[str] | None = None
    description: str | None = None


# --- who am I ------------------------------------------------------------------------


@router.get(
    "/me", summary="The token's owner and what the token may do", response_model=answers.MeAnswer
)
async def me(request: Request, actor: TokenActor) -> JsonResponse:
    assert actor.user_id is not None
    user = await _call(runtime(request).services.users.get, actor, actor.user_id)
    return json_response(
        {
            "user": user.to_dict(),
            "token": {
                "id": actor.token_id,
                "permissions": sorted(p.value for p in actor.effective_permissions),
            },
        }
    )


# --- users ---------------------------------------------------------------------------


@router.get(
    "/users", summary="List users, with the admin count", response_model=answers.UsersAnswer
)
async def list_users(request: Request, actor: TokenActor) -> JsonResponse:
    users = runtime(request).services.users
    infos = await _call(users.list, actor)
    summary = await _call(users.admin_summary, actor)
    return json_response(
        {
            "users": [u.to_dict() for u in infos],
            "admins": {
                "active": summary.active_admins,
                "max": summary.max_admins,
                "tooMany": summary.too_many,
                "withoutMfa": summary.admins_without_mfa,
            },
        }
    )


@router.post("/users", summary="Create a user", status_code=201, response_model=answers.UserAnswer)
async def create_user(request: Request, actor: TokenActor, body: NewUser) -> JsonResponse:
    info = await _call(
        runtime(request).services.users.create,
        actor,
        body.email,
        body.password,
        body.role,
        body.display_name,
    )
    return json_response({"user": info.to_dict()}, status=201)


@router.get("/users/{user}", summary="One user, by id or email", response_model=answers.UserAnswer)
async def get_user(request: Request, actor: TokenActor, user: str) -> JsonResponse:
    info = await _call(runtime(request).services.users.get, actor, user)
    return json_response({"user": info.to_dict()})


@router.patch(
    "/users/{user}",
    summary="Change a user's role or display name",
    response_model=answers.UserAnswer,
)
async def update_user(
    request: Request, actor: TokenActor, user: str, body: UserChange
) -> JsonResponse:
    info = await _call(
        runtime(request).services.users.update,
        actor,
        user,
        role=body.role,
        display_name=body.display_name,
    )
    return json_response({"user": info.to_dict()})


@router.post(
    "/users/{user}/disable",
    summary="Disable a user: sessions and tokens end now",
    response_model=answers.UserAnswer,
)
async def disable_user(request: Request, actor: TokenActor, user: str) -> JsonResponse:
    info = await _call(runtime(request).services.users.disable, actor, user)
    return json_response({"user": info.to_dict()})


@router.post(
    "/users/{user}/enable", summary="Enable a disabled user", response_model=answers.UserAnswer
)
async def enable_user(request: Request, actor: TokenActor, user: str) -> JsonResponse:
    info = await _call(runtime(request).services.users.enable, actor, user)
    return json_response({"user": info.to_dict()})


@router.delete(
    "/users/{user}",
    summary="Delete a user (the change log keeps their name)",
    response_model=answers.Deleted,
)
async def delete_user(request: Request, actor: TokenActor, user: str) -> JsonResponse:
    await _call(runtime(request).services.users.delete, actor, user)
    return json_response({"deleted": user})


# --- roles ---------------------------------------------------------------------------


@router.get(
    "/roles",
    summary="List roles with their permissions and areas",
    response_model=answers.RolesAnswer,
)
async def list_roles(request: Request, actor: TokenActor) -> JsonResponse:
    infos = await _call(runtime(request).services.roles.list, actor)
    return json_response({"roles": [r.to_dict() for r in infos]})


@router.post(
    "/roles", summary="Create a custom role", status_code=201, response_model=answers.RoleAnswer
)
async def create_role(request: Request, actor: TokenActor, body: NewRole) -> JsonResponse:
    info = await _call(
        runtime(request).services.roles.create,
        actor,
        body.name,
        body.permissions,
        body.areas,
        body.description,
    )
    return json_response({"role": info.to_dict()}, status=201)


@router.get("/roles/{name}", summary="One role", response_model=answers.RoleAnswer)
async def get_role(request: Request, actor: TokenActor, name: str) -> JsonResponse:
    info = await _call(runtime(request).services.roles.get, actor, name)
    return json_response({"role": info.to_dict()})


@router.patch("/roles/{name}", summary="Change a custom role", response_model=answers.RoleAnswer)
async def update_role(
    request: Request, actor: TokenActor, name: str, body: RoleChange
) -> JsonResponse:
    areas_given = "areas" in body.model_fields_set
    info = await _call(
        runtime(request).services.roles.update,
        actor,
        name,
        new_name=body.name,
        permissions=body.permissions,
        areas=body.areas if areas_given else None,
        all_areas=areas_given and body.areas is None,
        description=body.description,
    )
    return json_response({"role": info.to_dict()})


@router.delete(
    "/roles/{name}", summary="Delete a custom role nobody holds", response_model=answers.Deleted
)
async def delete_role(request: Request, actor: TokenActor, name: str) -> JsonResponse:
    await _call(runtime(request).services.roles.delete, actor, name)
    return json_response({"deleted": name})


# --- collections ---------------------------------------------------------------------


@router.get(
    "/collections",
    summary="List collections with record counts",
    response_model=answers.CollectionsAnswer,
)
async def list_collections(request: Request, actor: TokenActor) -> JsonResponse:
    infos = await _call(runtime(request).services.collections.list, actor)
    return json_response({"collections": [i.to_dict() for i in infos]})


@router.delete(
    "/collections/{name}",
    summary="Delete a collection (irreversible)",
    response_model=answers.CollectionDeleted,
)
async def delete_collection(request: Request, actor: TokenActor, name: str) -> JsonResponse:
    removed = await _call(runtime(request).services.collections.delete, actor, name)
    return json_response({"deleted": name, "records": removed})


# --- change log ----------------------------------------------------------------------


Text = Annotated[str | None, BeforeValidator(optional_text)]
Instant = Annotated[datetime | None, BeforeValidator(instant)]
INSTANT_HELP = "ISO 8601, like 2026-01-31 or 2026-01-31T12:00:00Z (UTC unless an offset is given)"


def audit_filters(
    user: Annotated[Text, Query(description="the acting user's email")] = None,
    action: Annotated[Text, Query(description="an action, like admin:user:create")] = None,
    target: Annotated[Text, Query(description="what the action was done to")] = None,
    outcome: Annotated[Text, Query(description="success or denied")] = None,
    since: Annotated[Instant, Query(description=f"events at or after; {INSTANT_HELP}")] = None,
    until: Annotated[Instant, Query(description=f"events before; {INSTANT_HELP}")] = None,
) -> AuditFilter:
    return AuditFilter(
        user=user, action=action, target=target, outcome=outcome, since=since, until=until
    )


Filters = Annotated[AuditFilter, Depends(audit_filters)]
DEFAULT_PAGE = 50


@router.get(
    "/audit",
    summary="Change log events, newest first, with filters and paging",
    response_model=answers.AuditPage,
)
async def list_audit(
    request: Request,
    actor: TokenActor,
    filters: Filters,
    before: Annotated[
        int | None,
        Query(ge=1, le=SQL_INT_MAX, description="the nextBefore of the previous page"),
        BeforeValidator(whole_number_between(1, SQL_INT_MAX)),
    ] = None,
    limit: Annotated[
        int,
        Query(ge=1, le=MAX_PAGE, description="events per page"),
        BeforeValidator(whole_number_between(1, MAX_PAGE, DEFAULT_PAGE)),
    ] = DEFAULT_PAGE,
) -> JsonResponse:
    page = await _call(
        runtime(request).services.audit.query, actor, filters, before=before, limit=limit
    )
    return json_response(
        {"events": [e.to_dict() for e in page.events], "nextBefore": page.next_before}
    )


@router.get(
    "/audit/export",
    summary="The change log as CSV (same filters), oldest first",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def export_audit(request: Request, actor: TokenActor, filters: Filters) -> StreamingResponse:
    chunks = await _call(runtime(request).services.audit.export_csv, actor, filters)
    return StreamingResponse(
        iterate_in_threadpool(chunks),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="searchgate-audit.csv"'},
    )
