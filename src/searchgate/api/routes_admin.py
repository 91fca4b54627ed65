"""The admin API, /api/v1/admin/...: users, roles, collections and the change log.

It accepts personal API tokens only (``Authorization: Bearer sgp_...``): never a
client key, never a session cookie. Every refusal and every change is recorded in
the change log by the services.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse

from searchgate.api.deps import REQUEST_BODY, json_body, json_response, runtime
from searchgate.api.errors import AuthError
from searchgate.api.responses import JsonResponse
from searchgate.audit import AuditFilter
from searchgate.audit.service import MAX_PAGE
from searchgate.errors import InvalidInput, Unauthenticated
from searchgate.params import SQL_INT_MAX, whole_number
from searchgate.permissions import Actor

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

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


@router.get("/me", summary="The token's owner and what the token may do")
async def me(request: Request) -> JsonResponse:
    actor = await token_actor(request)
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


@router.get("/users", summary="List users, with the admin count")
async def list_users(request: Request) -> JsonResponse:
    actor = await token_actor(request)
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


@router.post("/users", summary="Create a user", openapi_extra={"requestBody": REQUEST_BODY})
async def create_user(request: Request) -> JsonResponse:
    actor = await token_actor(request)
    body = await _body(request, NewUser)
    info = await _call(
        runtime(request).services.users.create,
        actor,
        body.email,
        body.password,
        body.role,
        body.display_name,
    )
    return json_response({"user": info.to_dict()}, status=201)


@router.get("/users/{user}", summary="One user, by id or email")
async def get_user(request: Request, user: str) -> JsonResponse:
    actor = await token_actor(request)
    info = await _call(runtime(request).services.users.get, actor, user)
    return json_response({"user": info.to_dict()})


@router.patch(
    "/users/{user}",
    summary="Change a user's role or display name",
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def update_user(request: Request, user: str) -> JsonResponse:
    actor = await token_actor(request)
    body = await _body(request, UserChange)
    info = await _call(
        runtime(request).services.users.update,
        actor,
        user,
        role=body.role,
        display_name=body.display_name,
    )
    return json_response({"user": info.to_dict()})


@router.post("/users/{user}/disable", summary="Disable a user: sessions and tokens end now")
async def disable_user(request: Request, user: str) -> JsonResponse:
    actor = await token_actor(request)
    info = await _call(runtime(request).services.users.disable, actor, user)
    return json_response({"user": info.to_dict()})


@router.post("/users/{user}/enable", summary="Enable a disabled user")
async def enable_user(request: Request, user: str) -> JsonResponse:
    actor = await token_actor(request)
    info = await _call(runtime(request).services.users.enable, actor, user)
    return json_response({"user": info.to_dict()})


@router.delete("/users/{user}", summary="Delete a user (the change log keeps their name)")
async def delete_user(request: Request, user: str) -> JsonResponse:
    actor = await token_actor(request)
    await _call(runtime(request).services.users.delete, actor, user)
    return json_response({"deleted": user})


# --- roles ---------------------------------------------------------------------------


@router.get("/roles", summary="List roles with their permissions and areas")
async def list_roles(request: Request) -> JsonResponse:
    actor = await token_actor(request)
    infos = await _call(runtime(request).services.roles.list, actor)
    return json_response({"roles": [r.to_dict() for r in infos]})


@router.post("/roles", summary="Create a custom role", openapi_extra={"requestBody": REQUEST_BODY})
async def create_role(request: Request) -> JsonResponse:
    actor = await token_actor(request)
    body = await _body(request, NewRole)
    info = await _call(
        runtime(request).services.roles.create,
        actor,
        body.name,
        body.permissions,
        body.areas,
        body.description,
    )
    return json_response({"role": info.to_dict()}, status=201)


@router.get("/roles/{name}", summary="One role")
async def get_role(request: Request, name: str) -> JsonResponse:
    actor = await token_actor(request)
    info = await _call(runtime(request).services.roles.get, actor, name)
    return json_response({"role": info.to_dict()})


@router.patch(
    "/roles/{name}", summary="Change a custom role", openapi_extra={"requestBody": REQUEST_BODY}
)
async def update_role(request: Request, name: str) -> JsonResponse:
    actor = await token_actor(request)
    body = await _body(request, RoleChange)
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


@router.delete("/roles/{name}", summary="Delete a custom role nobody holds")
async def delete_role(request: Request, name: str) -> JsonResponse:
    actor = await token_actor(request)
    await _call(runtime(request).services.roles.delete, actor, name)
    return json_response({"deleted": name})


# --- collections ---------------------------------------------------------------------


@router.get("/collections", summary="List collections with record counts")
async def list_collections(request: Request) -> JsonResponse:
    actor = await token_actor(request)
    infos = await _call(runtime(request).services.collections.list, actor)
    return json_response({"collections": [i.to_dict() for i in infos]})


@router.delete("/collections/{name}", summary="Delete a collection (irreversible)")
async def delete_collection(request: Request, name: str) -> JsonResponse:
    actor = await token_actor(request)
    removed = await _call(runtime(request).services.collections.delete, actor, name)
    return json_response({"deleted": name, "records": removed})


# --- change log ----------------------------------------------------------------------


def _when(value: str | None, field: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{field} is an ISO 8601 date or time, like 2026-01-31 or 2026-01-31T12:00:00Z",
            field=field,
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _filters(request: Request) -> AuditFilter:
    q = request.query_params
    return AuditFilter(
        user=q.get("user") or None,
        action=q.get("action") or None,
        target=q.get("target") or None,
        outcome=q.get("outcome") or None,
        since=_when(q.get("since"), "since"),
        until=_when(q.get("until"), "until"),
    )


@router.get("/audit", summary="Change log events, newest first, with filters and paging")
async def list_audit(request: Request) -> JsonResponse:
    actor = await token_actor(request)
    filters = _filters(request)
    q = request.query_params
    before = whole_number(q.get("before") or None, "before", low=1, high=SQL_INT_MAX)
    limit = whole_number(q.get("limit") or None, "limit", low=1, high=MAX_PAGE, default=50)
    page = await _call(
        runtime(request).services.audit.query, actor, filters, before=before, limit=limit
    )
    return json_response(
        {"events": [e.to_dict() for e in page.events], "nextBefore": page.next_before}
    )


@router.get("/audit/export", summary="The change log as CSV (same filters), oldest first")
async def export_audit(request: Request) -> StreamingResponse:
    actor = await token_actor(request)
    chunks = await _call(runtime(request).services.audit.export_csv, actor, _filters(request))
    return StreamingResponse(
        iterate_in_threadpool(chunks),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="searchgate-audit.csv"'},
    )
