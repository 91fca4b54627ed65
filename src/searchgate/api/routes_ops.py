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
from searchgate.storage import probe

router = APIRouter(tags=["operations"])

# Readiness tolerates a short backlog: a large upload takes a moment to index.
READY_MAX_LAG = 100_000


@router.get("/healthz", summary="The process is up")
async def healthz() -> JsonResponse:
    return json_response({"status": "ok"})


@router.get("/readyz", summary="Database reachable, data writable and index caught up")
async def readyz(request: Request) -> JsonResponse:
    rt = runtime(request)

    def check() -> dict[str, object]:
        with rt.services.db.read() as s:
            s.execute(text("SELECT 1"))
        lag = rt.indexer.lag()
        fault = rt.services.db.storage.fault
        if fault is None:
            try:
                fault = probe(rt.services.settings.data_dir)
            except OSError as exc:
                return {"lag": lag, "error": rt.indexer.last_error, "storage": str(exc)}
        return {
            "lag": lag,
            "error": rt.indexer.last_error,
            "storage": None if fault is None else fault.message,
        }

    try:
        state = await run_in_threadpool(check)
    except Exception as exc:
        return json_response(
            {
                "status": "unavailable",
                "database": f"unreachable: {type(exc).__name__}",
                "reason": "the database does not answer",
            },
            503,
        )
    lag = int(state["lag"])  # type: ignore[call-overload]
    reasons = []
    if not (rt.started and rt.indexer.ready):
        reasons.append("the index is being brought up to date after the start")
    if lag > READY_MAX_LAG:
        reasons.append(f"the index is {lag} changes behind")
    if state["error"] is not None:
        reasons.append(f"indexing failed ({state['error']}); it is retried by itself")
    if state["storage"] is not None:
        reasons.append(f"storage: {state['storage']}")
    if not rt.revocations.fresh():
        # Client keys are refused meanwhile (revocations_unconfirmed): send them elsewhere.
        reasons.append("key revocations are not confirmed with the database")
    body: dict[str, object] = {
        "status": "not_ready" if reasons else "ready",
        "database": "ok",
        "storage": state["storage"] or "ok",
        "indexLag": lag,
        "indexedSeq": rt.indexer.applied_seq,
        "indexerError": state["error"],
    }
    if reasons:
        body["reason"] = "; ".join(reasons)
    return json_response(body, 503 if reasons else 200)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus(request: Request) -> Response:
    rt = runtime(request)

    def refresh() -> None:
        metrics.INDEX_LAG.set(rt.indexer.lag())
        for state, count in rt.search_pool.stats().items():
            metrics.SEARCHES.labels(state).set(count)
        collections = rt.services.catalog.list_collections()
        # Cleared first, so that a deleted collection stops being reported.
        metrics.RECORDS.clear()
        for info in collections:
            metrics.RECORDS.labels(info.name).set(info.record_count)

    await run_in_threadpool(refresh)
    return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
