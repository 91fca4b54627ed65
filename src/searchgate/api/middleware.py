"""One pure-ASGI middleware: request id, body size limit, metrics and the access log."""

from __future__ import annotations

import inspect
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from searchgate.api import metrics
from searchgate.api.errors import INTERNAL_ERROR
from searchgate.keys.usage import UNKNOWN_SYSTEM, UsageTracker, outcome_for
from searchgate.logs import AccessRecord

log = logging.getLogger("searchgate.access")


class BodyTooLarge(Exception):
    pass


def _too_large(limit: int, request_id: str) -> bytes:
    return orjson.dumps(
        {
            "error": {
                "code": "payload_too_large",
                "message": f"request body is larger than {limit} bytes "
                "(SEARCHGATE_LIMIT_MAX_BODY_BYTES); split it into several requests",
                "limit": limit,
                "requestId": request_id,
            }
        }
    )


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        usage: Callable[[], UsageTracker | None] | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        # A getter: the tracker belongs to the runtime, which the lifespan builds
        # after the middleware exists.
        self.usage = usage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # A correlation id, not a secret: the module's generator spares each request the
        # system call that ``secrets`` makes.
        request_id = f"{random.getrandbits(64):016x}"
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        status = 500
        started = False
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        # More digits than any limit has is too large without reading them all (int()
        # refuses more than 4,300 of them).
        if (
            declared is not None
            and declared.isdigit()
            and (len(declared) > 18 or int(declared) > self.max_body)
        ):
            scope["state"]["error_code"] = "payload_too_large"
            await self._reject(send, request_id)
            self._done(scope, 413, start, request_id)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                scope["state"]["error_code"] = "payload_too_large"
                await self._reject(send, request_id)
            status = 413
        except Exception as exc:
            if started:
                # Half an answer is out: only closing the connection can say it failed.
                scope["state"]["error"] = exc
                raise
            # Answered here rather than by the framework's outermost layer, which
            # re-raises to the server after answering, and the server then closes the
            # connection: a client's next request on it would fail too.
            await self._answer_failure(scope, receive, tracking_send, exc)
        finally:
            self._done(scope, status, start, request_id)

    async def _answer_failure(
        self, scope: Scope, receive: Receive, send: Send, exc: Exception
    ) -> None:
        """The application's own answer to an exception no route handled (the data
        plane's JSON 500, the console's error page), through its handler for them."""
        handlers = getattr(scope.get("app"), "exception_handlers", {})
        handler = handlers.get(Exception) or handlers.get(500)
        request = Request(scope, receive)
        response: Any = None
        if handler is not None:
            try:
                if inspect.iscoroutinefunction(handler):
                    response = await handler(request, exc)
                else:
                    response = await run_in_threadpool(handler, request, exc)
            except Exception:
                rid = scope["state"]["request_id"]
                log.exception("the error handler failed", extra={"fields": {"request_id": rid}})
        if response is None:
            scope["state"]["error"] = exc
            scope["state"]["error_code"] = "internal_error"
            body = {"error": {"code": "internal_error", "message": INTERNAL_ERROR}}
            body["error"]["requestId"] = scope["state"]["request_id"]
            response = Response(orjson.dumps(body), status_code=500, media_type="application/json")
        await response(scope, receive, send)

    async def _reject(self, send: Send, request_id: str) -> None:
        body = _too_large(self.max_body, request_id)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _done(self, scope: Scope, status: int, start: float, request_id: str) -> None:
        elapsed = time.perf_counter() - start
        route = scope.get("route")
        path_template = getattr(route, "path", None) or "unmatched"
        metrics.observe(scope["method"], path_template, status, elapsed)
        state: dict[str, Any] = scope.get("state", {})
        fields: dict[str, Any] = {
            "request_id": request_id,
            "method": scope["method"],
            "route": path_template,
            "status": status,
            "ms": round(elapsed * 1000, 2),
        }
        if "key_id" in state:
            fields["key_id"] = state["key_id"]
            tracker = self.usage() if self.usage is not None else None
            if tracker is not None:
                client = scope.get("client")
                tracker.record(
                    state["key_id"],
                    state.get("key_system") or UNKNOWN_SYSTEM,
                    outcome_for(status, state.get("key_outcome_hint")),
                    client[0] if client else None,
                )
        code = state.get("error_code")
        if code is not None and status >= 400:
            fields["error"] = code
        error = state.get("error")
        if status >= 500 and (error is not None or code is not None):
            # One record: the request id, the code answered and the exception together.
            # (A 503 of /readyz is an answer, not a failure: it has neither.)
            log.error("request failed", exc_info=error, extra={"fields": fields})
        elif log.isEnabledFor(logging.INFO):
            log.handle(AccessRecord(log.name, fields))
