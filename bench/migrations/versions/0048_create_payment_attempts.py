"""create payment_attempts

Revision ID: 0048
Revises: 0047
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0048"
down_revision: str | None = "0047"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payment_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "brand_id", sa.Integer(), sa.ForeignKey("brands.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column(
            "unit_id", sa.Integer(), sa.ForeignKey("units.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False, server_default="0"),
        sa.Column("external_ref", sa.String(64), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_payment_attempts_brand_id", "payment_attempts", ["brand_id"])
    op.create_index("ix_payment_attempts_unit_id", "payment_attempts", ["unit_id"])
    op.create_index(
        "ix_payment_attempts_status_created", "payment_attempts", ["status", "created_at"]
    )
    op.create_index("uq_payment_attempts_name", "payment_attempts", ["name"], unique=True)


def downgrade() -> None:
    op.drop_table("payment_attempts")
