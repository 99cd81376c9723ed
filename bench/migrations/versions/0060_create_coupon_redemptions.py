"""create coupon_redemptions; add product_tags.legacy_id

Revision ID: 0060
Revises: 0059
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0060"
down_revision: str | None = "0059"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coupon_redemptions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "carrier_id",
            sa.Integer(),
            sa.ForeignKey("carriers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False, server_default="0"),
        sa.Column("external_ref", sa.String(64), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False, server_default="1"),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_coupon_redemptions_carrier_id", "coupon_redemptions", ["carrier_id"])
    op.create_index("uq_coupon_redemptions_name", "coupon_redemptions", ["name"], unique=True)
    op.add_column("product_tags", sa.Column("legacy_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_product_tags_legacy_id", "product_tags", ["legacy_id"])


def downgrade() -> None:
    op.drop_index("ix_product_tags_legacy_id", table_name="product_tags")
    op.drop_column("product_tags", "legacy_id")
    op.drop_table("coupon_redemptions")
