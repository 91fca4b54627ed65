"""The rotation table: one row per rotation, its step, key ids and store versions.

``active`` is the lock: 1 while a rotation is unfinished (running, or stopped by a
failure), NULL once it finished or was aborted. A unique constraint on it admits one
unfinished rotation at a time, on SQLite and PostgreSQL alike (both allow many NULLs
under a unique constraint), and it is set in the transaction that creates the row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from searchgate.db import Base, JsonText


class RotationRow(Base):
    __tablename__ = "key_rotations"
    __table_args__ = (UniqueConstraint("active", name="uq_key_rotations_active"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    # The last step completed: 0 (none yet) to 6.
    step: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[int | None] = mapped_column(Integer, nullable=True)
    store_kind: Mapped[str] = mapped_column(String(16))
    # Printable, never a secret ("vault:secret/searchgate/client-key").
    store_location: Mapped[str] = mapped_column(String(512))
    old_key_id: Mapped[str] = mapped_column(String(32))
    new_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # New keys taken back because their secret was lost before it reached the store.
    replaced_key_ids: Mapped[list[str]] = mapped_column(
        "replaced_key_ids_json", JsonText, default=lambda: []
    )
    store_version_before: Mapped[str | None] = mapped_column(String(128), nullable=True)
    store_version_after: Mapped[str | None] = mapped_column(String(128), nullable=True)
    options: Mapped[dict[str, Any]] = mapped_column("options_json", JsonText, default=lambda: {})
    # Step name -> {"at": ISO time, ...what the step recorded}.
    steps: Mapped[dict[str, Any]] = mapped_column("steps_json", JsonText, default=lambda: {})
    started_by: Mapped[str] = mapped_column(String(320))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # The run that drives the rotation holds a lease (only its SHA-256 is stored), so
    # that two runs (an overlapping cron job, a second operator) never act at once.
    lease_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    lease_seconds: Mapped[int] = mapped_column(Integer, default=60)
    lease_holder: Mapped[str | None] = mapped_column(String(320), nullable=True)
