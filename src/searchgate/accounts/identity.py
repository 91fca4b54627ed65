"""Who a user is right now: role permissions, areas, MFA state, and the actor built
from them for a session or a token. Read on every request, so that a disabled user
or a changed role takes effect on the very next one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from searchgate.accounts.models import RoleRow, TotpRow, UserRow, UserState
from searchgate.accounts.roles import role_areas, role_permissions
from searchgate.permissions import Actor, CredentialKind, Permission


@dataclass(frozen=True)
class MfaPolicy:
    """``required_for_admins``: anyone whose role holds an ``admin:*`` permission must
    enrol; ``required_for_all``: everyone must. Until they do, they may do nothing but
    enrol."""

    required_for_admins: bool = True
    required_for_all: bool = False

    def required(self, permissions: frozenset[Permission]) -> bool:
        if self.required_for_all:
            return True
        return self.required_for_admins and any(p.startswith("admin:") for p in permissions)


@dataclass(frozen=True)
class Identity:
    user: UserRow
    role_name: str
    permissions: frozenset[Permission]
    areas: frozenset[str] | None
    mfa_enrolled: bool

    @property
    def active(self) -> bool:
        return self.user.state == UserState.ACTIVE


def load_identity(s: Session, user_id: str) -> Identity | None:
    user = s.get(UserRow, user_id)
    if user is None:
        return None
    role = s.get(RoleRow, user.role_id)
    totp = s.get(TotpRow, user_id)
    return Identity(
        user=user,
        role_name=role.name if role else "",
        permissions=role_permissions(role) if role else frozenset(),
        areas=role_areas(role) if role else frozenset(),
        mfa_enrolled=totp is not None and totp.confirmed_at is not None,
    )


def build_actor(
    identity: Identity,
    policy: MfaPolicy,
    kind: CredentialKind,
    *,
    permissions: frozenset[Permission] | None = None,
    session_id: str | None = None,
    token_id: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    reauthenticated_at: datetime | None = None,
) -> Actor:
    """``permissions`` narrows the role's (a token's own list); it never widens it."""
    perms = identity.permissions if permissions is None else identity.permissions & permissions
    return Actor(
        kind=kind,
        name=identity.user.display_name,
        email=identity.user.email,
        user_id=identity.user.id,
        permissions=perms,
        areas=identity.areas,
        session_id=session_id,
        token_id=token_id,
        ip=ip,
        user_agent=user_agent[:512] if user_agent else None,
        reauthenticated_at=reauthenticated_at,
        mfa_enrolment_required=policy.required(identity.permissions) and not identity.mfa_enrolled,
        # Tokens are made by their owner (or the CLI operator), never from the password.
        password_change_required=(
            kind is CredentialKind.SESSION and bool(identity.user.must_change_password)
        ),
        role_permissions=identity.permissions,
    )
