"""client key lifecycle: primary flag, restrictions, browser-token public key, last use

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 22:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("client_keys") as batch:
        batch.add_column(sa.Column("created_by", sa.String(320), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("is_primary", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("retiring_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("disabled_reason", sa.String(200), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("collections_json", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("ip_ranges_json", sa.Text(), nullable=False, server_default="[]")
        )
        batch.add_column(sa.Column("origins_json", sa.Text(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("public_key", sa.LargeBinary(32), nullable=True))
        batch.add_column(sa.Column("public_key_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("last_ip", sa.String(64), nullable=True))
        batch.add_column(sa.Column("last_system", sa.String(64), nullable=True))
        batch.create_unique_constraint("uq_client_keys_public_key_id", ["public_key_id"])
    # Keys made before primaries existed: the newest live one becomes the primary, so
    # that "exactly one primary while any key exists" holds from the first start.
    op.execute(
        "UPDATE client_keys SET is_primary = true WHERE id = (SELECT id FROM client_keys "
        "WHERE deleted_at IS NULL ORDER BY created_at DESC LIMIT 1)"
    )


def downgrade() -> None:
    with op.batch_alter_table("client_keys") as batch:
        batch.drop_constraint("uq_client_keys_public_key_id", type_="unique")
        for column in (
            "last_system",
            "last_ip",
            "public_key_id",
            "public_key",
            "rate_limit_per_minute",
            "origins_json",
            "ip_ranges_json",
            "collections_json",
            "expires_at",
            "disabled_reason",
            "retiring_since",
            "is_primary",
            "created_by",
        ):
            batch.drop_column(column)
