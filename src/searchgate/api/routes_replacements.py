"""Staged replacements: /api/v1/collections/{name}/replacements/...

A whole catalog replaced atomically in as many requests as it takes: start, send the
records in batches (the records API's formats, validation and per-request limits),
commit. The key goes in a header (the records' scope); the bodies are the records
API's, read by the same parser.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from searchgate.api import answers
from searchgate.api.auth import Caller, authenticate
from searchgate.api.deps import json_response, runtime
from searchgate.api.errors import ERROR_RESPONSES
from searchgate.api.responses import JsonResponse
from searchgate.api.routes_collections import RECORDS_BODY, wait_if_asked
from searchgate.catalog.ingest import parse_records, sniff_format
from searchgate.catalog.replacements import ReplacementInfo
from searchgate.keys.scopes import Scope

router = APIRouter(tags=["collections"], responses=ERROR_RESPONSES)

BASE = "/api/v1/collections/{name}/replacements"


def _caller(request: Request, name: str) -> Caller:
    return authenticate(
        runtime(request).services.keys, request, Scope.RECORDS_WRITE, collection=name
    )


def _info(info: ReplacementInfo) -> dict[str, Any]:
    return info.to_dict()


@router.post(
    BASE,
    summary="Start a staged replacement of the collection's records",
    response_model=answers.Replacement,
    status_code=201,
)
async def start_replacement(request: Request, name: str) -> JsonResponse:
    rt = runtime(request)
    caller = _caller(request, name)
    info = await run_in_threadpool(lambda: rt.services.replacements.start(name, actor=caller.actor))
    return json_response(_info(info), status=201)


@router.get(
    BASE + "/{replacement_id}",
    summary="A staged replacement: records staged so far and when it expires",
    response_model=answers.Replacement,
)
async def get_replacement(request: Request, name: str, replacement_id: str) -> JsonResponse:
    rt = runtime(request)
    _caller(request, name)
    info = await run_in_threadpool(rt.services.replacements.get, name, replacement_id)
    return json_response(_info(info))


@router.post(
    BASE + "/{replacement_id}/records",
    summary="Stage a batch of records (JSON array, NDJSON or CSV); staged again by id, "
    "a batch sent twice counts once",
    openapi_extra=RECORDS_BODY,
    response_model=answers.StagedBatch,
)
async def stage_records(request: Request, name: str, replacement_id: str) -> JsonResponse:
    rt = runtime(request)
    caller = _caller(request, name)
    data = await request.body()
    fmt = sniff_format(request.headers.get("content-type"), data)
    parsed = await run_in_threadpool(parse_records, data, fmt)
    batch = await run_in_threadpool(
        lambda: rt.services.replacements.stage(
            name,
            replacement_id,
            parsed.records,
            positions=parsed.positions,
            position_kind=parsed.position_kind,
            unparsable=parsed.unparsable,
            actor=caller.actor,
        )
    )
    return json_response(
        {
            "replacement": _info(batch.replacement),
            "staged": batch.staged,
            "invalidRecordCount": batch.invalid_count,
            "invalidRecordDetails": [i.to_dict() for i in batch.invalid],
        }
    )


@router.post(
    BASE + "/{replacement_id}/commit",
    summary="Swap the staged records in for the collection's, atomically",
    response_model=answers.ReplacementCommitted,
)
async def commit_replacement(
    request: Request, name: str, replacement_id: str, wait: bool = False
) -> JsonResponse:
    rt = runtime(request)
    caller = _caller(request, name)
    done = await run_in_threadpool(
        lambda: rt.services.replacements.commit(name, replacement_id, actor=caller.actor)
    )
    body: dict[str, Any] = {
        "collection": done.collection,
        "replacementId": done.replacement_id,
        "records": done.records,
        "replaced": done.replaced,
        "createdCollection": done.created_collection,
        "changeSeq": done.seq,
    }
    searchable = await wait_if_asked(rt, done.seq, wait)
    if searchable is not None:
        body["searchable"] = searchable
    return json_response(body)


@router.delete(
    BASE + "/{replacement_id}",
    summary="Abort a staged replacement: its staged records go, the collection is untouched",
    response_model=answers.ReplacementAborted,
)
async def abort_replacement(request: Request, name: str, replacement_id: str) -> JsonResponse:
    rt = runtime(request)
    caller = _caller(request, name)
    removed = await run_in_threadpool(
        lambda: rt.services.replacements.abort(name, replacement_id, actor=caller.actor)
    )
    return json_response(
        {
            "collection": name,
            "replacementId": replacement_id,
            "aborted": True,
            "stagedRecordsRemoved": removed,
        }
    )
