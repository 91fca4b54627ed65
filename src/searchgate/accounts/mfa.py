"""TOTP (RFC 6238, via pyotp) with one-time recovery codes.

A code is accepted for the current 30-second step or one step either side (clock
drift), and only once: the step of the last accepted code is stored, and no code of
that step or an earlier one is accepted again. Recovery codes are stored as HMAC
digests and each works once.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from searchgate.accounts.models import RecoveryCodeRow, TotpRow, UserRow
from searchgate.audit import Action, AuditLog, Outcome
from searchgate.authorizer import Authorizer
from searchgate.clock import Clock, utc_now
from searchgate.db import Database
from searchgate.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ReauthenticationRequired,
)
from searchgate.keys.hashing import Pepper
from searchgate.permissions import Actor, CredentialKind

STEP_SECONDS = 30
DRIFT_STEPS = 1
DIGITS = 6
RECOVERY_CODE_COUNT = 10
# No 0/o, 1/l/i: codes are read off paper.
_RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
_RECOVERY_HALF = 5


@dataclass(frozen=True)
class Enrolment:
    # Shown once for manual entry; the URI is what the QR code encodes.
    secret: str
    provisioning_uri: str


@dataclass(frozen=True)
class MfaStatus:
    enrolled: bool
    enrolled_at: datetime | None
    recovery_codes_left: int


def _normalize(code: str) -> str:
    """The code as typed, lower case, without spaces or dashes; "" for anything that is
    not ASCII. Python counts superscript, Arabic-Indic or fullwidth digits as digits
    (str.isdigit), and no code is made of them."""
    if not code.isascii():
        return ""
    return "".join(ch for ch in code.lower() if ch.isalnum())


def new_recovery_code() -> str:
    chars = [secrets.choice(_RECOVERY_ALPHABET) for _ in range(2 * _RECOVERY_HALF)]
    return "".join(chars[:_RECOVERY_HALF]) + "-" + "".join(chars[_RECOVERY_HALF:])


def remove_mfa(s: Session, user_id: str) -> bool:
    """Drops TOTP and recovery codes; True when there was an enrolment."""
    had = s.get(TotpRow, user_id) is not None
    s.execute(delete(TotpRow).where(TotpRow.user_id == user_id))
    s.execute(delete(RecoveryCodeRow).where(RecoveryCodeRow.user_id == user_id))
    return had


def bump_epoch(s: Session, user_id: str) -> None:
    s.execute(
        update(UserRow)
        .where(UserRow.id == user_id)
        .values(privilege_epoch=UserRow.privilege_epoch + 1)
    )


class MfaService:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        authorizer: Authorizer,
        pepper: Pepper,
        clock: Clock = utc_now,
        issuer: str = "Searchgate",
    ) -> None:
        self.db = db
        self.audit = audit
        self.authorizer = authorizer
        self.pepper = pepper
        self.clock = clock
        self.issuer = issuer

    def _recovery_digest(self, user_id: str, code: str) -> bytes:
        return self.pepper.digest(f"recovery:{user_id}:{_normalize(code)}")

    @staticmethod
    def _self_only(actor: Actor) -> str:
        if actor.kind is not CredentialKind.SESSION or actor.user_id is None:
            raise Forbidden("MFA is managed by its owner, signed in to the console")
        return actor.user_id

    def status(self, user_id: str) -> MfaStatus:
        with self.db.read() as s:
            row = s.get(TotpRow, user_id)
            left = s.scalar(
                select(func.count())
                .select_from(RecoveryCodeRow)
                .where(RecoveryCodeRow.user_id == user_id, RecoveryCodeRow.used_at.is_(None))
            )
        confirmed = row is not None and row.confirmed_at is not None
        return MfaStatus(
            enrolled=confirmed,
            enrolled_at=row.confirmed_at if row is not None and confirmed else None,
            recovery_codes_left=int(left or 0),
        )

    def begin_enrolment(self, actor: Actor) -> Enrolment:
        """A new secret, pending until ``confirm_enrolment`` sees a code made with it."""
        user_id = self._self_only(actor)
        secret = pyotp.random_base32()
        now = self.clock()
        with self.db.write() as s:
            row = s.get(TotpRow, user_id)
            if row is not None and row.confirmed_at is not None:
                raise Conflict("MFA is enrolled already; turn it off first to enrol a new device")
            if row is None:
                s.add(TotpRow(user_id=user_id, secret=secret, created_at=now))
            else:
                row.secret = secret
                row.created_at = now
                row.last_used_step = None
        uri = pyotp.TOTP(secret).provisioning_uri(
            name=actor.email or user_id, issuer_name=self.issuer
        )
        return Enrolment(secret=secret, provisioning_uri=uri)

    def confirm_enrolment(self, actor: Actor, code: str) -> list[str]:
        """Turns MFA on when ``code`` matches; returns the recovery codes, shown once.
        The user's sessions get new ids on their next request (privileges changed)."""
        user_id = self._self_only(actor)
        now = self.clock()
        codes: list[str] = []
        with self.audit.transaction() as s:
            row = s.get(TotpRow, user_id, with_for_update=True)
            if row is None or row.confirmed_at is not None:
                raise Conflict("start the enrolment first", field="code")
            step = self._match_step(row, code, now)
            if step is None:
                self.audit.record(
                    s,
                    actor,
                    Action.MFA_ENROL,
                    target=actor.email or user_id,
                    outcome=Outcome.FAILURE,
                    details={"reason": "code did not match"},
                )
            else:
                row.confirmed_at = now
                row.last_used_step = step
                codes = self._new_recovery_codes(s, user_id, now)
                bump_epoch(s, user_id)
                self.audit.record(s, actor, Action.MFA_ENROL, target=actor.email or user_id)
        if not codes:
            raise InvalidInput(
                "the code does not match; check the device's clock and try the next code",
                field="code",
            )
        return codes

    def regenerate_recovery_codes(self, actor: Actor) -> list[str]:
        """New codes replace all old ones (used or not). Needs a recent re-authentication."""
        user_id = self._self_only(actor)
        self._require_reauth(actor)
        now = self.clock()
        with self.audit.transaction() as s:
            row = s.get(TotpRow, user_id)
            if row is None or row.confirmed_at is None:
                raise Conflict("MFA is not enrolled")
            codes = self._new_recovery_codes(s, user_id, now)
            self.audit.record(s, actor, Action.MFA_RECOVERY_CODES, target=actor.email or user_id)
        return codes

    def disable_own(self, actor: Actor) -> None:
        """Turns one's own MFA off. Needs a recent re-authentication."""
        user_id = self._self_only(actor)
        self._require_reauth(actor)
        with self.audit.transaction() as s:
            if not remove_mfa(s, user_id):
                raise NotFound("MFA is not enrolled")
            bump_epoch(s, user_id)
            self.audit.record(s, actor, Action.MFA_DISABLE, target=actor.email or user_id)

    def _require_reauth(self, actor: Actor) -> None:
        if not self.authorizer.reauthenticated(actor):
            raise ReauthenticationRequired("confirm your password or a TOTP code first")

    # --- checking codes (for the sign-in service) --------------------------------

    def _match_step(self, row: TotpRow, code: str, now: datetime) -> int | None:
        code = _normalize(code)
        if len(code) != DIGITS or not code.isdigit():
            return None
        totp = pyotp.TOTP(row.secret, digits=DIGITS, interval=STEP_SECONDS)
        current = int(now.timestamp()) // STEP_SECONDS
        for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
            if row.last_used_step is not None and step <= row.last_used_step:
                continue
            if hmac.compare_digest(totp.generate_otp(step), code):
                return step
        return None

    def enrolled(self, s: Session, user_id: str) -> bool:
        row = s.get(TotpRow, user_id)
        return row is not None and row.confirmed_at is not None

    def consume(self, s: Session, user_id: str, code: str, now: datetime) -> str | None:
        """Checks a TOTP or recovery code inside the caller's write transaction and
        uses it up. Returns "totp", "recovery", or None when it does not match (or was
        used before)."""
        row = s.get(TotpRow, user_id, with_for_update=True)
        if row is None or row.confirmed_at is None:
            return None
        step = self._match_step(row, code, now)
        if step is not None:
            row.last_used_step = step
            return "totp"
        if len(_normalize(code)) != 2 * _RECOVERY_HALF:
            return None
        used = s.execute(
            update(RecoveryCodeRow)
            .where(
                RecoveryCodeRow.digest == self._recovery_digest(user_id, code),
                RecoveryCodeRow.user_id == user_id,
                RecoveryCodeRow.used_at.is_(None),
            )
            .values(used_at=now)
        )
        return "recovery" if getattr(used, "rowcount", 0) == 1 else None

    def _new_recovery_codes(self, s: Session, user_id: str, now: datetime) -> list[str]:
        s.execute(delete(RecoveryCodeRow).where(RecoveryCodeRow.user_id == user_id))
        codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
        for code in codes:
            s.add(
                RecoveryCodeRow(
                    digest=self._recovery_digest(user_id, code), user_id=user_id, created_at=now
                )
            )
        return codes
