"""The admin API for an area's merchandising, /api/v1/admin/areas/{area}/merchandising/...
(docs/merchandising-api.md): the draft, its objects one at a time, publishing, the
history with diffs, rollback, export and import of the document file, and a preview
search with the live version or the draft.

Personal API tokens only. The caller's permission (and the area) is checked by a
dependency before the body is read, so that a refusal never depends on what was sent.
The draft's revision is its ETag; a write that sends ``If-Match`` with the revision it
read is refused (409) when the draft changed meanwhile.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BeforeValidator, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from searchgate.api import answers
from searchgate.api.bodies import JsonRoute, documented_body, inline_schema, read_json
from searchgate.api.deps import json_response, runtime
from searchgate.api.errors import ERROR_RESPONSES
from searchgate.api.query import whole_number_between
from searchgate.api.responses import JsonResponse
from searchgate.api.routes_admin import TokenActor, _call, _Model
from searchgate.audit.tags import Action
from searchgate.errors import InvalidInput
from searchgate.merchandising.diff import Change, diff
from searchgate.merchandising.document import (
    EMPTY,
    OBJECT_MODELS,
    Kind,
    MerchandisingDocument,
)
from searchgate.merchandising.inputs import document_file
from searchgate.merchandising.models import NOTE_CHARS
from searchgate.merchandising.service import (
    MAX_NUMBER,
    MAX_VERSIONS_PAGE,
    Draft,
    MerchandisingService,
)
from searchgate.params import read_whole_number
from searchgate.permissions import Actor, Permission
from searchgate.search.request import SearchRequest, parse_search_request

router = APIRouter(
    prefix="/api/v1/admin/areas/{area}/merchandising",
    tags=["admin: merchandising"],
    route_class=JsonRoute,
    responses=ERROR_RESPONSES,
)

BODY_LIMIT_SETTING = "SEARCHGATE_LIMIT_MAX_ADMIN_BODY_BYTES"
IF_MATCH_RULE = 'the draft revision you read, as GET .../draft gave it in its ETag (like "7"), or *'


class PublishBody(_Model):
    note: str = Field(default="", max_length=NOTE_CHARS)
    expected_revision: int | None = Field(
        default=None,
        alias="expectedRevision",
        ge=0,
        le=MAX_NUMBER,
        description="the draft revision reviewed: refused (409) when the draft moved on",
    )


class RollbackBody(_Model):
    note: str = Field(default="", max_length=NOTE_CHARS)


class PreviewBody(SearchRequest):
    """A search request (docs/api.md, Search) and which merchandising it runs with;
    its ``area`` is the path's."""

    version: Literal["live", "draft"] = "live"


def _merch(request: Request) -> MerchandisingService:
    return runtime(request).services.merchandising


def allowed(permission: Permission, action: Action) -> Any:
    """The token's actor, once it may do ``action`` in the path's area."""

    async def check(request: Request, actor: TokenActor, area: str) -> Actor:
        await _call(_merch(request).authorize, actor, permission, action, area)
        return actor

    return Depends(check)


Reader = Annotated[Actor, allowed(Permission.AREAS_READ, Action.MERCH_READ)]
Editor = Annotated[Actor, allowed(Permission.MERCH_EDIT, Action.MERCH_DRAFT_UPDATE)]
Importer = Annotated[Actor, allowed(Permission.MERCH_EDIT, Action.MERCH_IMPORT)]
Discarder = Annotated[Actor, allowed(Permission.MERCH_EDIT, Action.MERCH_DRAFT_DISCARD)]
Publisher = Annotated[Actor, allowed(Permission.MERCH_PUBLISH, Action.MERCH_PUBLISH)]
RollingBack = Annotated[Actor, allowed(Permission.MERCH_PUBLISH, Action.MERCH_ROLLBACK)]
Previewer = Annotated[Actor, allowed(Permission.SEARCH_PREVIEW, Action.MERCH_READ)]

IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description=f"optional: {IF_MATCH_RULE}"),
]
Number = Annotated[
    int,
    Path(ge=1, le=MAX_NUMBER, description="a version number"),
    BeforeValidator(whole_number_between(1, MAX_NUMBER)),
]


def expected_revision(if_match: str | None) -> int | None:
    """The revision an ``If-Match`` header names (None: absent, or ``*``)."""
    if if_match is None or if_match.strip() == "*":
        return None
    text = if_match.strip().removeprefix("W/")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    revision = read_whole_number(text, 0, MAX_NUMBER)
    if revision is None:
        raise InvalidInput(f"If-Match: {IF_MATCH_RULE}", field="If-Match")
    return revision


def _draft_answer(draft: Draft, extra: dict[str, Any] | None = None) -> JsonResponse:
    response = json_response({"draft": draft.to_dict(), **(extra or {})})
    response.headers["ETag"] = f'"{draft.revision}"'
    return response


def _changes(changes: list[Change]) -> list[dict[str, Any]]:
    return [c.to_dict() for c in changes]


# --- the draft -------------------------------------------------------------------------


@router.get(
    "/draft",
    summary="The area's draft, its revision (also the ETag) and whether it differs from live",
    response_model=answers.MerchDraftAnswer,
)
async def get_draft(request: Request, actor: Reader, area: str) -> JsonResponse:
    return _draft_answer(await _call(_merch(request).draft, actor, area))


@router.put(
    "/draft",
    summary="Replace the whole draft with a document",
    response_model=answers.MerchDraftAnswer,
)
async def put_draft(
    request: Request,
    actor: Editor,
    area: str,
    body: MerchandisingDocument,
    if_match: IfMatch = None,
) -> JsonResponse:
    revision = expected_revision(if_match)
    draft = await _call(_merch(request).save_draft, actor, area, body, revision)
    return _draft_answer(draft)


OBJECT_BODY = documented_body({"oneOf": [inline_schema(m) for m in OBJECT_MODELS.values()]})


@router.put(
    "/draft/{kind}/{name}",
    summary="Create or replace one object of the draft; a body naming another object "
    "renames this one",
    response_model=answers.MerchDraftAnswer,
    openapi_extra=OBJECT_BODY,
)
async def put_object(
    request: Request,
    actor: Editor,
    area: str,
    kind: Kind,
    name: str,
    if_match: IfMatch = None,
) -> JsonResponse:
    revision = expected_revision(if_match)
    limit = runtime(request).services.settings.limits.max_admin_body_bytes
    data = await read_json(request, limit, BODY_LIMIT_SETTING)
    if isinstance(data, dict) and "name" not in data:
        data = {**data, "name": name}
    try:
        obj: Any = OBJECT_MODELS[kind].model_validate(data)
    except ValidationError as exc:
        # Answered as the typed bodies' errors are, by the one validation handler.
        raise RequestValidationError(exc.errors()) from None
    replacing = name if obj.name != name else None
    draft = await _call(
        lambda: _merch(request).put_object(actor, area, kind, obj, revision, replacing=replacing)
    )
    return _draft_answer(draft)


@router.delete(
    "/draft/{kind}/{name}",
    summary="Delete one object of the draft",
    response_model=answers.MerchDraftAnswer,
)
async def delete_object(
    request: Request,
    actor: Editor,
    area: str,
    kind: Kind,
    name: str,
    if_match: IfMatch = None,
) -> JsonResponse:
    revision = expected_revision(if_match)
    draft = await _call(_merch(request).delete_object, actor, area, kind, name, revision)
    return _draft_answer(draft)


@router.post(
    "/discard",
    summary="Discard the draft: it becomes the live document again",
    response_model=answers.MerchDraftAnswer,
)
async def discard(request: Request, actor: Discarder, area: str) -> JsonResponse:
    return _draft_answer(await _call(_merch(request).discard_draft, actor, area))


# --- publishing and history ------------------------------------------------------------


@router.post(
    "/publish",
    summary="Publish the draft as the next version",
    status_code=201,
    response_model=answers.MerchVersionAnswer,
)
async def publish(request: Request, actor: Publisher, area: str, body: PublishBody) -> JsonResponse:
    version = await _call(_merch(request).publish, actor, area, body.note, body.expected_revision)
    return json_response({"version": version.to_dict()}, status=201)


@router.get(
    "/versions",
    summary="Published versions, newest first",
    response_model=answers.MerchVersions,
)
async def list_versions(
    request: Request,
    actor: Reader,
    area: str,
    limit: Annotated[
        int,
        Query(ge=1, le=MAX_VERSIONS_PAGE, description="versions to list"),
        BeforeValidator(whole_number_between(1, MAX_VERSIONS_PAGE, 50)),
    ] = 50,
) -> JsonResponse:
    versions = await _call(_merch(request).versions, actor, area, limit)
    return json_response(
        {
            "versions": [v.summary() for v in versions],
            "live": versions[0].number if versions else None,
        }
    )


@router.get(
    "/versions/{number}",
    summary="One version, with what changed against the version before it",
    response_model=answers.MerchVersionDetail,
)
async def get_version(request: Request, actor: Reader, area: str, number: Number) -> JsonResponse:
    merch = _merch(request)
    version = await _call(merch.version, actor, area, number)
    before = await _call(merch.version, actor, area, number - 1) if number > 1 else None
    changes = diff(before.document if before is not None else EMPTY, version.document)
    return json_response(
        {
            "version": version.to_dict(),
            "against": before.number if before is not None else None,
            "changes": _changes(changes),
        }
    )


@router.post(
    "/versions/{number}/rollback",
    summary="Publish version {number}'s document again, as a new version (the draft "
    "is left as it is)",
    status_code=201,
    response_model=answers.MerchVersionAnswer,
)
async def rollback(
    request: Request, actor: RollingBack, area: str, number: Number, body: RollbackBody
) -> JsonResponse:
    version = await _call(_merch(request).rollback, actor, area, number, body.note)
    return json_response({"version": version.to_dict()}, status=201)


# --- the document file -----------------------------------------------------------------


@router.get(
    "/export",
    summary="The live (or draft) document as a file to keep in git; the draft's comes with "
    "its revision as the ETag",
    response_model=MerchandisingDocument,
)
async def export(
    request: Request,
    actor: Reader,
    area: str,
    version: Annotated[
        Literal["live", "draft"], Query(description="live (the default) or draft")
    ] = "live",
) -> Response:
    merch = _merch(request)
    headers: dict[str, str] = {}
    if version == "draft":
        draft = await _call(merch.draft, actor, area)
        document = draft.document
        filename = f"merchandising-{area}-draft.json"
        # The revision to send back with the edited file (If-Match).
        headers["ETag"] = f'"{draft.revision}"'
    else:
        live = await _call(merch.live_version, actor, area)
        document = live.document if live is not None else EMPTY
        suffix = f"v{live.number}" if live is not None else "empty"
        filename = f"merchandising-{area}-{suffix}.json"
    return Response(
        document_file(document),
        media_type="application/json",
        headers={**headers, "Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post(
    "/import",
    summary="A document file becomes the draft; the answer lists its changes against live",
    response_model=answers.MerchImported,
)
async def import_document(
    request: Request,
    actor: Importer,
    area: str,
    body: MerchandisingDocument,
    if_match: IfMatch = None,
) -> JsonResponse:
    revision = expected_revision(if_match)
    merch = _merch(request)
    draft = await _call(lambda: merch.save_draft(actor, area, body, revision, imported=True))
    live = await _call(merch.live_version, actor, area)
    changes = diff(live.document if live is not None else EMPTY, draft.document)
    return _draft_answer(draft, {"changes": _changes(changes)})


# --- preview ---------------------------------------------------------------------------


@router.post(
    "/preview",
    summary="Search with the area's live version or its draft, with the explanation",
    response_model=answers.MerchPreview,
)
async def preview(request: Request, actor: Previewer, area: str, body: PreviewBody) -> JsonResponse:
    draft = body.version == "draft"
    rt = runtime(request)
    await _call(rt.services.merchandising.check_preview, actor, area, draft)
    data = body.model_dump(by_alias=True, exclude_unset=True, mode="json", exclude={"version"})
    req = parse_search_request({**data, "area": area})
    response = await _call(lambda: rt.preview.search(req, draft=draft))
    return json_response({"version": body.version, "response": response})
