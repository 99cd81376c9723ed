"""create loyalty_accounts

Revision ID: 0081
Revises: 0080
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0081"
down_revision: str | None = "0080"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loyalty_accounts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "role_id", sa.Integer(), sa.ForeignKey("roles.id", ondelete="RESTRICT"), nullable=False
        ),
        sa.Column(
            "shipping_rate_id",
            sa.Integer(),
            sa.ForeignKey("shipping_rates.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("quantity", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False, server_default="0"),
        sa.Column("external_ref", sa.String(64), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_loyalty_accounts_role_id", "loyalty_accounts", ["role_id"])
    op.create_index(
        "ix_loyalty_accounts_shipping_rate_id", "loyalty_accounts", ["shipping_rate_id"]
    )


def downgrade() -> None:
    op.drop_table("loyalty_accounts")
