"""Tables of merchandising: each area's draft (one row, edited in place) and its
published versions (immutable, numbered 1, 2, 3 ... per area).

Both name their area; a foreign key checked at commit keeps them from outliving it.
It is deferred because an area rename replaces the area's row and only then moves
these rows to the new name (``MerchandisingService.rename_area``), in one transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from searchgate.db import Base, JsonText

# Wide enough for an actor's label: a person's name and the token they used.
ACTOR_CHARS = 400
NOTE_CHARS = 500


def _area_key() -> ForeignKey:
    return ForeignKey("areas.name", deferrable=True, initially="DEFERRED")


class MerchDraftRow(Base):
    __tablename__ = "merch_drafts"

    area: Mapped[str] = mapped_column(String(64), _area_key(), primary_key=True)
    # The document as the API shows it (MerchandisingDocument.wire()).
    document: Mapped[dict[str, Any]] = mapped_column("document_json", JsonText)
    # One more on every change, so that an editor can say which one they saw.
    revision: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(ACTOR_CHARS))


class MerchVersionRow(Base):
    __tablename__ = "merch_versions"

    area: Mapped[str] = mapped_column(String(64), _area_key(), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    document: Mapped[dict[str, Any]] = mapped_column("document_json", JsonText)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    published_by: Mapped[str] = mapped_column(String(ACTOR_CHARS))
    note: Mapped[str] = mapped_column(Text, default="")
    # Set when this version brought back version ``rollback_of``'s document.
    rollback_of: Mapped[int | None] = mapped_column(Integer, nullable=True)
