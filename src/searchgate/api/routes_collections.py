"""Collections and records: /api/v1/collections/..."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from searchgate.api import answers
from searchgate.api.auth import Caller, authenticate, presented_key
from searchgate.api.bodies import documented_body, inline_schema
from searchgate.api.deps import body_client_key, json_body, json_response, runtime
from searchgate.api.errors import ERROR_RESPONSES
from searchgate.api.responses import JsonResponse
from searchgate.catalog.ingest import parse_records, sniff_format
from searchgate.catalog.service import WriteResult, parse_settings
from searchgate.catalog.settings import CollectionSettings
from searchgate.errors import InvalidInput, NotFound, Unavailable
from searchgate.keys.scopes import Scope
from searchgate.runtime import Runtime

router = APIRouter(tags=["collections"], responses=ERROR_RESPONSES)

# The bodies below keep their own readers: the protocol's shapes (an object or its
# wrapper, a list or its wrapper, NDJSON) are told apart before anything is validated,
# records stream through the ingest parser, and settings errors are the catalog's. These
# models only describe them in /openapi.json.
CLIENT_KEY = "the client key, when no header carries one (the protocol's way)"


class SettingsWithKey(CollectionSettings):
    client_key: str | None = Field(default=None, alias="clientKey", description=CLIENT_KEY)


class WrappedSettings(BaseModel):
    settings: CollectionSettings
    client_key: str | None = Field(default=None, alias="clientKey", description=CLIENT_KEY)


Record = Annotated[
    dict[str, Any], Field(description="a record: its id field (idField) and any others")
]


class WrappedRecords(BaseModel):
    records: list[Record]
    client_key: str | None = Field(default=None, alias="clientKey", description=CLIENT_KEY)


RecordId = Annotated[str | int, Field(description="a record id")]


class WrappedIds(BaseModel):
    ids: list[RecordId]
    client_key: str | None = Field(default=None, alias="clientKey", description=CLIENT_KEY)


NDJSON = {"type": "string", "description": "NDJSON: one record object per line"}
RECORDS_BODY = documented_body(inline_schema(list[Record] | WrappedRecords))
RECORDS_BODY["requestBody"]["content"]["application/x-ndjson"] = {"schema": NDJSON}


def write_summary(result: WriteResult, searchable: bool | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "collection": result.collection,
        "upserted": result.upserted,
        "deleted": result.deleted,
        "invalidRecordCount": result.invalid_count,
        "invalidRecordDetails": [i.to_dict() for i in result.invalid],
        "createdCollection": result.created_collection,
        "changeSeq": result.seq,
    }
    if searchable is not None:
        body["searchable"] = searchable
    return body


async def wait_if_asked(rt: Runtime, seq: int, wait: bool) -> bool | None:
    if not wait:
        return None
    ok = await run_in_threadpool(rt.wait_searchable, seq, rt.services.settings.wait_timeout_seconds)
    if not ok:
        raise Unavailable(
            "the records are stored (committed) but were not searchable within "
            f"{rt.services.settings.wait_timeout_seconds:.0f} s; they will be shortly",
            changeSeq=seq,
        )
    return True


def header_caller(request: Request, scope: Scope, collection: str) -> Caller | None:
    """The caller when a header carries the key, checked before the body is read; None
    when the key can only be the body's ``clientKey`` (the protocol's way)."""
    if presented_key(request) is None:
        return None
    return authenticate(runtime(request).services.keys, request, scope, collection=collection)


def body_caller(request: Request, scope: Scope, collection: str, body: Any) -> Caller:
    return authenticate(
        runtime(request).services.keys, request, scope, body_client_key(body), collection
    )


@router.get(
    "/api/v1/collections",
    summary="List collections with record counts",
    response_model=answers.CollectionsAnswer,
)
async def list_collections(request: Request) -> JsonResponse:
    rt = runtime(request)
    caller = authenticate(rt.services.keys, request, Scope.SEARCH)
    infos = await run_in_threadpool(rt.services.catalog.list_collections)
    # A key limited to some collections sees only those.
    visible = [i for i in infos if caller.may_use(i.name)]
    return json_response({"collections": [i.to_dict() for i in visible]})


@router.get(
    "/api/v1/collections/{name}",
    summary="A collection's settings and record count",
    response_model=answers.Collection,
)
async def get_collection(request: Request, name: str) -> JsonResponse:
    rt = runtime(request)
    authenticate(rt.services.keys, request, Scope.SEARCH, collection=name)
    info = await run_in_threadpool(rt.services.catalog.get_collection, name)
    return json_response(info.to_dict())


@router.put(
    "/api/v1/collections/{name}",
    summary="Create a collection or replace its settings (the index is rebuilt)",
    openapi_extra=documented_body(inline_schema(SettingsWithKey | WrappedSettings)),
    response_model=answers.CollectionWritten,
)
async def put_collection(request: Request, name: str, wait: bool = False) -> JsonResponse:
    rt = runtime(request)
    caller = header_caller(request, Scope.COLLECTIONS_WRITE, name)
    body = await json_body(request)
    caller = caller or body_caller(request, Scope.COLLECTIONS_WRITE, name, body)
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "clientKey"}
    raw = body.get("settings", body) if isinstance(body, dict) else body
    settings = parse_settings(raw)
    info, created = await run_in_threadpool(
        lambda: rt.services.catalog.put_settings(name, settings, actor=caller.actor)
    )
    # Any position at or after the rebuild's own will do: the current one.
    out = info.to_dict()
    if wait:
        out["searchable"] = await wait_if_asked(
            rt, await run_in_threadpool(rt.services.catalog.current_seq), wait
        )
    return json_response(out, status=201 if created else 200)


@router.delete(
    "/api/v1/collections/{name}",
    summary="Delete a collection with its records, index and settings (irreversible)",
    response_model=answers.CollectionGone,
)
async def delete_collection(request: Request, name: str, wait: bool = False) -> JsonResponse:
    rt = runtime(request)
    caller = authenticate(rt.services.keys, request, Scope.COLLECTIONS_DELETE, collection=name)
    removed = await run_in_threadpool(
        lambda: rt.services.catalog.delete_collection(name, actor=caller.actor)
    )
    body: dict[str, Any] = {"collection": name, "deleted": True, "recordsDeleted": removed}
    if wait:
        body["searchable"] = await wait_if_asked(
            rt, await run_in_threadpool(rt.services.catalog.current_seq), wait
        )
    return json_response(body)


@router.post(
    "/api/v1/collections/{name}/records",
    summary="Upsert records (JSON array or NDJSON); mode=replace swaps the whole catalog",
    openapi_extra=RECORDS_BODY,
    response_model=answers.WriteSummary,
)
async def write_records(
    request: Request,
    name: str,
    mode: str = Query("upsert", pattern="^(upsert|replace)$"),
    wait: bool = False,
    failOnFirstError: bool = False,
) -> JsonResponse:
    rt = runtime(request)
    caller = header_caller(request, Scope.RECORDS_WRITE, name)
    data = await request.body()
    fmt = sniff_format(request.headers.get("content-type"), data)
    # CSV carries no key: without a header key, the 401 comes before the 400.
    parsed = None if fmt == "csv" else await run_in_threadpool(parse_records, data, fmt)
    envelope = parsed.envelope if parsed is not None else None
    caller = caller or body_caller(request, Scope.RECORDS_WRITE, name, envelope)
    if parsed is None:
        raise InvalidInput(
            "send a JSON array or NDJSON here (CSV goes to /data/v1/upload/stream)", field="body"
        )
    result = await run_in_threadpool(
        lambda: rt.services.catalog.write_records(
            name,
            parsed.records,
            replace=mode == "replace",
            fail_on_first_error=failOnFirstError,
            positions=parsed.positions,
            position_kind=parsed.position_kind,
            unparsable=parsed.unparsable,
            actor=caller.actor,
        )
    )
    searchable = await wait_if_asked(rt, result.seq, wait)
    return json_response(write_summary(result, searchable))


# ``:path`` so that ids holding a slash (SKUs like "AB/12") can be addressed too.
@router.get(
    "/api/v1/collections/{name}/records/{record_id:path}",
    summary="One record by id",
    response_model=Record,
)
async def get_record(request: Request, name: str, record_id: str) -> JsonResponse:
    rt = runtime(request)
    authenticate(rt.services.keys, request, Scope.SEARCH, collection=name)
    record = await run_in_threadpool(rt.services.catalog.get_record, name, record_id)
    return json_response(record)


@router.delete(
    "/api/v1/collections/{name}/records/{record_id:path}",
    summary="Delete one record",
    response_model=answers.WriteSummary,
)
async def delete_record(
    request: Request, name: str, record_id: str, wait: bool = False
) -> JsonResponse:
    rt = runtime(request)
    caller = authenticate(rt.services.keys, request, Scope.RECORDS_WRITE, collection=name)
    result = await run_in_threadpool(
        lambda: rt.services.catalog.delete_records(name, [record_id], actor=caller.actor)
    )
    if result.deleted == 0:
        raise NotFound(f"no record with id {record_id!r} in {name!r}", field="id")
    searchable = await wait_if_asked(rt, result.seq, wait)
    return json_response(write_summary(result, searchable))


@router.post(
    "/api/v1/collections/{name}/records/delete",
    summary="Delete records by id",
    openapi_extra=documented_body(inline_schema(list[RecordId] | WrappedIds)),
    response_model=answers.WriteSummary,
)
async def delete_records(request: Request, name: str, wait: bool = False) -> JsonResponse:
    rt = runtime(request)
    caller = header_caller(request, Scope.RECORDS_WRITE, name)
    body = await json_body(request)
    caller = caller or body_caller(request, Scope.RECORDS_WRITE, name, body)
    ids = body.get("ids") if isinstance(body, dict) else body
    if not isinstance(ids, list) or not all(isinstance(i, str | int) for i in ids):
        raise InvalidInput('expected {"ids": [...]} with string or integer ids', field="ids")
    result = await run_in_threadpool(
        lambda: rt.services.catalog.delete_records(name, [str(i) for i in ids], actor=caller.actor)
    )
    searchable = await wait_if_asked(rt, result.seq, wait)
    return json_response(write_summary(result, searchable))
