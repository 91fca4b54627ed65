"""Command Center permissions, built-in roles, and who is acting.

Permissions are named ``area:resource:action``. A person holds the permissions of
their role; a credential can narrow that further but never widen it: what an actor
may do is ``role permissions ∩ credential permissions ∩ GRANTABLE_BY[credential
kind]``. A client key grants none of them (it holds data-plane scopes only).
Everything not granted is denied.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class Permission(StrEnum):
    COLLECTIONS_READ = "console:collections:read"
    COLLECTIONS_WRITE = "console:collections:write"
    COLLECTIONS_DELETE = "console:collections:delete"
    SEARCH_PREVIEW = "console:search:preview"
    AREAS_READ = "console:areas:read"
    AREAS_MANAGE = "console:areas:manage"
    ANALYTICS_VIEW = "console:analytics:view"
    MERCH_EDIT = "console:merchandising:edit"
    MERCH_PUBLISH = "console:merchandising:publish"
    USERS_READ = "admin:users:read"
    USERS_MANAGE = "admin:users:manage"
    ROLES_MANAGE = "admin:roles:manage"
    KEYS_READ = "admin:keys:read"
    KEYS_MANAGE = "admin:keys:manage"
    AUDIT_READ = "admin:audit:read"
    SETTINGS_MANAGE = "admin:settings:manage"


PERMISSION_HELP: dict[Permission, str] = {
    Permission.COLLECTIONS_READ: "see collections, their settings and records",
    Permission.COLLECTIONS_WRITE: "create collections and change their settings",
    Permission.COLLECTIONS_DELETE: "delete whole collections (irreversible)",
    Permission.SEARCH_PREVIEW: "run searches in the search preview",
    Permission.AREAS_READ: "see areas and their metadata",
    Permission.AREAS_MANAGE: "create, rename and delete areas and edit their metadata",
    Permission.ANALYTICS_VIEW: "see search analytics: searches per day, top and zero-result "
    "queries, rules that fired and redirects",
    Permission.MERCH_EDIT: "edit an area's merchandising draft: synonyms, rules, redirects, "
    "biasing profiles, stop words, related queries",
    Permission.MERCH_PUBLISH: "publish an area's merchandising draft to shoppers and roll "
    "back to an earlier version",
    Permission.USERS_READ: "see users, their roles and the roles defined",
    Permission.USERS_MANAGE: "create, change, disable and delete users; end their sessions",
    Permission.ROLES_MANAGE: "create, change and delete custom roles",
    Permission.KEYS_READ: "see client keys (never their secrets)",
    Permission.KEYS_MANAGE: "create, rotate, disable and delete client keys",
    Permission.AUDIT_READ: "read and export the change log",
    Permission.SETTINGS_MANAGE: "change security settings of the Command Center",
}

ALL_PERMISSIONS: frozenset[Permission] = frozenset(Permission)


class CredentialKind(StrEnum):
    SESSION = "session"  # a person signed in to the console
    PERSONAL_TOKEN = "personal_token"  # noqa: S105 (sgp_... on the admin API)
    CLIENT_KEY = "client_key"  # sgk_... on the data plane
    SYSTEM = "system"  # the operator at the CLI, who holds the database and its secrets


# Security settings (MFA requirements, session lifetimes) change only from an
# interactive, MFA-checked session: a leaked token must not be able to switch them off.
GRANTABLE_BY: dict[CredentialKind, frozenset[Permission]] = {
    CredentialKind.SESSION: ALL_PERMISSIONS,
    CredentialKind.PERSONAL_TOKEN: ALL_PERMISSIONS - {Permission.SETTINGS_MANAGE},
    CredentialKind.CLIENT_KEY: frozenset(),
    CredentialKind.SYSTEM: ALL_PERMISSIONS,
}

ADMIN_ROLE = "admin"
MERCHANDISER_ROLE = "merchandiser"
VIEWER_ROLE = "viewer"

BUILTIN_ROLES: dict[str, frozenset[Permission]] = {
    ADMIN_ROLE: ALL_PERMISSIONS,
    MERCHANDISER_ROLE: frozenset(
        {
            Permission.COLLECTIONS_READ,
            Permission.COLLECTIONS_WRITE,
            Permission.SEARCH_PREVIEW,
            Permission.AREAS_READ,
            Permission.AREAS_MANAGE,
            Permission.ANALYTICS_VIEW,
            Permission.MERCH_EDIT,
        }
    ),
    VIEWER_ROLE: frozenset(
        {
            Permission.COLLECTIONS_READ,
            Permission.SEARCH_PREVIEW,
            Permission.AREAS_READ,
            Permission.ANALYTICS_VIEW,
        }
    ),
}

BUILTIN_ROLE_HELP: dict[str, str] = {
    ADMIN_ROLE: "everything, including users, roles, client keys and security settings",
    MERCHANDISER_ROLE: "collections and areas, search preview and analytics, merchandising "
    "drafts (publishing is a separate grant); no deletion, no admin section",
    VIEWER_ROLE: "read-only: collections, areas, search preview and analytics",
}

# Who counts as an admin for the "last admin" guard and the admin count: anyone who
# can manage users can restore every other right, so at least one must remain.
ADMIN_MARKER = Permission.USERS_MANAGE


def parse_permissions(values: Iterable[str]) -> frozenset[Permission]:
    """Permissions from their names; ValueError names the first unknown one."""
    out: set[Permission] = set()
    for v in values:
        try:
            out.add(Permission(v))
        except ValueError:
            raise ValueError(f"unknown permission {v!r}") from None
    return frozenset(out)


def _utc(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


@dataclass(frozen=True)
class Actor:
    """Who is acting, with what credential, from where. Passed into every service
    call that changes state, and copied onto the audit event it records."""

    kind: CredentialKind
    name: str
    permissions: frozenset[Permission] = frozenset()
    user_id: str | None = None
    email: str | None = None
    # None: every area. A custom role can restrict a person to some areas.
    areas: frozenset[str] | None = None
    session_id: str | None = None  # the public id (ses_...), never the cookie value
    token_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    reauthenticated_at: datetime | None = None
    # MFA is required for this person but not enrolled yet: nothing is granted
    # until they enrol.
    mfa_enrolment_required: bool = False
    # A session of someone whose password was set by another person: nothing is
    # granted until they choose their own.
    password_change_required: bool = False
    # The person's role, before a token narrowed it (None: same as ``permissions``).
    role_permissions: frozenset[Permission] | None = None

    @classmethod
    def system(cls, name: str = "cli", ip: str | None = None) -> Actor:
        return cls(kind=CredentialKind.SYSTEM, name=name, permissions=ALL_PERMISSIONS, ip=ip)

    @property
    def effective_permissions(self) -> frozenset[Permission]:
        if self.mfa_enrolment_required or self.password_change_required:
            return frozenset()
        return self.permissions & GRANTABLE_BY[self.kind]

    def has(self, permission: Permission) -> bool:
        return permission in self.effective_permissions

    def has_all(self, permissions: Iterable[Permission]) -> bool:
        return frozenset(permissions) <= self.effective_permissions

    @property
    def delegable(self) -> frozenset[Permission]:
        """What this actor may hand out or manage in others ("no escalation"): what it
        holds, plus those of its role's permissions that its kind of credential can
        never carry (so that an admin's token can manage another admin)."""
        if self.mfa_enrolment_required or self.password_change_required:
            return frozenset()
        role = self.permissions if self.role_permissions is None else self.role_permissions
        return self.effective_permissions | (role - GRANTABLE_BY[self.kind])

    def can_access_area(self, area: str) -> bool:
        return self.areas is None or area in self.areas

    def covers_areas(self, areas: frozenset[str] | None) -> bool:
        """True when every area in ``areas`` (None: all areas) is open to this actor."""
        if self.areas is None:
            return True
        return areas is not None and areas <= self.areas

    def reauthenticated_within(self, window: timedelta, now: datetime | None = None) -> bool:
        """Sessions must have proved the password or a TOTP code recently; tokens
        and the CLI operator are exempt (they hold the permission or the database)."""
        if self.kind is not CredentialKind.SESSION:
            return True
        if self.reauthenticated_at is None:
            return False
        at = self.reauthenticated_at
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return _utc(now) - at <= window

    @property
    def label(self) -> str:
        """How the actor appears in messages: never a secret."""
        if self.token_id:
            return f"{self.name} (token {self.token_id})"
        return self.name
