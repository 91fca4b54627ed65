"""Roles: the three built-in ones and custom roles composed from permissions, each
with the areas it opens (all, or a list)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from searchgate.accounts.common import new_id
from searchgate.accounts.models import RoleRow, UserRow, UserState
from searchgate.audit import Action, AuditLog
from searchgate.authorizer import Authorizer
from searchgate.catalog.models import AreaRow
from searchgate.clock import Clock, utc_now
from searchgate.db import Database
from searchgate.errors import Conflict, Forbidden, InvalidInput, NotFound
from searchgate.permissions import (
    ADMIN_MARKER,
    BUILTIN_ROLE_HELP,
    BUILTIN_ROLES,
    Actor,
    Permission,
    parse_permissions,
)

ROLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9 _.-]{0,63}$")
DESCRIPTION_MAX = 256


@dataclass(frozen=True)
class RoleInfo:
    id: str
    name: str
    description: str
    builtin: bool
    permissions: frozenset[Permission]
    areas: frozenset[str] | None  # None: every area
    user_count: int

    @property
    def is_admin(self) -> bool:
        return ADMIN_MARKER in self.permissions

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "builtin": self.builtin,
            "permissions": sorted(p.value for p in self.permissions),
            "areas": None if self.areas is None else sorted(self.areas),
            "userCount": self.user_count,
        }


def role_permissions(row: RoleRow) -> frozenset[Permission]:
    if row.builtin:
        return BUILTIN_ROLES.get(row.name, frozenset())
    # A permission dropped by a later version is ignored rather than fatal.
    known = {p.value for p in Permission}
    return frozenset(Permission(p) for p in row.permissions if p in known)


def role_areas(row: RoleRow) -> frozenset[str] | None:
    return frozenset(row.areas) if row.areas is not None else None


def count_admins(
    s: Session,
    *,
    except_user: str | None = None,
    overrides: dict[str, frozenset[Permission]] | None = None,
) -> int:
    """Active users whose role grants ``admin:users:manage``; ``overrides`` gives
    role ids new permissions (a pending change) for the count."""
    admin_roles = []
    for row in s.scalars(select(RoleRow)):
        perms = (overrides or {}).get(row.id, role_permissions(row))
        if ADMIN_MARKER in perms:
            admin_roles.append(row.id)
    if not admin_roles:
        return 0
    q = (
        select(func.count())
        .select_from(UserRow)
        .where(UserRow.state == UserState.ACTIVE, UserRow.role_id.in_(admin_roles))
    )
    if except_user is not None:
        q = q.where(UserRow.id != except_user)
    return int(s.scalar(q) or 0)


def require_within(actor: Actor, permissions: Iterable[Permission], areas: Any, what: str) -> None:
    """No escalation: nobody hands out (or touches) more than they hold themselves."""
    missing = frozenset(permissions) - actor.delegable
    if missing:
        names = ", ".join(sorted(p.value for p in missing))
        raise Forbidden(f"{what} needs permissions you do not hold: {names}", field="role")
    if not actor.covers_areas(areas):
        raise Forbidden(f"{what} opens areas you have no access to", field="areas")


class RoleService:
    def __init__(
        self, db: Database, audit: AuditLog, authorizer: Authorizer, clock: Clock = utc_now
    ) -> None:
        self.db = db
        self.audit = audit
        self.authorizer = authorizer
        self.clock = clock

    def ensure_builtin(self) -> None:
        """Idempotent; also run by migration 0002. Safe when several processes start."""
        now = self.clock()
        for name, perms in BUILTIN_ROLES.items():
            try:
                with self.db.write() as s:
                    row = s.scalar(select(RoleRow).where(RoleRow.name == name))
                    stored = _dump_permissions(perms)
                    if row is None:
                        s.add(
                            RoleRow(
                                id=f"rol_{name}",
                                name=name,
                                description=BUILTIN_ROLE_HELP[name],
                                builtin=True,
                                permissions=stored,
                                areas=None,
                                created_at=now,
                                updated_at=now,
                            )
                        )
                    elif row.permissions != stored:
                        row.permissions = stored
                        row.updated_at = now
            except IntegrityError:
                continue

    # --- reading -----------------------------------------------------------------

    def _authorize_read(self, actor: Actor) -> None:
        if not actor.has(Permission.ROLES_MANAGE):
            self.authorizer.authorize(actor, Permission.USERS_READ, Action.ROLES_LIST)

    def list(self, actor: Actor) -> list[RoleInfo]:
        self._authorize_read(actor)
        with self.db.read() as s:
            counts = dict(
                s.execute(select(UserRow.role_id, func.count()).group_by(UserRow.role_id)).all()
            )
            rows = s.scalars(select(RoleRow).order_by(RoleRow.builtin.desc(), RoleRow.name))
            return [_info(r, int(counts.get(r.id, 0))) for r in rows]

    def get(self, actor: Actor, name: str) -> RoleInfo:
        self._authorize_read(actor)
        with self.db.read() as s:
            row = _find(s, name)
            return _info(row, _user_count(s, row.id))

    # --- changing ----------------------------------------------------------------

    def create(
        self,
        actor: Actor,
        name: str,
        permissions: Iterable[str],
        areas: Iterable[str] | None = None,
        description: str = "",
    ) -> RoleInfo:
        self.authorizer.authorize(
            actor, Permission.ROLES_MANAGE, Action.ROLE_CREATE, target=name, sensitive=True
        )
        name = _check_name(name)
        perms = _check_permissions(permissions)
        description = _check_description(description)
        now = self.clock()
        with (
            self.authorizer.denials(actor, Action.ROLE_CREATE, target=name),
            self.audit.transaction() as s,
        ):
            area_set = _check_areas(s, areas)
            require_within(actor, perms, area_set, "this role")
            if s.scalar(select(RoleRow.id).where(func.lower(RoleRow.name) == name.lower())):
                raise Conflict(f"a role named {name!r} exists already", field="name")
            row = RoleRow(
                id=new_id("rol"),
                name=name,
                description=description,
                builtin=False,
                permissions=_dump_permissions(perms),
                areas=_dump_areas(area_set),
                created_at=now,
                updated_at=now,
            )
            s.add(row)
            s.flush()
            info = _info(row, 0)
            self.audit.record(s, actor, Action.ROLE_CREATE, target=name, details=_details(info))
        return info

    def update(
        self,
        actor: Actor,
        name: str,
        *,
        new_name: str | None = None,
        permissions: Iterable[str] | None = None,
        areas: Iterable[str] | None = None,
        all_areas: bool = False,
        description: str | None = None,
    ) -> RoleInfo:
        """Changes a custom role. ``all_areas=True`` opens every area; ``areas`` a list.
        Everyone holding the role gets new session ids on their next request."""
        self.authorizer.authorize(
            actor, Permission.ROLES_MANAGE, Action.ROLE_UPDATE, target=name, sensitive=True
        )
        now = self.clock()
        with (
            self.authorizer.denials(actor, Action.ROLE_UPDATE, target=name),
            self.audit.transaction() as s,
        ):
            row = _find(s, name)
            if row.builtin:
                raise Conflict(
                    f"{row.name!r} is a built-in role and cannot be changed; create a custom "
                    "role instead",
                    field="name",
                )
            before = _info(row, _user_count(s, row.id))
            require_within(actor, before.permissions, before.areas, "changing this role")
            perms = before.permissions if permissions is None else _check_permissions(permissions)
            area_set = before.areas
            if all_areas:
                area_set = None
            elif areas is not None:
                area_set = _check_areas(s, areas)
            require_within(actor, perms, area_set, "this role")
            if (
                ADMIN_MARKER in before.permissions
                and ADMIN_MARKER not in perms
                and count_admins(s, overrides={row.id: perms}) == 0
            ):
                raise Conflict(
                    "this change would leave no active admin; give another person an "
                    "admin role first",
                    field="permissions",
                )
            if new_name is not None and new_name.strip() != row.name:
                new = _check_name(new_name)
                taken = s.scalar(
                    select(RoleRow.id).where(
                        func.lower(RoleRow.name) == new.lower(), RoleRow.id != row.id
                    )
                )
                if taken:
                    raise Conflict(f"a role named {new!r} exists already", field="name")
                row.name = new
            if description is not None:
                row.description = _check_description(description)
            row.permissions = _dump_permissions(perms)
            row.areas = _dump_areas(area_set)
            row.updated_at = now
            after = _info(row, before.user_count)
            if after.permissions != before.permissions or after.areas != before.areas:
                s.execute(
                    update(UserRow)
                    .where(UserRow.role_id == row.id)
                    .values(privilege_epoch=UserRow.privilege_epoch + 1)
                )
            self.audit.record(
                s,
                actor,
                Action.ROLE_UPDATE,
                target=name,
                details={"before": _details(before), "after": _details(after)},
            )
        return after

    def delete(self, actor: Actor, name: str) -> None:
        self.authorizer.authorize(
            actor, Permission.ROLES_MANAGE, Action.ROLE_DELETE, target=name, sensitive=True
        )
        with (
            self.authorizer.denials(actor, Action.ROLE_DELETE, target=name),
            self.audit.transaction() as s,
        ):
            row = _find(s, name)
            if row.builtin:
                raise Conflict(f"{row.name!r} is a built-in role and cannot be deleted")
            info = _info(row, _user_count(s, row.id))
            require_within(actor, info.permissions, info.areas, "deleting this role")
            if info.user_count:
                raise Conflict(
                    f"{info.user_count} user(s) hold the role {row.name!r}; give them another "
                    "role first"
                )
            s.delete(row)
            self.audit.record(s, actor, Action.ROLE_DELETE, target=row.name, details=_details(info))

    @staticmethod
    def rename_area(s: Session, old: str, new: str) -> None:
        """For the area service: keeps custom roles pointing at a renamed area, in the
        rename's own transaction."""
        for row in s.scalars(select(RoleRow).where(RoleRow.areas.is_not(None))):
            areas = role_areas(row)
            if areas is not None and old in areas:
                row.areas = _dump_areas((areas - {old}) | {new})


def _find(s: Session, name: str) -> RoleRow:
    row = s.scalar(select(RoleRow).where((RoleRow.name == name) | (RoleRow.id == name)))
    if row is None:
        raise NotFound(f"no role named {name!r}", field="role")
    return row


def _user_count(s: Session, role_id: str) -> int:
    return int(
        s.scalar(select(func.count()).select_from(UserRow).where(UserRow.role_id == role_id)) or 0
    )


def _info(row: RoleRow, user_count: int) -> RoleInfo:
    return RoleInfo(
        id=row.id,
        name=row.name,
        description=row.description,
        builtin=row.builtin,
        permissions=role_permissions(row),
        areas=role_areas(row),
        user_count=user_count,
    )


def _details(info: RoleInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "permissions": sorted(p.value for p in info.permissions),
        "areas": None if info.areas is None else sorted(info.areas),
    }


def _check_name(name: str) -> str:
    name = name.strip()
    if not ROLE_NAME.match(name):
        raise InvalidInput(
            "a role name starts with a letter and has up to 64 letters, digits, spaces, "
            "'.', '_' or '-'",
            field="name",
        )
    if name.lower() in BUILTIN_ROLES:
        raise Conflict(f"{name!r} is the name of a built-in role", field="name")
    return name


def _check_description(description: str) -> str:
    description = description.strip()
    if len(description) > DESCRIPTION_MAX:
        raise InvalidInput(
            f"a description has at most {DESCRIPTION_MAX} characters", field="description"
        )
    return description


def _check_permissions(values: Iterable[str]) -> frozenset[Permission]:
    try:
        perms = parse_permissions(values)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="permissions") from None
    if not perms:
        raise InvalidInput("a role needs at least one permission", field="permissions")
    return perms


def _check_areas(s: Session, areas: Iterable[str] | None) -> frozenset[str] | None:
    if areas is None:
        return None
    wanted = frozenset(a.strip() for a in areas)
    if not wanted:
        raise InvalidInput("give at least one area, or all areas", field="areas")
    known = set(s.scalars(select(AreaRow.name)))
    unknown = sorted(wanted - known)
    if unknown:
        raise InvalidInput(f"unknown area(s): {', '.join(unknown)}", field="areas")
    return wanted


def _dump_permissions(perms: frozenset[Permission]) -> list[str]:
    return sorted(p.value for p in perms)


def _dump_areas(areas: frozenset[str] | None) -> list[str] | None:
    return None if areas is None else sorted(areas)
