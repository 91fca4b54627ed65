"""Invitations: an admin names an email address and a role; the invited person opens a
one-time link and chooses their own password, so that no admin ever knows it.

The token (``sgi_`` + 43 URL-safe characters, 256 bits) is shown once to the admin and
stored only as an HMAC digest with the server pepper. An invitation works once and
until it expires (72 hours by default); a newer invitation for the same address
withdraws the older one. Creating, withdrawing and accepting are recorded.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from searchgate.accounts.common import check_display_name, check_email, new_id
from searchgate.accounts.identity import MfaPolicy, build_actor, load_identity
from searchgate.accounts.models import InvitationRow, InvitationState, RoleRow, UserRow
from searchgate.accounts.passwords import PasswordHasher, check_password_policy
from searchgate.accounts.roles import require_within, role_areas, role_permissions
from searchgate.accounts.users import UserInfo, find_role, insert_user, user_info
from searchgate.audit import Action, AuditLog
from searchgate.authorizer import Authorizer
from searchgate.clock import Clock, aware, utc_now
from searchgate.db import Database
from searchgate.errors import Conflict, InvalidInput, NotFound
from searchgate.keys.hashing import Pepper
from searchgate.permissions import Actor, CredentialKind, Permission

PREFIX = "sgi_"
DEFAULT_LIFETIME = timedelta(hours=72)
MAX_LIFETIME = timedelta(days=30)
MIN_LIFETIME = timedelta(hours=1)
# One message for an unknown, used, withdrawn or expired link: the answer tells a
# guesser nothing.
NOT_VALID = (
    "this invitation link is not valid: it was used already, it expired, or it was "
    "withdrawn. Ask an admin for a new one"
)


# The token travels after "#": browsers never send that part to a server, so it stays
# out of access logs, proxies and Referer headers; the page's script hands it to the form.
INVITATION_PATH = "/invitation"


def invitation_url(base_url: str, secret: str) -> str:
    return f"{base_url.rstrip('/')}{INVITATION_PATH}#{secret}"


@dataclass(frozen=True)
class InvitationInfo:
    id: str
    email: str
    display_name: str | None
    role: str
    invited_by: str
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> InvitationState:
        if self.accepted_at is not None:
            return InvitationState.ACCEPTED
        if self.revoked_at is not None:
            return InvitationState.WITHDRAWN
        return InvitationState.PENDING if now < self.expires_at else InvitationState.EXPIRED

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "displayName": self.display_name,
            "role": self.role,
            "invitedBy": self.invited_by,
            "createdAt": self.created_at.isoformat(),
            "expiresAt": self.expires_at.isoformat(),
            "state": self.state(now),
        }


@dataclass(frozen=True)
class CreatedInvitation:
    # Shown once, as part of the link; never stored, logged or recorded.
    secret: str
    info: InvitationInfo


def _info(row: InvitationRow, role_name: str) -> InvitationInfo:
    return InvitationInfo(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        role=role_name,
        invited_by=row.invited_by,
        created_at=aware(row.created_at),
        expires_at=aware(row.expires_at),
        accepted_at=aware(row.accepted_at) if row.accepted_at else None,
        revoked_at=aware(row.revoked_at) if row.revoked_at else None,
    )


class InvitationService:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        authorizer: Authorizer,
        passwords: PasswordHasher,
        pepper: Pepper,
        mfa_policy: MfaPolicy,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.audit = audit
        self.authorizer = authorizer
        self.passwords = passwords
        self.pepper = pepper
        self.mfa_policy = mfa_policy
        self.clock = clock

    def _digest(self, secret: str) -> bytes:
        return self.pepper.digest(f"invitation:{secret.strip()}")

    # --- admins ------------------------------------------------------------------

    def create(
        self,
        actor: Actor,
        email: str,
        role: str,
        display_name: str | None = None,
        lifetime: timedelta = DEFAULT_LIFETIME,
    ) -> CreatedInvitation:
        email = check_email(email)
        self.authorizer.authorize(
            actor, Permission.USERS_MANAGE, Action.INVITATION_CREATE, target=email, sensitive=True
        )
        name = check_display_name(display_name) if display_name and display_name.strip() else None
        if not MIN_LIFETIME <= lifetime <= MAX_LIFETIME:
            raise InvalidInput(
                "an invitation lives from 1 hour to 30 days", field="expires_in_hours"
            )
        secret = PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        with (
            self.authorizer.denials(actor, Action.INVITATION_CREATE, target=email),
            self.audit.transaction() as s,
        ):
            role_row = find_role(s, role)
            require_within(
                actor, role_permissions(role_row), role_areas(role_row), "giving this role"
            )
            if s.scalar(select(UserRow.id).where(UserRow.email == email)):
                raise Conflict(f"a user with the email {email!r} exists already", field="email")
            replaced = []
            for older in _pending(s, email, now):
                older.revoked_at = now
                replaced.append(older.id)
            row = InvitationRow(
                id=new_id("inv"),
                digest=self._digest(secret),
                email=email,
                display_name=name,
                role_id=role_row.id,
                invited_by=(actor.email or actor.name)[:320],
                created_at=now,
                expires_at=now + lifetime,
            )
            s.add(row)
            details: dict[str, Any] = {
                "invitation": row.id,
                "role": role_row.name,
                "expiresAt": row.expires_at.isoformat(),
            }
            if replaced:
                details["withdrew"] = replaced
            self.audit.record(s, actor, Action.INVITATION_CREATE, target=email, details=details)
            info = _info(row, role_row.name)
        return CreatedInvitation(secret, info)

    def list(self, actor: Actor, *, include_inactive: bool = False) -> list[InvitationInfo]:
        """Newest first; by default only those still waiting to be accepted."""
        self.authorizer.authorize(actor, Permission.USERS_READ, Action.USERS_LIST)
        now = self.clock()
        with self.db.read() as s:
            roles = {r.id: r.name for r in s.scalars(select(RoleRow))}
            rows = s.scalars(select(InvitationRow).order_by(InvitationRow.created_at.desc()))
            out = [_info(r, roles.get(r.role_id, "")) for r in rows]
        return (
            out if include_inactive else [i for i in out if i.state(now) is InvitationState.PENDING]
        )

    def revoke(self, actor: Actor, invitation_id: str) -> InvitationInfo:
        """Withdraws a pending invitation: its link stops working at once."""
        self.authorizer.authorize(
            actor,
            Permission.USERS_MANAGE,
            Action.INVITATION_REVOKE,
            target=invitation_id,
            sensitive=True,
        )
        now = self.clock()
        with (
            self.authorizer.denials(actor, Action.INVITATION_REVOKE, target=invitation_id),
            self.audit.transaction() as s,
        ):
            row = s.get(InvitationRow, invitation_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no invitation {invitation_id!r}", field="invitation")
            role_row = s.get(RoleRow, row.role_id)
            info = _info(row, role_row.name if role_row else "")
            if info.state(now) is not InvitationState.PENDING:
                raise Conflict(f"the invitation for {row.email} is {info.state(now)} already")
            row.revoked_at = now
            self.audit.record(
                s,
                actor,
                Action.INVITATION_REVOKE,
                target=row.email,
                details={"invitation": row.id},
            )
            info = _info(row, info.role)
        return info

    # --- the invited person ------------------------------------------------------

    def find(self, secret: str) -> InvitationInfo:
        """The pending invitation behind a link (to show whom it is for), else
        NotFound with one message for every reason."""
        now = self.clock()
        with self.db.read() as s:
            row = self._usable(s, secret, now)
            role_row = s.get(RoleRow, row.role_id)
            return _info(row, role_row.name if role_row else "")

    def accept(
        self,
        secret: str,
        password: str,
        display_name: str | None,
        *,
        ip: str | None,
        user_agent: str | None,
    ) -> UserInfo:
        """Creates the account with the password its owner chose, and uses the
        invitation up. The person then signs in as usual (and enrols in MFA where
        it is required)."""
        invitation = self.find(secret)
        check_password_policy(password, invitation.email)
        name = check_display_name(
            display_name or invitation.display_name or invitation.email.split("@")[0]
        )
        # The slow part (argon2) runs before the write transaction takes its lock.
        password_hash = self.passwords.hash(password)
        now = self.clock()
        with self.audit.transaction() as s:
            row = self._usable(s, secret, now, lock=True)
            role_row = s.get(RoleRow, row.role_id)
            if role_row is None:
                raise NotFound(NOT_VALID, field="invitation")
            user = insert_user(s, row.email, name, password_hash, role_row, now, False)
            row.accepted_at = now
            row.user_id = user.id
            identity = load_identity(s, user.id)
            assert identity is not None
            actor = build_actor(
                identity, self.mfa_policy, CredentialKind.SESSION, ip=ip, user_agent=user_agent
            )
            self.audit.record(
                s,
                actor,
                Action.INVITATION_ACCEPT,
                target=row.email,
                details={
                    "invitation": row.id,
                    "user": user.id,
                    "role": role_row.name,
                    "invitedBy": row.invited_by,
                },
            )
            info = user_info(identity)
        return info

    # --- helpers -----------------------------------------------------------------

    def _usable(
        self, s: Session, secret: str, now: datetime, *, lock: bool = False
    ) -> InvitationRow:
        if not secret.strip().startswith(PREFIX) or len(secret) > 100:
            raise NotFound(NOT_VALID, field="invitation")
        query = select(InvitationRow).where(InvitationRow.digest == self._digest(secret))
        row = s.scalar(query.with_for_update() if lock else query)
        if (
            row is None
            or row.accepted_at is not None
            or row.revoked_at is not None
            or aware(row.expires_at) <= now
        ):
            raise NotFound(NOT_VALID, field="invitation")
        return row


def _pending(s: Session, email: str, now: datetime) -> list[InvitationRow]:
    return list(
        s.scalars(
            select(InvitationRow).where(
                InvitationRow.email == email,
                InvitationRow.accepted_at.is_(None),
                InvitationRow.revoked_at.is_(None),
                InvitationRow.expires_at > now,
            )
        )
    )
