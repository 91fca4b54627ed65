"""The runner's backend over HTTP: the admin API with a personal token, and the data
plane with the key read from the store (to prove it works). Keys and the token travel
in headers only, never in a URL, and are never part of an error message."""

from __future__ import annotations

import time
from typing import Any

import httpx

from searchgate import __version__
from searchgate.rotation.backend import (
    ApiError,
    CurrentView,
    KeyCheck,
    RotationView,
    StepEvent,
    TrafficView,
)
from searchgate.rotation.common import ROTATION_SYSTEM, Timing
from searchgate.rotation.events import PreconditionFailed
from searchgate.rotation.store_ops import NEEDED

NEEDED_TEXT = " and ".join(sorted(NEEDED))

ADMIN = "/api/v1/admin"
# Reads are retried this often on a dropped connection; writes never are (the runner
# stops, and a re-run resumes from the state the server recorded).
READ_ATTEMPTS = 3


class HttpBackend:
    def __init__(
        self,
        server: str,
        token: str,
        *,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
        holder: str | None = None,
    ) -> None:
        self.where = server.rstrip("/")
        self.holder = holder
        self._admin = {"Authorization": f"Bearer {token}"}
        self._http = httpx.Client(
            base_url=self.where,
            timeout=timeout,
            transport=transport,
            headers={
                "User-Agent": f"searchgate-rotate/{__version__}",
                "X-Searchgate-System": ROTATION_SYSTEM,
            },
        )

    def close(self) -> None:
        self._http.close()

    # --- plumbing ------------------------------------------------------------------

    def _send(
        self, method: str, path: str, *, headers: dict[str, str], json: Any = None, **kw: Any
    ) -> httpx.Response:
        attempts = READ_ATTEMPTS if method == "GET" else 1
        for attempt in range(1, attempts + 1):
            try:
                return self._http.request(method, path, headers=headers, json=json, **kw)
            except httpx.TransportError as exc:
                if attempt == attempts:
                    raise ApiError(
                        0,
                        "server_unreachable",
                        f"{method} {self.where}{path} failed: {type(exc).__name__}; is the "
                        "server up and the URL right? Re-run to resume where it stopped",
                    ) from None
                time.sleep(0.5 * attempt)
        raise AssertionError("unreachable")

    def _admin_call(self, method: str, path: str, json: Any = None, **kw: Any) -> Any:
        r = self._send(method, ADMIN + path, headers=self._admin, json=json, **kw)
        if r.status_code in (401, 403):
            # Running again with the same token fails the same way: a precondition (exit
            # 3), not a server error that a cron job would retry for ever.
            error = _error(r, f"{method} {ADMIN}{path}")
            if r.status_code == 401:
                raise PreconditionFailed(
                    f"the server did not accept the admin token ({error.message}): it is "
                    "unknown, expired or revoked. Create a personal API token holding "
                    f"{NEEDED_TEXT} and run with it"
                )
            raise PreconditionFailed(
                f"the server refused the admin token for {method} {ADMIN}{path} "
                f"({error.message}). A rotation needs a personal API token holding "
                f"{NEEDED_TEXT}; running again with this token cannot succeed"
            )
        if r.status_code >= 400:
            raise _error(r, f"{method} {ADMIN}{path}")
        return r.json()

    # --- the admin API -------------------------------------------------------------

    def permissions(self) -> frozenset[str]:
        body = self._admin_call("GET", "/me")
        return frozenset(body["token"]["permissions"])

    def current(self) -> CurrentView:
        return CurrentView.from_dict(self._admin_call("GET", "/rotations/current"))

    def get(self, rotation_id: str) -> RotationView:
        return RotationView.from_dict(
            self._admin_call("GET", f"/rotations/{rotation_id}")["rotation"]
        )

    def start(
        self, kind: str, location: str, timing: Timing, lease: str | None, lease_seconds: int
    ) -> tuple[RotationView, str]:
        body = self._admin_call(
            "POST",
            "/rotations",
            {
                "store": {"kind": kind, "location": location},
                "options": timing.to_dict(),
                "lease": lease,
                "leaseSeconds": lease_seconds,
                "holder": self.holder,
            },
        )
        return RotationView.from_dict(body["rotation"]), str(body["lease"])

    def create_key(
        self, rotation_id: str, lease: str, replace_unused: str | None
    ) -> tuple[RotationView, str]:
        body = self._admin_call(
            "POST",
            f"/rotations/{rotation_id}/create-key",
            {"lease": lease, "replaceUnused": replace_unused},
        )
        return RotationView.from_dict(body["rotation"]), str(body["secret"])

    def complete_step(
        self, rotation_id: str, lease: str, step: str, data: dict[str, Any]
    ) -> RotationView:
        body = self._admin_call(
            "POST", f"/rotations/{rotation_id}/steps", {"lease": lease, "step": step, "data": data}
        )
        return RotationView.from_dict(body["rotation"])

    def fail_step(self, rotation_id: str, lease: str, step: str, message: str) -> RotationView:
        body = self._admin_call(
            "POST",
            f"/rotations/{rotation_id}/steps",
            {"lease": lease, "step": step, "error": message},
        )
        return RotationView.from_dict(body["rotation"])

    def abort(
        self, rotation_id: str, lease: str, reason: str | None, restored: str | None
    ) -> RotationView:
        body = self._admin_call(
            "POST",
            f"/rotations/{rotation_id}/abort",
            {"lease": lease, "reason": reason, "storeVersionRestored": restored},
        )
        return RotationView.from_dict(body["rotation"])

    def finish(self, rotation_id: str, lease: str) -> RotationView:
        body = self._admin_call("POST", f"/rotations/{rotation_id}/finish", {"lease": lease})
        return RotationView.from_dict(body["rotation"])

    def traffic(self, rotation_id: str) -> TrafficView:
        return TrafficView.from_dict(self._admin_call("GET", f"/rotations/{rotation_id}/traffic"))

    def disable_key(self, key_id: str, reason: str) -> None:
        self._admin_call("POST", f"/keys/{key_id}/disable", {"reason": reason})

    def enable_key(self, key_id: str) -> None:
        self._admin_call("POST", f"/keys/{key_id}/enable")

    def step_events(self, rotation_id: str) -> list[StepEvent]:
        body = self._admin_call(
            "GET",
            "/audit",
            params={"action": "admin:rotation:step", "target": rotation_id, "limit": "500"},
        )
        return [
            StepEvent(
                seq=int(e["seq"]),
                step=str((e.get("details") or {}).get("step", "")),
                outcome=str(e["outcome"]),
            )
            for e in body["events"]
        ]

    # --- the data plane, with a client key -----------------------------------------

    def _key_headers(self, secret: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}

    def check_key(self, secret: str) -> KeyCheck:
        r = self._send("GET", "/api/v1/keys/self", headers=self._key_headers(secret))
        if r.status_code == 200:
            body = r.json()
            return KeyCheck(200, str(body["id"]), None, frozenset(body.get("scopes") or ()))
        if r.status_code in (401, 403):
            return KeyCheck(r.status_code, None, _error(r, "GET /api/v1/keys/self").code)
        raise _error(r, "GET /api/v1/keys/self")

    def readable_collections(self, secret: str) -> list[str]:
        r = self._send("GET", "/api/v1/collections", headers=self._key_headers(secret))
        if r.status_code != 200:
            raise _error(r, "GET /api/v1/collections with the new key")
        return [str(c["name"]) for c in r.json()["collections"]]

    def search_status(self, secret: str, collection: str) -> int:
        r = self._send(
            "POST",
            "/api/v1/search",
            headers=self._key_headers(secret),
            json={"collection": collection, "query": "", "pageSize": 1},
        )
        return r.status_code


def _error(r: httpx.Response, what: str) -> ApiError:
    try:
        err = r.json().get("error") or {}
    except ValueError:
        err = {}
    code = str(err.get("code") or f"http_{r.status_code}")
    message = str(err.get("message") or f"{what} answered {r.status_code}")
    details = {k: v for k, v in err.items() if k not in ("code", "message", "requestId", "field")}
    return ApiError(r.status_code, code, message, field=err.get("field"), **details)
