"""search analytics: searches per day, area and collection, and per query, with the
number that found nothing

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 02:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("area", sa.String(length=64), nullable=False),
        sa.Column("collection", sa.String(length=64), nullable=False),
        sa.Column("searches", sa.BigInteger(), nullable=False),
        sa.Column("zero_results", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "area", "collection", name=op.f("pk_search_days")),
    )
    op.create_table(
        "search_query_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("area", sa.String(length=64), nullable=False),
        sa.Column("collection", sa.String(length=64), nullable=False),
        sa.Column("query", sa.String(length=256), nullable=False),
        sa.Column("searches", sa.BigInteger(), nullable=False),
        sa.Column("zero_results", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "area", "collection", "query", name=op.f("pk_search_query_days")
        ),
    )


def downgrade() -> None:
    op.drop_table("search_query_days")
    op.drop_table("search_days")
