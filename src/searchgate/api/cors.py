"""CORS for the browser-facing data plane (search, refinements, SAYT).

Which pages may use a key or a browser token is decided by the server (the origin
rules in api/auth.py answer 403 otherwise); these headers only let a browser read
the answers. No cookie is ever involved, so credentials mode stays off.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BROWSER_PATHS = ("/api/v1/search", "/api/v1/sayt/", "/api/v1/keys/self")
ALLOW_HEADERS = b"authorization, content-type, x-client-key, x-searchgate-system"


class CorsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(BROWSER_PATHS):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        origin = headers.get(b"origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [
                        (b"access-control-allow-origin", origin),
                        (b"access-control-allow-methods", b"GET, POST"),
                        (b"access-control-allow-headers", ALLOW_HEADERS),
                        (b"access-control-max-age", b"600"),
                        (b"vary", b"Origin"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                state: dict[str, Any] = scope.get("state", {})
                status = int(message["status"])
                # Allowed origins read answers; any page may read why it was refused.
                if state.get("cors_origin") is not None or status >= 400:
                    existing = [
                        (k, v)
                        for k, v in message.get("headers", [])
                        if k.lower() != b"access-control-allow-origin"
                    ]
                    message["headers"] = [
                        *existing,
                        (b"access-control-allow-origin", origin),
                        (b"vary", b"Origin"),
                    ]
            await send(message)

        await self.app(scope, receive, send_with_cors)
