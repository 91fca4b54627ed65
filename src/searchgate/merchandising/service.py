"""An area's merchandising: one draft that merchandisers edit, published versions
that shoppers get, rollback to any earlier version.

- The draft carries a revision, one more on every change; a caller that passes the
  revision it last read (``expected_revision``) gets a Conflict when someone else
  changed the draft meanwhile, instead of overwriting their work.
- An area whose draft was never edited has the live document as its draft
  (revision 0): it follows whatever is published until someone edits it.
- Publishing freezes the draft as the next version (1, 2, 3 ... per area); a draft
  with no change against the live version is refused. A rollback publishes an earlier
  version's document again as a new version, and leaves the draft as it is.
- Reading needs ``console:areas:read``, editing ``console:merchandising:edit``,
  publishing and rolling back ``console:merchandising:publish``; a person whose role
  lists areas works in those only. Every change, and every refusal, is in the change
  log, with the objects and versions it names (never whole documents).
- The data plane asks ``live(area)``: cached per process for ``cache_seconds``, so a
  search reads the database about once a second per area, and then only the version
  number unless a new version was published.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from searchgate.audit import AuditLog
from searchgate.audit.tags import Action, Outcome
from searchgate.authorizer import Authorizer
from searchgate.catalog.areas import AreaService
from searchgate.catalog.models import AreaRow
from searchgate.catalog.validation import COLLECTION_NAME
from searchgate.clock import Clock, Monotonic, aware, utc_now
from searchgate.db import Database
from searchgate.errors import Conflict, Forbidden, InvalidInput, NotFound
from searchgate.logs import redact
from searchgate.merchandising import edits
from searchgate.merchandising.diff import Change, diff
from searchgate.merchandising.document import EMPTY, MerchandisingDocument
from searchgate.merchandising.edits import Edited
from searchgate.merchandising.inputs import model_of, storable
from searchgate.merchandising.models import (
    ACTOR_CHARS,
    NOTE_CHARS,
    MerchDraftRow,
    MerchVersionRow,
)
from searchgate.permissions import Actor, Permission

__all__ = [
    "Change",
    "Draft",
    "MerchandisingService",
    "Published",
    "Version",
]

MAX_VERSIONS_PAGE = 500
MAX_NUMBER = 2**31 - 1  # the number columns' range on PostgreSQL
# Areas whose live version is cached; past this (only names that were never areas
# can get there) the cache starts afresh.
MAX_CACHED_AREAS = 1_000
AREA_REFUSED = "the area is not open to this role"
_NOTE_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Draft:
    area: str
    document: MerchandisingDocument
    revision: int  # +1 on every draft change; 0 for a draft never edited
    updated_at: datetime | None
    updated_by: str | None  # actor label
    live_number: int | None  # the live version when read
    changed: bool  # the draft differs from the live version (or from empty when none)

    def to_dict(self) -> dict[str, Any]:
        """As the admin API and ``searchgate merch --json`` show it."""
        return {
            "area": self.area,
            "revision": self.revision,
            "updatedAt": self.updated_at,
            "updatedBy": self.updated_by,
            "liveVersion": self.live_number,
            "changed": self.changed,
            "document": self.document.wire(),
        }


@dataclass(frozen=True)
class Version:
    area: str
    number: int
    document: MerchandisingDocument
    published_at: datetime
    published_by: str  # actor label
    note: str
    rollback_of: int | None  # set when this version is a rollback to version N

    def summary(self) -> dict[str, Any]:
        """As a list of versions shows it (without the document)."""
        return {
            "number": self.number,
            "publishedAt": self.published_at,
            "publishedBy": self.published_by,
            "note": self.note,
            "rollbackOf": self.rollback_of,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "area": self.area, "document": self.document.wire()}


@dataclass(frozen=True)
class Published:
    """What the data plane needs: the same object until another version is live."""

    number: int
    document: MerchandisingDocument


@dataclass(frozen=True)
class _Cached:
    until: float
    published: Published | None


# An edit of the draft: from the current document (and the live version) to the new
# document and the change log details that name what changed (merchandising.edits).
Edit = Callable[[MerchandisingDocument, "Published | None"], Edited]


def _load(data: dict[str, Any]) -> MerchandisingDocument:
    return MerchandisingDocument.model_validate(data)


def _valid_area(area: str) -> bool:
    return COLLECTION_NAME.fullmatch(area) is not None


def _target(area: str) -> str:
    """The area as the change log names it; a name that is no area's is escaped, so
    that what a caller put in a path (a NUL) cannot break the log's write."""
    return area if _valid_area(area) else area.encode("unicode_escape").decode("ascii")[:80]


def _check_revision(current: int, expected: int | None) -> None:
    if expected is not None and expected != current:
        raise Conflict(
            f"the draft is at revision {current}, not {expected}: someone changed it "
            "meanwhile; read it again and make your change on top",
            field="expectedRevision",
            revision=current,
        )


def _check_note(note: str) -> str:
    note = note.strip()
    if len(note) > NOTE_CHARS:
        raise InvalidInput(f"a note has at most {NOTE_CHARS} characters", field="note")
    if _NOTE_CONTROL.search(note):
        raise InvalidInput("a note holds no control characters (lines are fine)", field="note")
    return note


class MerchandisingService:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        authorizer: Authorizer,
        areas: AreaService,
        clock: Clock = utc_now,
        cache_seconds: float = 1.0,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self.db = db
        self.audit = audit
        self.authorizer = authorizer
        self.areas = areas
        self.clock = clock
        self.cache_seconds = cache_seconds
        self.monotonic = monotonic
        self._live: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    # --- who may --------------------------------------------------------------------

    def authorize(self, actor: Actor, permission: Permission, action: Action, area: str) -> None:
        """Raises Forbidden (recorded) unless ``actor`` holds ``permission`` and the area
        is open to them. Every method checks; the API asks first too, so that a refusal
        comes before anything a request sent is read."""
        self.authorizer.authorize(actor, permission, action, target=_target(area))
        if not actor.can_access_area(area):
            self.audit.record_now(
                actor,
                action,
                target=_target(area),
                outcome=Outcome.DENIED,
                details={"reason": AREA_REFUSED},
            )
            refused = Forbidden(f"your role does not open the area {area!r}", field="area")
            refused.recorded = True
            raise refused

    def check_preview(self, actor: Actor, area: str, draft: bool) -> None:
        """Searching with an area's merchandising (a preview) needs
        ``console:search:preview`` and the area; with its draft, reading it too."""
        self.authorize(actor, Permission.SEARCH_PREVIEW, Action.MERCH_READ, area)
        if draft:
            self.authorize(actor, Permission.AREAS_READ, Action.MERCH_READ, area)

    def _area(self, s: Session, area: str) -> None:
        if not _valid_area(area) or s.get(AreaRow, area) is None:
            known = ", ".join(a.name for a in self.areas.list_areas()) or "none"
            raise NotFound(f"area {area!r} does not exist (areas: {known})", field="area")

    # --- reading --------------------------------------------------------------------

    def draft(self, actor: Actor, area: str) -> Draft:
        self.authorize(actor, Permission.AREAS_READ, Action.MERCH_READ, area)
        with self.db.read() as s:
            self._area(s, area)
            row = s.get(MerchDraftRow, area)
            return self._draft_of(area, row, _live_in(s, area))

    def versions(self, actor: Actor, area: str, limit: int = 50) -> list[Version]:
        """Newest first."""
        self.authorize(actor, Permission.AREAS_READ, Action.MERCH_READ, area)
        if not 1 <= limit <= MAX_VERSIONS_PAGE:
            raise InvalidInput(f"limit is 1 to {MAX_VERSIONS_PAGE}", field="limit")
        with self.db.read() as s:
            self._area(s, area)
            rows = s.scalars(
                select(MerchVersionRow)
                .where(MerchVersionRow.area == area)
                .order_by(MerchVersionRow.number.desc())
                .limit(limit)
            )
            return [_version(r) for r in rows]

    def live_version(self, actor: Actor, area: str) -> Version | None:
        """The version shoppers get now (None: nothing published), read afresh."""
        self.authorize(actor, Permission.AREAS_READ, Action.MERCH_READ, area)
        with self.db.read() as s:
            self._area(s, area)
            row = _newest(s, area)
            return None if row is None else _version(row)

    def version(self, actor: Actor, area: str, number: int) -> Version:
        self.authorize(actor, Permission.AREAS_READ, Action.MERCH_READ, area)
        with self.db.read() as s:
            self._area(s, area)
            return _version(_version_row(s, area, number))

    # --- editing the draft ----------------------------------------------------------

    def save_draft(
        self,
        actor: Actor,
        area: str,
        document: MerchandisingDocument,
        expected_revision: int | None = None,
        *,
        imported: bool = False,
    ) -> Draft:
        """The whole draft becomes ``document`` (``imported``: from an export file,
        recorded as an import)."""
        action = Action.MERCH_IMPORT if imported else Action.MERCH_DRAFT_UPDATE
        self.authorize(actor, Permission.MERCH_EDIT, action, area)
        storable(document)
        return self._edit(
            actor, area, action, expected_revision, lambda cur, _: edits.replace_all(cur, document)
        )

    def put_object(
        self,
        actor: Actor,
        area: str,
        kind: str,
        obj: Any,
        expected_revision: int | None = None,
        *,
        replacing: str | None = None,
    ) -> Draft:
        """Creates or replaces the object of ``kind`` named ``obj.name``; with
        ``replacing``, the object of that name is renamed (it keeps its place)."""
        self.authorize(actor, Permission.MERCH_EDIT, Action.MERCH_DRAFT_UPDATE, area)
        model_of(kind)
        return self._edit(
            actor,
            area,
            Action.MERCH_DRAFT_UPDATE,
            expected_revision,
            lambda cur, _: edits.put(cur, kind, obj, replacing),
        )

    def delete_object(
        self,
        actor: Actor,
        area: str,
        kind: str,
        name: str,
        expected_revision: int | None = None,
    ) -> Draft:
        self.authorize(actor, Permission.MERCH_EDIT, Action.MERCH_DRAFT_UPDATE, area)
        model_of(kind)
        return self._edit(
            actor,
            area,
            Action.MERCH_DRAFT_UPDATE,
            expected_revision,
            lambda cur, _: edits.remove(cur, kind, name),
        )

    def set_default_profile(
        self,
        actor: Actor,
        area: str,
        name: str | None,
        expected_revision: int | None = None,
    ) -> Draft:
        """The biasing profile that applies when a request names none (None: no
        profile applies unless asked for)."""
        self.authorize(actor, Permission.MERCH_EDIT, Action.MERCH_DRAFT_UPDATE, area)
        return self._edit(
            actor,
            area,
            Action.MERCH_DRAFT_UPDATE,
            expected_revision,
            lambda cur, _: edits.set_default(cur, name),
        )

    def discard_draft(self, actor: Actor, area: str) -> Draft:
        """The draft becomes the live document again (empty when nothing is live)."""
        self.authorize(actor, Permission.MERCH_EDIT, Action.MERCH_DRAFT_DISCARD, area)

        def back_to_live(current: MerchandisingDocument, live: Published | None) -> Edited:
            target = live.document if live is not None else EMPTY
            return target, {"changes": len(diff(target, current))}

        return self._edit(actor, area, Action.MERCH_DRAFT_DISCARD, None, back_to_live)

    def _edit(
        self,
        actor: Actor,
        area: str,
        action: Action,
        expected_revision: int | None,
        edit: Edit,
    ) -> Draft:
        with self.audit.transaction() as s:
            self._area(s, area)
            row = s.get(MerchDraftRow, area)
            live = _live_in(s, area)
            _check_revision(row.revision if row is not None else 0, expected_revision)
            current = _draft_document(row, live)
            document, details = edit(current, live)
            wire = storable(document)
            if wire == current.wire():
                return self._draft_of(area, row, live)
            now = self.clock()
            label = actor.label[:ACTOR_CHARS]
            if row is None:
                row = MerchDraftRow(
                    area=area, document=wire, revision=1, updated_at=now, updated_by=label
                )
                s.add(row)
            else:
                row.document = wire
                row.revision += 1
                row.updated_at = now
                row.updated_by = label
            s.flush()
            self.audit.record(
                s, actor, action, target=area, details={**details, "revision": row.revision}
            )
            return self._draft_of(area, row, live, document)

    # --- publishing -----------------------------------------------------------------

    def publish(
        self,
        actor: Actor,
        area: str,
        note: str = "",
        expected_revision: int | None = None,
    ) -> Version:
        """The draft becomes the next version, live at once in this process and
        within ``cache_seconds`` in every other."""
        self.authorize(actor, Permission.MERCH_PUBLISH, Action.MERCH_PUBLISH, area)
        note = _check_note(note)
        with self.audit.transaction() as s:
            self._area(s, area)
            row = s.get(MerchDraftRow, area)
            live = _live_in(s, area)
            revision = row.revision if row is not None else 0
            _check_revision(revision, expected_revision)
            document = _draft_document(row, live)
            changes = diff(live.document if live is not None else EMPTY, document)
            if not changes:
                raise Conflict(
                    f"nothing to publish: the draft is the same as the live version {live.number}"
                    if live is not None
                    else "nothing to publish: the draft is empty and nothing is live yet",
                    field="draft",
                )
            version = self._add_version(s, actor, area, document, note, None, live)
            self.audit.record(
                s,
                actor,
                Action.MERCH_PUBLISH,
                target=area,
                details={
                    "version": version.number,
                    "changes": len(changes),
                    "revision": revision,
                    "note": redact(note),
                },
            )
        self._forget_live(area)
        return version

    def rollback(self, actor: Actor, area: str, number: int, note: str = "") -> Version:
        """Version ``number``'s document becomes live again, as a new version."""
        self.authorize(actor, Permission.MERCH_PUBLISH, Action.MERCH_ROLLBACK, area)
        note = _check_note(note)
        with self.audit.transaction() as s:
            self._area(s, area)
            target = _version_row(s, area, number)
            live = _live_in(s, area)
            document = _load(target.document)
            changes = diff(live.document if live is not None else EMPTY, document)
            if not changes:
                raise Conflict(
                    f"version {number} is what is live already (version "
                    f"{live.number if live is not None else number}): nothing to roll back",
                    field="number",
                )
            version = self._add_version(s, actor, area, document, note, number, live)
            self.audit.record(
                s,
                actor,
                Action.MERCH_ROLLBACK,
                target=area,
                details={
                    "version": version.number,
                    "rollbackOf": number,
                    "changes": len(changes),
                    "note": redact(note),
                },
            )
        self._forget_live(area)
        return version

    def _add_version(
        self,
        s: Session,
        actor: Actor,
        area: str,
        document: MerchandisingDocument,
        note: str,
        rollback_of: int | None,
        live: Published | None,
    ) -> Version:
        row = MerchVersionRow(
            area=area,
            number=(live.number if live is not None else 0) + 1,
            document=document.wire(),
            published_at=self.clock(),
            published_by=actor.label[:ACTOR_CHARS],
            note=note,
            rollback_of=rollback_of,
        )
        s.add(row)
        s.flush()
        return _version(row, document)

    # --- the data plane -------------------------------------------------------------

    def live(self, area: str) -> Published | None:
        """The live version of ``area`` (None: nothing published), as this process saw
        it at most ``cache_seconds`` ago."""
        entry = self._live.get(area)
        if entry is not None and entry.until > self.monotonic():
            return entry.published
        with self._lock:
            now = self.monotonic()
            entry = self._live.get(area)
            if entry is not None and entry.until > now:
                return entry.published
            published = self._read_live(area, entry.published if entry is not None else None)
            if len(self._live) >= MAX_CACHED_AREAS:
                self._live = {}
            self._live[area] = _Cached(now + self.cache_seconds, published)
            return published

    def _read_live(self, area: str, known: Published | None) -> Published | None:
        if not _valid_area(area):
            return None
        with self.db.read() as s:
            number = s.scalar(
                select(func.max(MerchVersionRow.number)).where(MerchVersionRow.area == area)
            )
            if number is None:
                return None
            if known is not None and known.number == number:
                return known
            row = s.get(MerchVersionRow, (area, number))
            if row is None:
                return None
            return Published(number, _load(row.document))

    def _forget_live(self, area: str) -> None:
        with self._lock:
            self._live.pop(area, None)

    def draft_document(self, area: str) -> MerchandisingDocument:
        """The draft as it is now (uncached): what a preview of the draft searches with.
        Callers check who may see it."""
        if not _valid_area(area):
            return EMPTY
        with self.db.read() as s:
            return _draft_document(s.get(MerchDraftRow, area), _live_in(s, area))

    # --- areas renamed and deleted (AreaService's hooks, in its transaction) ----------

    @staticmethod
    def rename_area(s: Session, old: str, new: str) -> None:
        for table in (MerchDraftRow, MerchVersionRow):
            s.execute(update(table).where(table.area == old).values(area=new))

    @staticmethod
    def forget_area(s: Session, area: str) -> None:
        for table in (MerchVersionRow, MerchDraftRow):
            s.execute(delete(table).where(table.area == area))

    # --- helpers --------------------------------------------------------------------

    def _draft_of(
        self,
        area: str,
        row: MerchDraftRow | None,
        live: Published | None,
        document: MerchandisingDocument | None = None,
    ) -> Draft:
        if document is None:
            document = _draft_document(row, live)
        live_document = live.document if live is not None else EMPTY
        return Draft(
            area=area,
            document=document,
            revision=row.revision if row is not None else 0,
            updated_at=aware(row.updated_at) if row is not None else None,
            updated_by=row.updated_by if row is not None else None,
            live_number=live.number if live is not None else None,
            changed=bool(diff(live_document, document)),
        )


def _newest(s: Session, area: str) -> MerchVersionRow | None:
    return s.scalar(
        select(MerchVersionRow)
        .where(MerchVersionRow.area == area)
        .order_by(MerchVersionRow.number.desc())
        .limit(1)
    )


def _live_in(s: Session, area: str) -> Published | None:
    row = _newest(s, area)
    return None if row is None else Published(row.number, _load(row.document))


def _draft_document(row: MerchDraftRow | None, live: Published | None) -> MerchandisingDocument:
    if row is not None:
        return _load(row.document)
    return live.document if live is not None else EMPTY


def _version_row(s: Session, area: str, number: int) -> MerchVersionRow:
    row = s.get(MerchVersionRow, (area, number)) if 1 <= number <= MAX_NUMBER else None
    if row is None:
        raise NotFound(f"area {area!r} has no version {number}", field="number")
    return row


def _version(row: MerchVersionRow, document: MerchandisingDocument | None = None) -> Version:
    return Version(
        area=row.area,
        number=row.number,
        document=document if document is not None else _load(row.document),
        published_at=aware(row.published_at),
        published_by=row.published_by,
        note=row.note,
        rollback_of=row.rollback_of,
    )
