"""The runner's backend in-process: the services of this server, acting as ``actor``
(the signed-in person of the console's wizard, or a test). The checks a client would
make over HTTP (which key is this, may it search) are made with the same services the
data plane uses: key verification, the key's restrictions and the search service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from searchgate.audit import Action, AuditFilter
from searchgate.clock import utc_now
from searchgate.errors import SearchgateError
from searchgate.keys.info import KeyState
from searchgate.keys.scopes import Scope
from searchgate.permissions import Actor
from searchgate.rotation.backend import (
    CurrentView,
    KeyCheck,
    RotationView,
    StepEvent,
    TrafficView,
)
from searchgate.rotation.common import Timing
from searchgate.rotation.service import RotationService
from searchgate.search.request import parse_search_request

if TYPE_CHECKING:
    from searchgate.runtime import Services
    from searchgate.search.service import SearchService

# What the data plane answers for a key that is not usable (keys/check.py).
_REFUSED = {
    KeyState.DELETED: "invalid_key",
    KeyState.DISABLED: "key_disabled",
    KeyState.EXPIRED: "key_expired",
}


class LocalBackend:
    where = "in-process"

    def __init__(self, services: Services, search: SearchService, actor: Actor) -> None:
        self.services = services
        self.search = search
        self.actor = actor
        self.rotations: RotationService = services.rotations

    def _view(self, info: Any) -> RotationView:
        return RotationView.from_dict(info.to_dict(utc_now()))

    # --- the rotation ----------------------------------------------------------------

    def permissions(self) -> frozenset[str]:
        return frozenset(p.value for p in self.actor.effective_permissions)

    def current(self) -> CurrentView:
        o = self.rotations.overview(self.actor)
        now = utc_now()
        return CurrentView.from_dict(
            {
                "rotation": o.rotation.to_dict(now) if o.rotation else None,
                "primary": o.primary.to_dict(now) if o.primary else None,
                "maxKeyAgeDays": o.max_key_age_days,
                "lastFinished": o.last_finished.to_dict(now) if o.last_finished else None,
                "deletionCheckSeconds": o.deletion_check_seconds,
            }
        )

    def get(self, rotation_id: str) -> RotationView:
        return self._view(self.rotations.get(self.actor, rotation_id))

    def start(
        self, kind: str, location: str, timing: Timing, lease: str | None, lease_seconds: int
    ) -> tuple[RotationView, str]:
        started = self.rotations.start(
            self.actor, kind, location, timing, lease=lease, lease_seconds=lease_seconds
        )
        return self._view(started.info), started.lease

    def create_key(
        self, rotation_id: str, lease: str, replace_unused: str | None
    ) -> tuple[RotationView, str]:
        info, created = self.rotations.create_key(self.actor, rotation_id, lease, replace_unused)
        return self._view(info), created.secret

    def complete_step(
        self, rotation_id: str, lease: str, step: str, data: dict[str, Any]
    ) -> RotationView:
        return self._view(self.rotations.complete_step(self.actor, rotation_id, lease, step, data))

    def fail_step(self, rotation_id: str, lease: str, step: str, message: str) -> RotationView:
        return self._view(self.rotations.fail_step(self.actor, rotation_id, lease, step, message))

    def abort(
        self, rotation_id: str, lease: str, reason: str | None, restored: str | None
    ) -> RotationView:
        return self._view(self.rotations.abort(self.actor, rotation_id, lease, reason, restored))

    def finish(self, rotation_id: str, lease: str) -> RotationView:
        return self._view(self.rotations.finish(self.actor, rotation_id, lease))

    def traffic(self, rotation_id: str) -> TrafficView:
        t = self.rotations.traffic(self.actor, rotation_id)
        return TrafficView.from_dict(
            {
                "oldKey": [u.to_dict() for u in t.old],
                "newKey": [u.to_dict() for u in t.new],
                "now": t.now.isoformat(),
            }
        )

    # --- keys ------------------------------------------------------------------------

    def disable_key(self, key_id: str, reason: str) -> None:
        self.services.keys.disable(self.actor, key_id, reason)

    def enable_key(self, key_id: str) -> None:
        self.services.keys.enable(self.actor, key_id)

    def step_events(self, rotation_id: str) -> list[StepEvent]:
        page = self.services.audit.query(
            self.actor,
            AuditFilter(action=Action.ROTATION_STEP.value, target=rotation_id),
            limit=500,
        )
        return [
            StepEvent(seq=e.seq, step=str(e.details.get("step", "")), outcome=e.outcome)
            for e in page.events
        ]

    # --- what the data plane would answer -------------------------------------------

    def check_key(self, secret: str) -> KeyCheck:
        info = self.services.keys.verify(secret)
        if info is None:
            return KeyCheck(401, None, "invalid_key")
        state = info.state(utc_now())
        if state in _REFUSED:
            return KeyCheck(401, None, _REFUSED[state])
        return KeyCheck(200, info.id, None, frozenset(s.value for s in info.scopes))

    def readable_collections(self, secret: str) -> list[str]:
        info = self.services.keys.verify(secret)
        if info is None or not info.usable(utc_now()) or Scope.SEARCH not in info.scopes:
            raise SearchgateError("the key may not list collections (it needs the search scope)")
        return [
            c.name
            for c in self.services.catalog.list_collections()
            if info.restrictions.allows_collection(c.name)
        ]

    def search_status(self, secret: str, collection: str) -> int:
        info = self.services.keys.verify(secret)
        if info is None or not info.usable(utc_now()):
            return 401
        if Scope.SEARCH not in info.scopes or not info.restrictions.allows_collection(collection):
            return 403
        try:
            self.search.search(
                parse_search_request({"collection": collection, "query": "", "pageSize": 1})
            )
        except SearchgateError:
            return 400
        return 200
