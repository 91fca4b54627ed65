"""Tables for people: users, roles, sessions, personal tokens, TOTP, throttling,
invitations.

Secrets are never stored as given: passwords as argon2id hashes, session ids as
SHA-256 digests, personal tokens, invitation tokens and recovery codes as HMAC digests
with the server pepper. The TOTP seed is the exception (a code cannot be checked
without it); see docs/security.md.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from searchgate.db import Base, JsonText


class UserState(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class TokenState(StrEnum):
    """A personal API token's state (computed, not stored)."""

    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class InvitationState(StrEnum):
    """An invitation's state (computed, not stored)."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class SessionState(StrEnum):
    ACTIVE = "active"
    # Signed in with the password; the second factor is still to come.
    MFA_PENDING = "mfa_pending"


class RoleRow(Base):
    __tablename__ = "roles"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(256))
    builtin: Mapped[bool] = mapped_column(Boolean)
    # Built-in roles take their permissions from the code (permissions.BUILTIN_ROLES),
    # so that a new permission reaches them on upgrade; the column mirrors it.
    permissions: Mapped[list[str]] = mapped_column("permissions_json", JsonText)
    # NULL: every area; else the area names.
    areas: Mapped[list[str] | None] = mapped_column("areas_json", JsonText, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(512))
    role_id: Mapped[str] = mapped_column(ForeignKey("roles.id", ondelete="RESTRICT"))
    state: Mapped[str] = mapped_column(String(16))  # a UserState
    # Raised whenever what this person may do changes (role, role's permissions, MFA
    # enrolment); a session issued under an older value gets a new id on its next use.
    privilege_epoch: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The password was set by someone else (an admin, the CLI operator): its owner
    # must change it before anything else is granted.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SessionRow(Base):
    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # public: ses_...
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))  # a SessionState
    privilege_epoch: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reauth_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(512), nullable=True)

    __table_args__ = (Index("ix_user_sessions_user_id", "user_id"),)


class PersonalTokenRow(Base):
    __tablename__ = "personal_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # public: tok_...
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    display_prefix: Mapped[str] = mapped_column(String(16))
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    pepper_id: Mapped[str] = mapped_column(String(16))
    permissions: Mapped[list[str]] = mapped_column("permissions_json", JsonText)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_personal_tokens_user_id", "user_id"),)


class TotpRow(Base):
    __tablename__ = "user_totp"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The 30-second step of the last code accepted: a code is good once, and no code
    # from that step or an earlier one is accepted afterwards.
    last_used_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class RecoveryCodeRow(Base):
    __tablename__ = "user_recovery_codes"

    digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_user_recovery_codes_user_id", "user_id"),)


class ThrottleRow(Base):
    """Failed attempts per subject (an email, a user, an IP), hashed so that the table
    lists no addresses."""

    __tablename__ = "auth_throttle"

    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_failure_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InvitationRow(Base):
    """A one-time link by which a person creates their own account (their own
    password): the token is shown once to the admin and stored only as a digest."""

    __tablename__ = "user_invitations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # public: inv_...
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    role_id: Mapped[str] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"))
    invited_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(32), nullable=True)

    __table_args__ = (Index("ix_user_invitations_email", "email"),)
