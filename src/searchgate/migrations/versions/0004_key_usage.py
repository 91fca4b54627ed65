"""client key usage: hourly request counts and the systems seen per key

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 23:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_usage_hourly",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("system", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "key_id", "hour", "system", "outcome", name=op.f("pk_key_usage_hourly")
        ),
    )
    with op.batch_alter_table("key_usage_hourly", schema=None) as batch_op:
        batch_op.create_index("ix_key_usage_hourly_hour", ["hour"], unique=False)

    op.create_table(
        "key_systems",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("system", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_ip", sa.String(length=64), nullable=True),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "system", name=op.f("pk_key_systems")),
    )
    with op.batch_alter_table("key_systems", schema=None) as batch_op:
        batch_op.create_index("ix_key_systems_last_seen_at", ["last_seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("key_systems", schema=None) as batch_op:
        batch_op.drop_index("ix_key_systems_last_seen_at")
    op.drop_table("key_systems")
    with op.batch_alter_table("key_usage_hourly", schema=None) as batch_op:
        batch_op.drop_index("ix_key_usage_hourly_hour")
    op.drop_table("key_usage_hourly")
