"""create answers

Revision ID: 0066
Revises: 0065
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0066"
down_revision: str | None = "0065"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "answers",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "coupon_id",
            sa.Integer(),
            sa.ForeignKey("coupons.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column(
            "permission_id",
            sa.Integer(),
            sa.ForeignKey("permissions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "shipping_rate_id",
            sa.Integer(),
            sa.ForeignKey("shipping_rates.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_answers_coupon_id", "answers", ["coupon_id"])
    op.create_index("ix_answers_permission_id", "answers", ["permission_id"])
    op.create_index("ix_answers_shipping_rate_id", "answers", ["shipping_rate_id"])
    op.create_index("ix_answers_status_created", "answers", ["status", "created_at"])


def downgrade() -> None:
    op.drop_table("answers")
