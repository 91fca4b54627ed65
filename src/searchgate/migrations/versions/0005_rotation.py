"""key rotation: the persisted state of the six steps, with a one-at-a-time lock

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_rotations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("active", sa.Integer(), nullable=True),
        sa.Column("store_kind", sa.String(length=16), nullable=False),
        sa.Column("store_location", sa.String(length=512), nullable=False),
        sa.Column("old_key_id", sa.String(length=32), nullable=False),
        sa.Column("new_key_id", sa.String(length=32), nullable=True),
        sa.Column("replaced_key_ids_json", sa.Text(), nullable=False),
        sa.Column("store_version_before", sa.String(length=128), nullable=True),
        sa.Column("store_version_after", sa.String(length=128), nullable=True),
        sa.Column("options_json", sa.Text(), nullable=False),
        sa.Column("steps_json", sa.Text(), nullable=False),
        sa.Column("started_by", sa.String(length=320), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("lease_digest", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_seconds", sa.Integer(), nullable=False),
        sa.Column("lease_holder", sa.String(length=320), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_rotations")),
        sa.UniqueConstraint("active", name="uq_key_rotations_active"),
    )
    with op.batch_alter_table("key_rotations", schema=None) as batch_op:
        batch_op.create_index("ix_key_rotations_started_at", ["started_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("key_rotations", schema=None) as batch_op:
        batch_op.drop_index("ix_key_rotations_started_at")
    op.drop_table("key_rotations")
