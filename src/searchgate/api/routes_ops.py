"""Health, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from searchgate.api import metrics
from searchgate.api.deps import json_response, runtime
from searchgate.api.responses import JsonResponse

router = APIRouter(tags=["operations"])

# Readiness tolerates a short backlog: a large upload takes a moment to index.
READY_MAX_LAG = 100_000


@router.get("/healthz", summary="The process is up")
async def healthz() -> JsonResponse:
    return json_response({"status": "ok"})


@router.get("/readyz", summary="Database reachable and index caught up")
async def readyz(request: Request) -> JsonResponse:
    rt = runtime(request)

    def check() -> dict[str, object]:
        with rt.services.db.read() as s:
            s.execute(text("SELECT 1"))
        lag = rt.indexer.lag()
        return {"lag": lag, "error": rt.indexer.last_error}

    try:
        state = await run_in_threadpool(check)
    except Exception as exc:
        return json_response(
            {"status": "unavailable", "database": f"unreachable: {type(exc).__name__}"}, 503
        )
    lag = int(state["lag"])  # type: ignore[call-overload]
    ready = rt.started and rt.indexer.ready and lag <= READY_MAX_LAG and state["error"] is None
    body = {
        "status": "ready" if ready else "not_ready",
        "database": "ok",
        "indexLag": lag,
        "indexedSeq": rt.indexer.applied_seq,
        "indexerError": state["error"],
    }
    return json_response(body, 200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus(request: Request) -> Response:
    rt = runtime(request)

    def refresh() -> None:
        metrics.INDEX_LAG.set(rt.indexer.lag())
        collections = rt.services.catalog.list_collections()
        # Cleared first, so that a deleted collection stops being reported.
        metrics.RECORDS.clear()
        for info in collections:
            metrics.RECORDS.labels(info.name).set(info.record_count)

    await run_in_threadpool(refresh)
    return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
