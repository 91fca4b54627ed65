"""Areas: named configurations (Production, Staging, ...) whose metadata is returned
to storefronts as ``siteParams``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from searchgate.audit import AuditLog
from searchgate.audit.tags import Action
from searchgate.authorizer import Authorizer
from searchgate.catalog.models import AreaRow
from searchgate.catalog.validation import COLLECTION_NAME
from searchgate.db import Database
from searchgate.errors import Conflict, InvalidInput, NotFound
from searchgate.permissions import Actor, Permission

DEFAULT_AREA = "Production"


@dataclass(frozen=True)
class Area:
    name: str
    site_params: list[dict[str, Any]]


class AreaService:
    def __init__(
        self,
        db: Database,
        audit: AuditLog | None = None,
        authorizer: Authorizer | None = None,
        on_rename: Callable[[Session, str, str], None] | None = None,
        cache_seconds: float = 1.0,
        on_delete: Callable[[Session, str], None] | None = None,
    ) -> None:
        """``audit`` records every change in its transaction and ``authorizer`` decides
        who may make it (a service without them is read-only); ``on_rename`` lets
        others that name areas (custom roles, merchandising) follow a rename in the same
        transaction, and ``on_delete`` remove what belongs to a deleted area."""
        self.db = db
        self.audit = audit
        self.authorizer = authorizer
        self.on_rename = on_rename
        self.on_delete = on_delete
        self.cache_seconds = cache_seconds
        self._cache: tuple[float, dict[str, Area]] | None = None
        self._lock = threading.Lock()

    def _all(self) -> dict[str, Area]:
        now = time.monotonic()
        cached = self._cache
        if cached is not None and cached[0] > now:
            return cached[1]
        with self.db.read() as s:
            areas = {r.name: Area(r.name, r.site_params) for r in s.scalars(select(AreaRow))}
        with self._lock:
            self._cache = (now + self.cache_seconds, areas)
        return areas

    def list_areas(self) -> list[Area]:
        return sorted(self._all().values(), key=lambda a: a.name)

    def get(self, name: str) -> Area:
        area = self._all().get(name)
        if area is None:
            known = ", ".join(sorted(self._all())) or "none"
            raise InvalidInput(f"unknown area {name!r} (areas: {known})", field="area")
        return area

    def _log(self, actor: Actor, action: Action, name: str) -> AuditLog:
        """The audit log, once ``actor`` is allowed to do ``action`` to area ``name``."""
        if self.audit is None or self.authorizer is None:
            raise RuntimeError("this area service is read-only (built without an audit log)")
        self.authorizer.authorize(actor, Permission.AREAS_MANAGE, action, target=name)
        return self.audit

    def create(
        self, actor: Actor, name: str, site_params: list[dict[str, Any]] | None = None
    ) -> Area:
        audit = self._log(actor, Action.AREA_CREATE, name)
        if not COLLECTION_NAME.match(name):
            raise InvalidInput("an area name has 1 to 64 letters, digits, '_' or '-'", field="name")
        params = _check_params(site_params or [])
        with audit.transaction() as s:
            if s.get(AreaRow, name) is not None:
                raise Conflict(f"area {name!r} exists already", field="name")
            s.add(
                AreaRow(
                    name=name,
                    site_params=params,
                    created_at=datetime.now(UTC),
                )
            )
            audit.record(
                s, actor, Action.AREA_CREATE, target=name, details={"siteParams": len(params)}
            )
        self._cache = None
        return Area(name, params)

    def set_params(self, actor: Actor, name: str, site_params: list[dict[str, Any]]) -> Area:
        audit = self._log(actor, Action.AREA_UPDATE, name)
        params = _check_params(site_params)
        with audit.transaction() as s:
            row = s.get(AreaRow, name)
            if row is None:
                raise NotFound(f"area {name!r} does not exist", field="name")
            before = row.site_params
            row.site_params = params
            # Keys only: site parameter values are the merchant's data, not the log's.
            audit.record(
                s,
                actor,
                Action.AREA_UPDATE,
                target=name,
                details={
                    "keysBefore": [p["key"] for p in before],
                    "keysAfter": [p["key"] for p in params],
                },
            )
        self._cache = None
        return Area(name, params)

    def rename(self, actor: Actor, name: str, new_name: str) -> Area:
        audit = self._log(actor, Action.AREA_RENAME, name)
        if not COLLECTION_NAME.match(new_name):
            raise InvalidInput(
                "an area name has 1 to 64 letters, digits, '_' or '-'", field="new_name"
            )
        if name == DEFAULT_AREA:
            raise Conflict(f"{DEFAULT_AREA} is the default area and keeps its name", field="name")
        with audit.transaction() as s:
            row = s.get(AreaRow, name)
            if row is None:
                raise NotFound(f"area {name!r} does not exist", field="name")
            if s.get(AreaRow, new_name) is not None:
                raise Conflict(f"area {new_name!r} exists already", field="new_name")
            params = row.site_params
            s.delete(row)
            s.flush()
            s.add(AreaRow(name=new_name, site_params=params, created_at=row.created_at))
            if self.on_rename is not None:
                self.on_rename(s, name, new_name)
            audit.record(
                s,
                actor,
                Action.AREA_RENAME,
                target=new_name,
                details={"from": name, "to": new_name},
            )
        self._cache = None
        return Area(new_name, params)

    def delete(self, actor: Actor, name: str) -> None:
        audit = self._log(actor, Action.AREA_DELETE, name)
        if name == DEFAULT_AREA:
            raise Conflict(f"{DEFAULT_AREA} is the default area and cannot be deleted")
        with audit.transaction() as s:
            row = s.get(AreaRow, name)
            if row is None:
                raise NotFound(f"area {name!r} does not exist", field="name")
            if self.on_delete is not None:
                self.on_delete(s, name)
            s.delete(row)
            audit.record(s, actor, Action.AREA_DELETE, target=name)
        self._cache = None


def _check_params(params: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, p in enumerate(params):
        if not isinstance(p, dict) or not isinstance(p.get("key"), str) or not p["key"]:
            raise InvalidInput("each site parameter is {key, value}", field=f"siteParams[{i}]")
        out.append({"key": p["key"], "value": p.get("value")})
    if len(out) > 100:
        raise InvalidInput("at most 100 site parameters", field="siteParams")
    return out
