"""create gift_card_transactions

Revision ID: 0062
Revises: 0061
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0062"
down_revision: str | None = "0061"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gift_card_transactions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "order_id", sa.Integer(), sa.ForeignKey("orders.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column(
            "tax_rate_id",
            sa.Integer(),
            sa.ForeignKey("tax_rates.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_gift_card_transactions_order_id", "gift_card_transactions", ["order_id"])
    op.create_index(
        "ix_gift_card_transactions_tax_rate_id", "gift_card_transactions", ["tax_rate_id"]
    )
    op.create_index(
        "ix_gift_card_transactions_status_created",
        "gift_card_transactions",
        ["status", "created_at"],
    )
    op.create_index(
        "uq_gift_card_transactions_name", "gift_card_transactions", ["name"], unique=True
    )


def downgrade() -> None:
    op.drop_table("gift_card_transactions")
