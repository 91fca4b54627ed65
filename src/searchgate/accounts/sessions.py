"""Server-side console sessions.

The cookie holds 256 random bits; the database holds only their SHA-256 digest and a
public id (``ses_...``) used to list and end sessions. A session ends after 30 min
without a request (idle) and 12 h after sign-in (absolute), both configurable, and is
given a new id when what its user may do changes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from searchgate.accounts.common import new_id
from searchgate.accounts.identity import Identity, MfaPolicy, build_actor, load_identity
from searchgate.accounts.models import SessionRow, SessionState
from searchgate.audit import Action, AuditLog
from searchgate.authorizer import Authorizer
from searchgate.clock import Clock, aware, utc_now
from searchgate.db import Database
from searchgate.errors import NotFound, Unauthenticated
from searchgate.keys.hashing import Pepper
from searchgate.permissions import Actor, CredentialKind, Permission

SECRET_BYTES = 32


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)
    # Between a correct password and the TOTP code.
    mfa_pending: timedelta = timedelta(minutes=5)
    # last_seen_at is written at most this often: the idle timeout is exact to it.
    touch_every: timedelta = timedelta(seconds=10)
    # Ended and expired sessions stay listed this long, then go.
    keep_ended: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class SessionInfo:
    id: str
    user_id: str
    state: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # the earlier of the idle and absolute limits
    reauth_at: datetime | None
    ip: str | None
    user_agent: str | None
    ended_at: datetime | None
    end_reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "userId": self.user_id,
            "state": self.state,
            "createdAt": self.created_at.isoformat(),
            "lastSeenAt": self.last_seen_at.isoformat(),
            "expiresAt": self.expires_at.isoformat(),
            "ip": self.ip,
            "userAgent": self.user_agent,
        }


@dataclass(frozen=True)
class Authenticated:
    actor: Actor
    session: SessionInfo
    # Set when the session was given a new id (the user's privileges changed): the
    # caller must send it as the new cookie value; the old one no longer works.
    new_secret: str | None = None


def digest_of(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def end_user_sessions(
    s: Session, user_id: str, now: datetime, reason: str, except_id: str | None = None
) -> int:
    q = update(SessionRow).where(SessionRow.user_id == user_id, SessionRow.ended_at.is_(None))
    if except_id is not None:
        q = q.where(SessionRow.id != except_id)
    result = s.execute(q.values(ended_at=now, end_reason=reason))
    return int(getattr(result, "rowcount", 0) or 0)


class SessionService:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        authorizer: Authorizer,
        pepper: Pepper,
        policy: SessionPolicy = SessionPolicy(),
        mfa_policy: MfaPolicy = MfaPolicy(),
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.audit = audit
        self.authorizer = authorizer
        self.pepper = pepper
        self.policy = policy
        self.mfa_policy = mfa_policy
        self.clock = clock

    # --- for the sign-in service -------------------------------------------------

    def open(
        self,
        s: Session,
        user_id: str,
        epoch: int,
        *,
        state: SessionState = SessionState.ACTIVE,
        ip: str | None,
        user_agent: str | None,
        now: datetime,
        created_at: datetime | None = None,
        reauth_at: datetime | None = None,
    ) -> tuple[str, SessionRow]:
        """A new session with a fresh random id, in the caller's transaction."""
        secret = secrets.token_urlsafe(SECRET_BYTES)
        row = SessionRow(
            id=new_id("ses"),
            digest=digest_of(secret),
            user_id=user_id,
            state=state,
            privilege_epoch=epoch,
            created_at=created_at or now,
            last_seen_at=now,
            reauth_at=reauth_at,
            ip=ip[:64] if ip else None,
            user_agent=user_agent[:512] if user_agent else None,
        )
        s.add(row)
        return secret, row

    def prune(self, s: Session, user_id: str, now: datetime) -> None:
        """Forgets one person's sessions that ended (or expired) over ``keep_ended``
        ago; run at each sign-in so that the table stays small without a cron job."""
        cutoff = now - self.policy.keep_ended
        s.execute(
            delete(SessionRow).where(
                SessionRow.user_id == user_id,
                (SessionRow.ended_at < cutoff)
                | (SessionRow.created_at < cutoff - self.policy.absolute),
            ),
            # Rows loaded in this session (naive times on SQLite) need no syncing.
            execution_options={"synchronize_session": False},
        )

    def find(self, s: Session, secret: str) -> SessionRow | None:
        if not secret:
            return None
        return s.scalar(select(SessionRow).where(SessionRow.digest == digest_of(secret)))

    def expiry(self, row: SessionRow) -> datetime:
        if row.state == SessionState.MFA_PENDING:
            return aware(row.created_at) + self.policy.mfa_pending
        return min(
            aware(row.last_seen_at) + self.policy.idle,
            aware(row.created_at) + self.policy.absolute,
        )

    def expired_reason(self, row: SessionRow, now: datetime) -> str | None:
        if row.ended_at is not None:
            return row.end_reason or "ended"
        if row.state == SessionState.MFA_PENDING:
            return "mfa_timeout" if now > self.expiry(row) else None
        if now - aware(row.created_at) > self.policy.absolute:
            return "absolute_timeout"
        if now - aware(row.last_seen_at) > self.policy.idle:
            return "idle_timeout"
        return None

    def info(self, row: SessionRow) -> SessionInfo:
        return SessionInfo(
            id=row.id,
            user_id=row.user_id,
            state=row.state,
            created_at=aware(row.created_at),
            last_seen_at=aware(row.last_seen_at),
            expires_at=self.expiry(row),
            reauth_at=aware(row.reauth_at) if row.reauth_at else None,
            ip=row.ip,
            user_agent=row.user_agent,
            ended_at=aware(row.ended_at) if row.ended_at else None,
            end_reason=row.end_reason,
        )

    def actor(
        self,
        identity: Identity,
        row: SessionRow,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> Actor:
        return build_actor(
            identity,
            self.mfa_policy,
            CredentialKind.SESSION,
            session_id=row.id,
            ip=ip or row.ip,
            user_agent=user_agent or row.user_agent,
            reauthenticated_at=aware(row.reauth_at) if row.reauth_at else None,
        )

    # --- every console request ---------------------------------------------------

    def authenticate(
        self, secret: str, *, ip: str | None = None, user_agent: str | None = None
    ) -> Authenticated:
        """The actor behind a session cookie, or Unauthenticated (with a ``reason``)."""
        now = self.clock()
        with self.db.read() as s:
            row = self.find(s, secret)
            identity = load_identity(s, row.user_id) if row is not None else None
        if row is None or identity is None:
            raise Unauthenticated("sign in to continue", reason="no_session")
        reason = self.expired_reason(row, now)
        if reason is None and row.state != SessionState.ACTIVE:
            reason = "mfa_pending"
        if reason is None and not identity.active:
            reason = "user_disabled"
        if reason is not None:
            if row.ended_at is None and reason != "mfa_pending":
                with self.db.write() as s:
                    s.execute(
                        update(SessionRow)
                        .where(SessionRow.id == row.id, SessionRow.ended_at.is_(None))
                        .values(ended_at=now, end_reason=reason)
                    )
            raise Unauthenticated(_REASON_TEXT.get(reason, "sign in again"), reason=reason)
        new_secret: str | None = None
        if row.privilege_epoch != identity.user.privilege_epoch:
            new_secret, row = self._rotate(row, identity, ip, user_agent, now)
        elif now - aware(row.last_seen_at) >= self.policy.touch_every:
            with self.db.write() as s:
                s.execute(
                    update(SessionRow)
                    .where(SessionRow.id == row.id)
                    .values(
                        last_seen_at=now,
                        ip=ip[:64] if ip else row.ip,
                        user_agent=user_agent[:512] if user_agent else row.user_agent,
                    )
                )
            row.last_seen_at = now
        return Authenticated(self.actor(identity, row, ip, user_agent), self.info(row), new_secret)

    def _rotate(
        self,
        old: SessionRow,
        identity: Identity,
        ip: str | None,
        user_agent: str | None,
        now: datetime,
    ) -> tuple[str, SessionRow]:
        with self.db.write() as s:
            ended = s.execute(
                update(SessionRow)
                .where(SessionRow.id == old.id, SessionRow.ended_at.is_(None))
                .values(ended_at=now, end_reason="rotated")
            )
            if not getattr(ended, "rowcount", 0):
                # A concurrent request rotated it first; this cookie is spent.
                raise Unauthenticated("sign in again", reason="rotated")
            secret, row = self.open(
                s,
                old.user_id,
                identity.user.privilege_epoch,
                ip=ip or old.ip,
                user_agent=user_agent or old.user_agent,
                now=now,
                created_at=aware(old.created_at),
                reauth_at=aware(old.reauth_at) if old.reauth_at else None,
            )
        return secret, row

    def csrf_token(self, secret: str) -> str:
        """A token bound to this session (not stored): embed it in forms and check it
        with ``check_csrf`` on every state-changing request."""
        return hmac.new(
            self.pepper.secret, b"csrf:" + digest_of(secret), hashlib.sha256
        ).hexdigest()

    def check_csrf(self, secret: str, token: str) -> bool:
        return bool(secret) and hmac.compare_digest(self.csrf_token(secret), token or "")

    # --- listing and ending ------------------------------------------------------

    def _authorize_other(self, actor: Actor, user_id: str, action: Action) -> None:
        if user_id != actor.user_id:
            self.authorizer.authorize(actor, Permission.USERS_MANAGE, action, target=user_id)

    def list_for_user(self, actor: Actor, user_id: str | None = None) -> list[SessionInfo]:
        """Live sessions of ``user_id`` (default: the actor's own), newest first."""
        uid = user_id or actor.user_id
        if uid is None:
            raise NotFound("no user given", field="user_id")
        self._authorize_other(actor, uid, Action.USERS_LIST)
        now = self.clock()
        with self.db.read() as s:
            rows = s.scalars(
                select(SessionRow)
                .where(SessionRow.user_id == uid, SessionRow.ended_at.is_(None))
                .order_by(SessionRow.created_at.desc())
            ).all()
            return [self.info(r) for r in rows if self.expired_reason(r, now) is None]

    def end(self, actor: Actor, session_id: str) -> None:
        """Ends one session: one's own, or anyone's with ``admin:users:manage``."""
        now = self.clock()
        with self.db.read() as s:
            row = s.get(SessionRow, session_id)
        if row is None or row.ended_at is not None:
            raise NotFound(f"no live session {session_id!r}", field="session_id")
        self._authorize_other(actor, row.user_id, Action.SESSION_END)
        with self.audit.transaction() as s:
            s.execute(
                update(SessionRow)
                .where(SessionRow.id == session_id, SessionRow.ended_at.is_(None))
                .values(ended_at=now, end_reason="ended")
            )
            self.audit.record(
                s, actor, Action.SESSION_END, target=row.user_id, details={"session": session_id}
            )

    def end_all(self, actor: Actor, user_id: str, *, keep_current: bool = False) -> int:
        """Ends every session of ``user_id`` (``keep_current``: but the actor's own)."""
        self._authorize_other(actor, user_id, Action.USER_END_SESSIONS)
        now = self.clock()
        with self.audit.transaction() as s:
            n = end_user_sessions(
                s, user_id, now, "ended", actor.session_id if keep_current else None
            )
            self.audit.record(
                s, actor, Action.USER_END_SESSIONS, target=user_id, details={"ended": n}
            )
        return n

    def sign_out(
        self, secret: str, *, ip: str | None = None, user_agent: str | None = None
    ) -> None:
        """Ends the session behind this cookie; a no-op for an unknown or ended one."""
        now = self.clock()
        with self.audit.transaction() as s:
            row = self.find(s, secret)
            if row is None or row.ended_at is not None:
                return
            row.ended_at = now
            row.end_reason = "signed_out"
            identity = load_identity(s, row.user_id)
            if identity is not None:
                actor = self.actor(identity, row, ip, user_agent)
                self.audit.record(s, actor, Action.SIGN_OUT, target=identity.user.email)

    def purge(self) -> int:
        """Deletes sessions that ended (or expired) more than ``keep_ended`` ago."""
        cutoff = self.clock() - self.policy.keep_ended
        with self.audit.transaction() as s:
            result = s.execute(
                delete(SessionRow).where(
                    (SessionRow.ended_at < cutoff)
                    | (SessionRow.created_at < cutoff - self.policy.absolute)
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)


_REASON_TEXT = {
    "idle_timeout": "your session ended after a period without activity; sign in again",
    "absolute_timeout": "your session reached its maximum length; sign in again",
    "user_disabled": "this account is disabled",
    "mfa_pending": "enter your authentication code to finish signing in",
    "mfa_timeout": "signing in took too long; start again",
    "signed_out": "you signed out; sign in again",
    "rotated": "sign in again",
    "ended": "your session was ended; sign in again",
}
