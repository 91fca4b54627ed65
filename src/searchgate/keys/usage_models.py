"""Tables of client key usage: request counts per hour and the systems seen per key.

No foreign key to ``client_keys``: usage rows are observations written in bulk by a
background flusher, and one row must never make a whole flush fail. Keys are never
removed (deletion leaves a tombstone), and rows older than the retention go anyway.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from searchgate.db import Base

SYSTEM_MAX = 64
# The name the rotation runner gives its own checks (X-Searchgate-System): they are
# counted as requests, never as a system that uses the key (keys/usage.py).
ROTATION_SYSTEM = "searchgate-rotation"
OUTCOME_MAX = 16


class KeyUsageHourRow(Base):
    """Requests of one key in one UTC hour, by calling system and outcome."""

    __tablename__ = "key_usage_hourly"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    system: Mapped[str] = mapped_column(String(SYSTEM_MAX), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(OUTCOME_MAX), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)

    # The retention deletes by hour across all keys.
    __table_args__ = (Index("ix_key_usage_hourly_hour", "hour"),)


class KeySystemRow(Base):
    """One system (X-Searchgate-System header, else User-Agent) that used a key."""

    __tablename__ = "key_systems"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    system: Mapped[str] = mapped_column(String(SYSTEM_MAX), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    requests: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_key_systems_last_seen_at", "last_seen_at"),)
