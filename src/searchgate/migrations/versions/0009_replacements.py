"""staged replacements: a collection's new records uploaded in batches, swapped in by
one commit

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 03:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replacements",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("collection", sa.String(length=64), nullable=False),
        sa.Column("settings_json", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("committed_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replacements")),
    )
    op.create_index(
        op.f("ix_replacements_collection"), "replacements", ["collection"], unique=False
    )
    op.create_table(
        "staged_records",
        sa.Column("replacement_id", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.String(length=256), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("replacement_id", "record_id", name=op.f("pk_staged_records")),
    )


def downgrade() -> None:
    op.drop_table("staged_records")
    op.drop_index(op.f("ix_replacements_collection"), table_name="replacements")
    op.drop_table("replacements")
