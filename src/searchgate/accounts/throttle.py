"""Throttling of sign-in, MFA and re-authentication attempts, kept in the database so
that every server process (and node) counts the same attempts.

The numbers (docs/security.md repeats them):

* per account (an email address for passwords, a user for TOTP codes): the first
  5 failures cost nothing; after that each attempt must wait 1 minute after the
  last failure, doubling with every further failure up to 15 minutes. Success resets
  the count; so do 24 hours without a failure. An account is never locked for good:
  the wait is at most 15 minutes after the last failure.
* per IP address: 30 failures within a 15-minute window block that address until
  the window ends.

Attempts refused while waiting are not counted, so an attacker cannot stretch the
wait. An attempt is counted as a failure *before* the password is checked and undone
on success: parallel guesses cannot slip past the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from searchgate.accounts.common import subject_hash
from searchgate.accounts.models import ThrottleRow
from searchgate.clock import aware

SIGNIN_ACCOUNT = "signin:account"
MFA_ACCOUNT = "mfa:account"
IP = "ip"


@dataclass(frozen=True)
class ThrottlePolicy:
    account_free_failures: int = 5
    account_base_delay: timedelta = timedelta(minutes=1)
    account_max_delay: timedelta = timedelta(minutes=15)
    account_forget_after: timedelta = timedelta(hours=24)
    ip_max_failures: int = 30
    ip_window: timedelta = timedelta(minutes=15)

    def account_delay(self, failures: int) -> timedelta:
        """The wait after the ``failures``-th failure (zero while still free)."""
        if failures < self.account_free_failures:
            return timedelta(0)
        doublings = min(failures - self.account_free_failures, 30)
        return min(self.account_base_delay * (1 << doublings), self.account_max_delay)


@dataclass(frozen=True)
class Subject:
    scope: str
    value: str

    @property
    def key(self) -> str:
        return subject_hash(f"{self.scope}\x00{self.value}")


def account(email_or_user: str, scope: str = SIGNIN_ACCOUNT) -> Subject:
    return Subject(scope, email_or_user)


def ip(address: str | None) -> Subject:
    return Subject(IP, address or "unknown")


class Throttle:
    def __init__(self, policy: ThrottlePolicy = ThrottlePolicy()) -> None:
        self.policy = policy

    def _row(self, s: Session, subject: Subject, now: datetime) -> ThrottleRow:
        insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
        s.execute(
            insert(ThrottleRow)
            .values(
                scope=subject.scope,
                subject=subject.key,
                failures=0,
                window_start=now,
                last_failure_at=now,
            )
            .on_conflict_do_nothing()
        )
        return s.execute(
            select(ThrottleRow)
            .where(ThrottleRow.scope == subject.scope, ThrottleRow.subject == subject.key)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one()

    def _wait(self, row: ThrottleRow, now: datetime) -> timedelta:
        p = self.policy
        if row.scope == IP:
            end = aware(row.window_start) + p.ip_window
            if row.failures >= p.ip_max_failures and now < end:
                return end - now
            return timedelta(0)
        last = aware(row.last_failure_at)
        if now - last > p.account_forget_after:
            return timedelta(0)
        until = last + p.account_delay(row.failures)
        return until - now if now < until else timedelta(0)

    def reserve(self, s: Session, subjects: list[Subject], now: datetime) -> timedelta:
        """Counts one attempt as a failure for every subject and returns zero, or
        returns how long to wait (counting nothing) when any subject must wait."""
        rows = [self._row(s, subject, now) for subject in subjects]
        wait = max((self._wait(r, now) for r in rows), default=timedelta(0))
        if wait > timedelta(0):
            return wait
        p = self.policy
        for row in rows:
            if row.scope == IP:
                if now >= aware(row.window_start) + p.ip_window or row.failures == 0:
                    row.failures = 0
                    row.window_start = now
            elif now - aware(row.last_failure_at) > p.account_forget_after:
                row.failures = 0
            row.failures += 1
            row.last_failure_at = now
        return timedelta(0)

    def succeeded(self, s: Session, subjects: list[Subject], now: datetime) -> None:
        """Undoes the reservation: accounts start again from zero, an address gets
        back the one failure counted for this attempt."""
        for subject in subjects:
            if subject.scope == IP:
                row = self._row(s, subject, now)
                row.failures = max(0, row.failures - 1)
            else:
                s.execute(
                    delete(ThrottleRow).where(
                        ThrottleRow.scope == subject.scope, ThrottleRow.subject == subject.key
                    )
                )
