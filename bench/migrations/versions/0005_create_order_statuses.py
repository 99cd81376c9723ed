"""create order_statuses

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    order_statuses = op.create_table(
        "order_statuses",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(16), nullable=False, unique=True),
        sa.Column("label", sa.String(80), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
    )
    op.bulk_insert(
        order_statuses,
        [
            {"code": "new", "label": "NEW", "position": 0},
            {"code": "paid", "label": "PAID", "position": 1},
            {"code": "packed", "label": "PACKED", "position": 2},
            {"code": "shipped", "label": "SHIPPED", "position": 3},
            {"code": "delivered", "label": "DELIVERED", "position": 4},
            {"code": "cancelled", "label": "CANCELLED", "position": 5},
            {"code": "refunded", "label": "REFUNDED", "position": 6},
        ],
    )


def downgrade() -> None:
    op.drop_table("order_statuses")
