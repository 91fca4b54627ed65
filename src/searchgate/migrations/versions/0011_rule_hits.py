"""rule and redirect hits: per day, area, collection and merchandising rule, the
searches the rule fired on and those it redirected

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_rule_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("area", sa.String(length=64), nullable=False),
        sa.Column("collection", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=80), nullable=False),
        sa.Column("searches", sa.BigInteger(), nullable=False),
        sa.Column("redirects", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "area", "collection", "rule", name=op.f("pk_search_rule_days")
        ),
    )


def downgrade() -> None:
    op.drop_table("search_rule_days")
