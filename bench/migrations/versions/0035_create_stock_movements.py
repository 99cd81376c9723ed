"""create stock_movements

Revision ID: 0035
Revises: 0034
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision: str | None = "0034"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stock_movements",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "customer_id",
            sa.Integer(),
            sa.ForeignKey("customers.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column(
            "order_status_id",
            sa.Integer(),
            sa.ForeignKey("order_statuses.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column(
            "warehous_id",
            sa.Integer(),
            sa.ForeignKey("warehouses.id", ondelete="RESTRICT"),
            nullable=True,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("quantity", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("external_ref", sa.String(64), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_stock_movements_customer_id", "stock_movements", ["customer_id"])
    op.create_index("ix_stock_movements_order_status_id", "stock_movements", ["order_status_id"])
    op.create_index("ix_stock_movements_warehous_id", "stock_movements", ["warehous_id"])


def downgrade() -> None:
    op.drop_table("stock_movements")
