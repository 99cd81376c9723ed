"""create return_items

Revision ID: 0058
Revises: 0057
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0058"
down_revision: str | None = "0057"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "return_items",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "order_status_id",
            sa.Integer(),
            sa.ForeignKey("order_statuses.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "return_id",
            sa.Integer(),
            sa.ForeignKey("returns.id", ondelete="RESTRICT"),
            nullable=True,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_return_items_order_status_id", "return_items", ["order_status_id"])
    op.create_index("ix_return_items_return_id", "return_items", ["return_id"])
    op.create_index("ix_return_items_status_created", "return_items", ["status", "created_at"])


def downgrade() -> None:
    op.drop_table("return_items")
