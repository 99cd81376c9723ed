"""create invoices; add stock_levels.region

Revision ID: 0050
Revises: 0049
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0050"
down_revision: str | None = "0049"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "product_tag_id",
            sa.Integer(),
            sa.ForeignKey("product_tags.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_invoices_product_tag_id", "invoices", ["product_tag_id"])
    op.add_column("stock_levels", sa.Column("region", sa.String(32), nullable=True))
    op.create_index("ix_stock_levels_region", "stock_levels", ["region"])


def downgrade() -> None:
    op.drop_index("ix_stock_levels_region", table_name="stock_levels")
    op.drop_column("stock_levels", "region")
    op.drop_table("invoices")
