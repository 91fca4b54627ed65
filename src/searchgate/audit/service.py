"""The change log: recording events (and refusals) in the caller's transaction,
reading with filters, CSV export and chain verification. Who may do what is the
Authorizer's (``searchgate.authorizer``)."""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from searchgate.audit.chain import AuditKey, ChainChecker, Problem
from searchgate.audit.events import (
    CSV_COLUMNS,
    AuditEvent,
    AuditFilter,
    AuditPage,
    event_of,
    filter_details,
)
from searchgate.audit.models import AuditEventRow, AuditHeadRow
from searchgate.audit.tags import Action, Outcome, check_action
from searchgate.clock import Clock, utc_now
from searchgate.db import Database
from searchgate.errors import Forbidden, InvalidInput
from searchgate.logs import redact
from searchgate.permissions import Actor, Permission

log = logging.getLogger("searchgate.audit")

MAX_PAGE = 500
_PENDING = "searchgate.audit.pending"
# Details are free-form, but a secret must never reach them: these names are refused
# outright, as is anything shaped like a Searchgate key or token.
_SECRET_NAMES = re.compile(r"password|secret|recovery|totp|otp|cookie", re.IGNORECASE)
_SECRET_VALUES = re.compile(r"sg[kp]_[0-9A-Za-z]{16,}")

__all__ = ["AuditEvent", "AuditFilter", "AuditLog", "AuditPage", "VerifyReport"]


@dataclass(frozen=True)
class VerifyReport:
    checked: int
    last_seq: int
    last_mac: str
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def anchor(self) -> str:
        """Write this down (or ship it elsewhere): ``verify(anchor=...)`` later proves
        that no event up to here was removed, even together with the head."""
        return f"{self.last_seq}:{self.last_mac}"


def _check_details(details: dict[str, Any]) -> str:
    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if _SECRET_NAMES.search(str(k)):
                    raise ValueError(f"audit details may not hold {path}{k!s}: it names a secret")
                walk(v, f"{path}{k}.")
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v, path)
        elif isinstance(value, str) and _SECRET_VALUES.search(value):
            raise ValueError(f"audit details {path.rstrip('.')} hold something shaped like a key")

    walk(details, "")
    return orjson.dumps(details, option=orjson.OPT_SORT_KEYS).decode()


def _cut(value: str | None, size: int) -> str | None:
    return None if value is None else value[:size]


class AuditLog:
    def __init__(
        self,
        db: Database,
        key: AuditKey,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.key = key
        self.clock = clock

    # --- writing -----------------------------------------------------------------

    @staticmethod
    def lock(s: Session) -> AuditHeadRow:
        """Takes the chain's row lock for the rest of the transaction."""
        return s.execute(
            select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
        ).scalar_one()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction that takes the chain's lock first.

        Every transaction that records an event takes this lock, so taking it first
        gives one lock order (no deadlock between, say, a sign-in and a role change
        on PostgreSQL), and the checks that follow (the last-admin guard) see every
        earlier change. The one exception: the catalog's change lock is taken
        before it (``CatalogService.delete_collection_in`` inside ``db.write()``).
        """
        with self.db.write() as s:
            self.lock(s)
            yield s

    def record(
        self,
        s: Session,
        actor: Actor,
        action: Action | str,
        *,
        target: str | None = None,
        outcome: Outcome = Outcome.SUCCESS,
        details: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> int:
        """Appends one event in the caller's transaction; returns its sequence number.
        It commits, or rolls back, with the change it describes."""
        check_action(str(action))
        head = self.lock(s)
        row = AuditEventRow(
            seq=head.seq + 1,
            occurred_at=now or self.clock(),
            actor_kind=actor.kind.value,
            actor_user_id=actor.user_id,
            actor_name=actor.name[:320],
            actor_email=_cut(actor.email, 320),
            actor_token_id=actor.token_id,
            actor_session_id=actor.session_id,
            action=str(action),
            target=_cut(target, 320),
            outcome=Outcome(outcome).value,
            ip=_cut(actor.ip, 64),
            # A header the caller chose: a key pasted into it must not enter the log.
            user_agent=_cut(redact(actor.user_agent) if actor.user_agent else None, 512),
            details_json=_check_details(details or {}),
            key_id=self.key.id,
            prev_mac=head.mac,
        )
        row.mac = self.key.mac(row)
        s.add(row)
        head.seq = row.seq
        head.mac = row.mac
        s.info.setdefault(_PENDING, []).append(row)
        return row.seq

    def record_now(
        self,
        actor: Actor,
        action: Action | str,
        *,
        target: str | None = None,
        outcome: Outcome = Outcome.SUCCESS,
        details: dict[str, Any] | None = None,
    ) -> int:
        """An event with no change beside it (a refusal, a failed attempt)."""
        with self.transaction() as s:
            return self.record(s, actor, action, target=target, outcome=outcome, details=details)

    def record_refusal(
        self,
        actor: Actor,
        permission: Permission,
        action: Action | str,
        *,
        target: str | None = None,
    ) -> Forbidden:
        """Records that ``actor`` was refused ``action`` for lack of ``permission``;
        returns the error to raise, marked as recorded."""
        reason = (
            "MFA enrolment required first"
            if actor.mfa_enrolment_required
            else f"lacks {permission.value}"
        )
        self.record_now(
            actor,
            action,
            target=target,
            outcome=Outcome.DENIED,
            details={"permission": permission.value, "reason": reason},
        )
        err = Forbidden(
            f"this {actor.kind.value.replace('_', ' ')} lacks the permission "
            f"{permission.value!r}"
            + (" (enrol in MFA first)" if actor.mfa_enrolment_required else ""),
            permission=permission.value,
        )
        err.recorded = True
        return err

    # --- reading -----------------------------------------------------------------

    def query(
        self,
        actor: Actor,
        filters: AuditFilter = AuditFilter(),
        *,
        before: int | None = None,
        limit: int = 50,
    ) -> AuditPage:
        """Newest first; ``before`` is the ``next_before`` of the previous page."""
        self._may_read(actor, Action.AUDIT_READ)
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit is 1 to {MAX_PAGE}", field="limit")
        q = filters.apply(select(AuditEventRow))
        if before is not None:
            q = q.where(AuditEventRow.seq < before)
        q = q.order_by(AuditEventRow.seq.desc()).limit(limit + 1)
        with self.db.read() as s:
            rows = list(s.scalars(q))
        events = [event_of(r) for r in rows[:limit]]
        more = len(rows) > limit
        return AuditPage(events=events, next_before=events[-1].seq if more and events else None)

    def count(self, actor: Actor, filters: AuditFilter = AuditFilter()) -> int:
        self._may_read(actor, Action.AUDIT_READ)
        q = filters.apply(select(func.count()).select_from(AuditEventRow))
        with self.db.read() as s:
            return int(s.scalar(q) or 0)

    def export_csv(self, actor: Actor, filters: AuditFilter = AuditFilter()) -> Iterator[str]:
        """CSV text in chunks, oldest first. The export itself is recorded first."""
        self._may_read(actor, Action.AUDIT_EXPORT)
        self.record_now(actor, Action.AUDIT_EXPORT, details=filter_details(filters))
        return self._csv_chunks(filters)

    def _may_read(self, actor: Actor, action: Action) -> None:
        # The Authorizer records its refusals here, so the log checks its own readers.
        if not actor.has(Permission.AUDIT_READ):
            raise self.record_refusal(actor, Permission.AUDIT_READ, action)

    def _csv_chunks(self, filters: AuditFilter, batch: int = 1000) -> Iterator[str]:
        buf = io.StringIO()
        writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        after = 0
        while True:
            q = filters.apply(select(AuditEventRow)).where(AuditEventRow.seq > after)
            with self.db.read() as s:
                rows = list(s.scalars(q.order_by(AuditEventRow.seq).limit(batch)))
            for row in rows:
                writer.writerow(event_of(row).csv_row())
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
            if len(rows) < batch:
                return
            after = rows[-1].seq

    # --- verifying ---------------------------------------------------------------

    def verify(self, anchor: str | None = None, batch: int = 2000) -> VerifyReport:
        """Recomputes every MAC and link. ``anchor`` ("seq:mac", from an earlier
        report) also catches removal of the newest events together with the head."""
        checker = ChainChecker(self.key)
        with self.db.read() as s:
            head = s.get(AuditHeadRow, 1)
        # The head is read first: events appended while we walk are checked like the
        # rest, and cannot be mistaken for a mismatch with a head read later.
        expect: dict[int, tuple[str, str]] = {}
        if head is not None and head.seq:
            expect[head.seq] = ("head", head.mac)
        if anchor:
            seq, mac = _parse_anchor(anchor)
            expect[seq] = ("anchor", mac)
        seen: dict[int, str] = {}
        after = 0
        while True:
            with self.db.read() as s:
                rows = list(
                    s.scalars(
                        select(AuditEventRow)
                        .where(AuditEventRow.seq > after)
                        .order_by(AuditEventRow.seq)
                        .limit(batch)
                    )
                )
            for row in rows:
                checker.feed(row)
                if row.seq in expect:
                    seen[row.seq] = row.mac
            if len(rows) < batch:
                break
            after = rows[-1].seq
        problems = list(checker.problems)
        for seq, (kind, mac) in sorted(expect.items()):
            if seen.get(seq) == mac:
                continue
            if kind == "head":
                message = (
                    f"the head records event {seq}, but the log "
                    + ("ends before it" if seq not in seen else "holds another event there")
                    + ": the newest events were deleted, or the head was edited"
                )
            else:
                message = (
                    f"event {seq} no longer carries the MAC recorded in the anchor: "
                    "the log was cut back or rewritten since"
                )
            problems.append(Problem(seq, kind, message))
        return VerifyReport(checker.checked, checker.last_seq, checker.last_mac, problems)


def _parse_anchor(anchor: str) -> tuple[int, str]:
    seq, _, mac = anchor.partition(":")
    if not seq.isdigit() or len(mac) != 64:
        raise InvalidInput("an anchor looks like '<seq>:<64 hex characters>'", field="anchor")
    return int(seq), mac.lower()


@event.listens_for(Session, "after_commit")
def _log_committed(session: Session) -> None:
    # Only committed events reach the log; control characters are escaped there too.
    rows: list[AuditEventRow] = session.info.pop(_PENDING, [])
    for row in rows:
        if log.isEnabledFor(logging.INFO):
            log.info(event_of(row).log_line())


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, _previous: Any) -> None:
    session.info.pop(_PENDING, None)
