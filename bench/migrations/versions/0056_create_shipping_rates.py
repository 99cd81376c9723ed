"""create shipping_rates

Revision ID: 0056
Revises: 0055
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0056"
down_revision: str | None = "0055"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shipping_rates",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "price_list_item_id",
            sa.Integer(),
            sa.ForeignKey("price_list_items.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column(
            "timezone_id",
            sa.Integer(),
            sa.ForeignKey("timezones.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False, server_default="0"),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index(
        "ix_shipping_rates_price_list_item_id", "shipping_rates", ["price_list_item_id"]
    )
    op.create_index("ix_shipping_rates_timezone_id", "shipping_rates", ["timezone_id"])


def downgrade() -> None:
    op.drop_table("shipping_rates")
