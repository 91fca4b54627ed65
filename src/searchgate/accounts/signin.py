"""Signing in (password, then TOTP when enrolled), re-authenticating, changing one's
password. Every attempt is throttled and recorded in the change log.

No user enumeration: an unknown email gets the same message and the same throttling
as a wrong password, and costs the same argon2 work (against a dummy hash).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from math import ceil

from sqlalchemy import select
from sqlalchemy.orm import Session

from searchgate.accounts.common import normalize_email
from searchgate.accounts.identity import load_identity
from searchgate.accounts.mfa import MfaService
from searchgate.accounts.models import SessionRow, SessionState, UserRow, UserState
from searchgate.accounts.passwords import PasswordHasher, check_password_policy
from searchgate.accounts.sessions import (
    SessionInfo,
    SessionService,
    end_user_sessions,
)
from searchgate.accounts.throttle import MFA_ACCOUNT, Subject, Throttle, account
from searchgate.accounts.throttle import ip as _ip
from searchgate.audit import Action, AuditLog, Outcome
from searchgate.clock import Clock, utc_now
from searchgate.db import Database
from searchgate.errors import Forbidden, InvalidInput, TooManyAttempts, Unauthenticated
from searchgate.permissions import Actor, CredentialKind

BAD_CREDENTIALS = "the email or password is not correct"
BAD_CODE = "the code is not correct"


@dataclass(frozen=True)
class SignInResult:
    # The cookie value: set it, never log it. Pending (mfa_required) until the code.
    secret: str
    session: SessionInfo
    mfa_required: bool
    # Signed in, but MFA is required for this person and not enrolled: send them to
    # enrolment; nothing else is granted until they finish.
    mfa_enrolment_required: bool
    # Signed in with a password someone else set: send them to change it first.
    password_change_required: bool = False


def _anonymous(ip_address: str | None, user_agent: str | None) -> Actor:
    return Actor(
        kind=CredentialKind.SESSION,
        name="anonymous",
        ip=ip_address,
        user_agent=user_agent[:512] if user_agent else None,
    )


def _too_many(wait: timedelta) -> TooManyAttempts:
    seconds = max(1, ceil(wait.total_seconds()))
    return TooManyAttempts(
        f"too many failed attempts; try again in {seconds} s", retryAfter=seconds
    )


class AuthService:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        passwords: PasswordHasher,
        sessions: SessionService,
        mfa: MfaService,
        throttle: Throttle,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.audit = audit
        self.passwords = passwords
        self.sessions = sessions
        self.mfa = mfa
        self.throttle = throttle
        self.clock = clock

    def _reserve(self, subjects: list[Subject], actor: Actor, action: Action, target: str) -> None:
        """Counts the attempt, or records the refusal and raises TooManyAttempts."""
        now = self.clock()
        with self.audit.transaction() as s:
            wait = self.throttle.reserve(s, subjects, now)
            if wait:
                self.audit.record(
                    s,
                    actor,
                    action,
                    target=target,
                    outcome=Outcome.FAILURE,
                    details={"reason": "throttled", "retryAfter": ceil(wait.total_seconds())},
                )
        if wait:
            raise _too_many(wait)

    # --- sign-in -----------------------------------------------------------------

    def sign_in(
        self, email: str, password: str, *, ip: str | None, user_agent: str | None
    ) -> SignInResult:
        email = normalize_email(email)[:320]
        anonymous = _anonymous(ip, user_agent)
        subjects = [account(email), _ip(ip)]
        self._reserve(subjects, anonymous, Action.SIGN_IN, email)
        with self.db.read() as s:
            user = s.scalar(select(UserRow).where(UserRow.email == email))
            stored = user.password_hash if user is not None else None
        # Outside any transaction: argon2 takes tens of milliseconds and 19 MiB.
        ok = self.passwords.verify(stored, password) and bool(password)
        new_hash = None
        if ok and stored is not None and self.passwords.needs_rehash(stored):
            new_hash = self.passwords.hash(password)
        now = self.clock()
        with self.audit.transaction() as s:
            identity = load_identity(s, user.id) if ok and user is not None else None
            if identity is not None and identity.user.password_hash != stored:
                identity = None  # the password changed while we were checking it
            if identity is None or not identity.active:
                self.audit.record(
                    s,
                    anonymous,
                    Action.SIGN_IN,
                    target=email,
                    outcome=Outcome.FAILURE,
                    details={
                        "reason": "disabled" if identity is not None else "bad_credentials",
                        "knownUser": user is not None,
                    },
                )
                result = None
            else:
                self.throttle.succeeded(s, subjects, now)
                if new_hash is not None:
                    identity.user.password_hash = new_hash
                result = self._start(s, identity.user, now, ip, user_agent, password_ok=True)
        if result is None:
            raise Unauthenticated(BAD_CREDENTIALS, field="password", reason="bad_credentials")
        return result

    def _start(
        self,
        s: Session,
        user: UserRow,
        now: datetime,
        ip_address: str | None,
        user_agent: str | None,
        *,
        password_ok: bool,
        method: str = "password",
    ) -> SignInResult:
        """Opens a session with a fresh id (never one the browser brought along)."""
        self.sessions.prune(s, user.id, now)
        enrolled = self.mfa.enrolled(s, user.id)
        if password_ok and enrolled:
            secret, row = self.sessions.open(
                s,
                user.id,
                user.privilege_epoch,
                state=SessionState.MFA_PENDING,
                ip=ip_address,
                user_agent=user_agent,
                now=now,
            )
            return SignInResult(secret, self.sessions.info(row), True, False)
        secret, row = self.sessions.open(
            s,
            user.id,
            user.privilege_epoch,
            ip=ip_address,
            user_agent=user_agent,
            now=now,
            reauth_at=now,
        )
        user.last_sign_in_at = now
        identity = load_identity(s, user.id)
        assert identity is not None
        actor = self.sessions.actor(identity, row)
        self.audit.record(s, actor, Action.SIGN_IN, target=user.email, details={"mfa": method})
        return SignInResult(
            secret,
            self.sessions.info(row),
            False,
            actor.mfa_enrolment_required,
            actor.password_change_required,
        )

    def verify_mfa(
        self, pending_secret: str, code: str, *, ip: str | None, user_agent: str | None
    ) -> SignInResult:
        """Second step: a TOTP or recovery code for a pending session. On success the
        pending session ends and a new one (new id) begins."""
        now = self.clock()
        with self.db.read() as s:
            row = self.sessions.find(s, pending_secret)
            identity = load_identity(s, row.user_id) if row is not None else None
        if (
            row is None
            or identity is None
            or row.state != SessionState.MFA_PENDING
            or self.sessions.expired_reason(row, now) is not None
        ):
            raise Unauthenticated("signing in took too long; start again", reason="mfa_timeout")
        actor = replace(self.sessions.actor(identity, row, ip, user_agent), permissions=frozenset())
        subjects = [account(identity.user.id, MFA_ACCOUNT), _ip(ip)]
        self._reserve(subjects, actor, Action.MFA_VERIFY, identity.user.email)
        with self.audit.transaction() as s:
            method = self.mfa.consume(s, identity.user.id, code, now)
            pending = s.get(SessionRow, row.id)
            if method is None or pending is None or pending.ended_at is not None:
                self.audit.record(
                    s,
                    actor,
                    Action.MFA_VERIFY,
                    target=identity.user.email,
                    outcome=Outcome.FAILURE,
                    details={"reason": "bad_code"},
                )
                result = None
            else:
                self.throttle.succeeded(s, subjects, now)
                pending.ended_at = now
                pending.end_reason = "mfa_done"
                user = s.get(UserRow, identity.user.id)
                assert user is not None
                if user.state != UserState.ACTIVE:
                    raise Unauthenticated(BAD_CREDENTIALS, reason="bad_credentials")
                result = self._start(s, user, now, ip, user_agent, password_ok=False, method=method)
        if result is None:
            raise Unauthenticated(BAD_CODE, field="code", reason="bad_code")
        return result

    # --- proving it again --------------------------------------------------------

    def reauthenticate(
        self, actor: Actor, *, password: str | None = None, code: str | None = None
    ) -> None:
        """Password or TOTP code again before a sensitive action; on success the
        session may do sensitive actions for the re-authentication window."""
        if actor.kind is not CredentialKind.SESSION or not actor.session_id or not actor.user_id:
            raise Forbidden("only a console session re-authenticates")
        if not password and not code:
            raise InvalidInput("enter your password or a code", field="password")
        user_id, email = actor.user_id, actor.email or ""
        if password:
            subjects = [account(email), _ip(actor.ip)]
        else:
            subjects = [account(user_id, MFA_ACCOUNT), _ip(actor.ip)]
        self._reserve(subjects, actor, Action.REAUTHENTICATE, email)
        ok = False
        if password:
            with self.db.read() as s:
                user = s.get(UserRow, user_id)
                stored = user.password_hash if user is not None else None
            ok = self.passwords.verify(stored, password)
        now = self.clock()
        with self.audit.transaction() as s:
            if code and not password:
                ok = self.mfa.consume(s, user_id, code, now) is not None
            row = s.get(SessionRow, actor.session_id)
            live = row is not None and self.sessions.expired_reason(row, now) is None
            if ok and live and row is not None:
                self.throttle.succeeded(s, subjects, now)
                row.reauth_at = now
                row.last_seen_at = now
            self.audit.record(
                s,
                actor,
                Action.REAUTHENTICATE,
                target=email,
                outcome=Outcome.SUCCESS if ok and live else Outcome.FAILURE,
                details={"method": "password" if password else "totp"},
            )
        if not live:
            raise Unauthenticated("your session has ended; sign in again", reason="ended")
        if not ok:
            field = "password" if password else "code"
            raise InvalidInput(f"the {field} is not correct", field=field)

    def change_password(self, actor: Actor, current: str, new: str) -> int:
        """One's own password, proved by the current one (which also counts as a
        re-authentication of this session). Other sessions of the person end; returns
        how many. A password someone else set stops being required to change."""
        if actor.kind is not CredentialKind.SESSION or not actor.user_id:
            raise Forbidden("passwords are changed by their owner, signed in to the console")
        email = actor.email or ""
        check_password_policy(new, email)
        if new == current:
            raise InvalidInput("choose a password other than the current one", field="password")
        subjects = [account(email), _ip(actor.ip)]
        self._reserve(subjects, actor, Action.PASSWORD_CHANGE, email)
        with self.db.read() as s:
            user = s.get(UserRow, actor.user_id)
            stored = user.password_hash if user is not None else None
        ok = self.passwords.verify(stored, current)
        new_hash = self.passwords.hash(new) if ok else ""
        now = self.clock()
        ended = 0
        with self.audit.transaction() as s:
            user = s.get(UserRow, actor.user_id)
            if ok and user is not None:
                self.throttle.succeeded(s, subjects, now)
                user.password_hash = new_hash
                user.password_changed_at = now
                user.updated_at = now
                if user.must_change_password:
                    # What the person may do changes: this session gets a new id.
                    user.must_change_password = False
                    user.privilege_epoch += 1
                ended = end_user_sessions(
                    s, user.id, now, "password_changed", except_id=actor.session_id
                )
                session = s.get(SessionRow, actor.session_id) if actor.session_id else None
                if session is not None:
                    session.reauth_at = now
            self.audit.record(
                s,
                actor,
                Action.PASSWORD_CHANGE,
                target=email,
                outcome=Outcome.SUCCESS if ok else Outcome.FAILURE,
                details={"otherSessionsEnded": ended} if ok else {"reason": "bad_credentials"},
            )
        if not ok:
            raise InvalidInput("the current password is not correct", field="current_password")
        return ended
