"""merchandising: each area's draft and its published versions

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _area_key(table: str) -> sa.ForeignKeyConstraint:
    # Checked at commit: an area rename replaces the area's row before it moves these.
    return sa.ForeignKeyConstraint(
        ["area"],
        ["areas.name"],
        name=op.f(f"fk_{table}_area_areas"),
        deferrable=True,
        initially="DEFERRED",
    )


def upgrade() -> None:
    op.create_table(
        "merch_drafts",
        sa.Column("area", sa.String(length=64), nullable=False),
        sa.Column("document_json", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=400), nullable=False),
        _area_key("merch_drafts"),
        sa.PrimaryKeyConstraint("area", name=op.f("pk_merch_drafts")),
    )
    op.create_table(
        "merch_versions",
        sa.Column("area", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("document_json", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(length=400), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("rollback_of", sa.Integer(), nullable=True),
        _area_key("merch_versions"),
        sa.PrimaryKeyConstraint("area", "number", name=op.f("pk_merch_versions")),
    )


def downgrade() -> None:
    op.drop_table("merch_versions")
    op.drop_table("merch_drafts")
