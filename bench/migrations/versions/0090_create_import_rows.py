"""create import_rows; add orders.region

Revision ID: 0090
Revises: 0089
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0090"
down_revision: str | None = "0089"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_rows",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "loyalty_account_id",
            sa.Integer(),
            sa.ForeignKey("loyalty_accounts.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False, server_default="0"),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_import_rows_loyalty_account_id", "import_rows", ["loyalty_account_id"])
    op.add_column("orders", sa.Column("region", sa.String(32), nullable=True))
    op.create_index("ix_orders_region", "orders", ["region"])


def downgrade() -> None:
    op.drop_index("ix_orders_region", table_name="orders")
    op.drop_column("orders", "region")
    op.drop_table("import_rows")
