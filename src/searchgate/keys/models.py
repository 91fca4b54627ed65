"""The client key table. Only an HMAC digest of a key is ever stored, and for browser
tokens only the public half of the key pair derived from it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from searchgate.db import Base, JsonText


class ClientKeyRow(Base):
    __tablename__ = "client_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    display_prefix: Mapped[str] = mapped_column(String(16))
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    pepper_id: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[str]] = mapped_column("scopes_json", JsonText)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_by: Mapped[str] = mapped_column(String(320), default="")
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    retiring_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # NULL: every collection.
    collections: Mapped[list[str] | None] = mapped_column(
        "collections_json", JsonText, nullable=True
    )
    ip_ranges: Mapped[list[str]] = mapped_column("ip_ranges_json", JsonText, default=lambda: [])
    origins: Mapped[list[str]] = mapped_column("origins_json", JsonText, default=lambda: [])
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    public_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)
    last_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_system: Mapped[str | None] = mapped_column(String(64), nullable=True)
