"""POST /data/v1/upload/stream: the protocol's multipart upload (config + data parts)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BeforeValidator
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request

from searchgate.api import answers
from searchgate.api.auth import authenticate, authorize_presented, presented_key, system_of
from searchgate.api.deps import json_response, runtime
from searchgate.api.errors import ERROR_RESPONSES
from searchgate.api.query import flag
from searchgate.api.responses import JsonResponse
from searchgate.api.routes_collections import wait_if_asked, write_summary
from searchgate.catalog.ingest import parse_records, sniff_format
from searchgate.errors import InvalidInput
from searchgate.keys.check import check_collection
from searchgate.keys.scopes import Scope

router = APIRouter(tags=["upload"], responses=ERROR_RESPONSES)

CONFIG_KEYS = {"clientKey", "collection", "failOnFirstError", "mode", "format", "wait", "system"}
TRUE = {"true", "1", "yes", "on"}


def parse_config(text: str) -> dict[str, str]:
    """``key: value`` or ``key=value`` lines; blank lines and ``#`` comments are skipped."""
    out: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        sep = min((i for i in (line.find(":"), line.find("=")) if i > 0), default=-1)
        if sep < 0:
            raise InvalidInput(f"config line {n}: expected 'key: value'", field="config")
        key, value = line[:sep].strip(), line[sep + 1 :].strip()
        if key not in CONFIG_KEYS:
            raise InvalidInput(
                f"config line {n}: unknown key {key!r} (known: {', '.join(sorted(CONFIG_KEYS))})",
                field="config",
            )
        out[key] = value
    return out


async def _part(form_value: UploadFile | str | None) -> tuple[bytes, str | None]:
    if form_value is None:
        return b"", None
    if isinstance(form_value, str):
        return form_value.encode(), None
    return await form_value.read(), form_value.content_type


@router.post(
    "/data/v1/upload/stream",
    summary="Upload records as multipart: a 'config' part and a 'data' part",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "config": {"type": "string"},
                            "data": {"type": "string", "format": "binary"},
                        },
                        "required": ["config", "data"],
                    }
                }
            },
        }
    },
    response_model=answers.UploadSummary,
)
async def upload_stream(
    request: Request,
    wait: Annotated[
        bool,
        Query(description="true: answer once the records are searchable (or 'wait' in config)"),
        BeforeValidator(flag),
    ] = False,
) -> JsonResponse:
    rt = runtime(request)
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise InvalidInput(
            "expected multipart/form-data with a 'config' part and a 'data' part", field="body"
        )
    # A key in a header is checked before a byte of the body is read; its collection
    # right once the config part names the collection.
    presented = presented_key(request)
    early = (
        authorize_presented(rt.services.keys, request, presented, Scope.RECORDS_WRITE)
        if presented is not None
        else None
    )
    async with request.form(
        max_files=2, max_fields=4, max_part_size=rt.services.settings.limits.max_body_bytes
    ) as form:
        for part in ("config", "data"):
            if form.get(part) is None:
                raise InvalidInput(
                    f"the multipart body has no {part!r} part (both 'config' and 'data' "
                    "are required)",
                    field=part,
                )
        config_bytes, _ = await _part(form.get("config"))
        data, data_type = await _part(form.get("data"))
    try:
        config = parse_config(config_bytes.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidInput("the config part must be UTF-8 text", field="config") from None
    collection = config.get("collection") or "default"
    if early is not None:
        check_collection(early, collection)
        # For upload tools that cannot send X-Searchgate-System: told apart in usage.
        caller = replace(early, system=system_of(request, config.get("system")))
        request.state.key_system = caller.system
    else:
        caller = authenticate(
            rt.services.keys,
            request,
            Scope.RECORDS_WRITE,
            config.get("clientKey"),
            collection=collection,
            system=config.get("system"),
        )
    mode = config.get("mode", "upsert")
    if mode not in ("upsert", "replace"):
        raise InvalidInput("config mode is 'upsert' or 'replace'", field="config.mode")
    fmt = config.get("format") or sniff_format(data_type, data)
    parsed = await run_in_threadpool(parse_records, data, fmt)
    result = await run_in_threadpool(
        lambda: rt.services.catalog.write_records(
            collection,
            parsed.records,
            replace=mode == "replace",
            fail_on_first_error=config.get("failOnFirstError", "").lower() in TRUE,
            positions=parsed.positions,
            position_kind=parsed.position_kind,
            unparsable=parsed.unparsable,
            actor=caller.actor,
        )
    )
    searchable = await wait_if_asked(rt, result.seq, wait or config.get("wait", "").lower() in TRUE)
    body = write_summary(result, searchable)
    body["status"] = "OK"
    body["recordCount"] = result.upserted
    return json_response(body)
