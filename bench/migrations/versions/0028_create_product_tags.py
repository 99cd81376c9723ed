"""create product_tags

Revision ID: 0028
Revises: 0027
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision: str | None = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "product_tags",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "unit_id", sa.Integer(), sa.ForeignKey("units.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column(
            "user_role_id",
            sa.Integer(),
            sa.ForeignKey("user_roles.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False, server_default="0"),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_product_tags_unit_id", "product_tags", ["unit_id"])
    op.create_index("ix_product_tags_user_role_id", "product_tags", ["user_role_id"])
    op.create_index("ix_product_tags_status_created", "product_tags", ["status", "created_at"])
    op.create_index("uq_product_tags_name", "product_tags", ["name"], unique=True)


def downgrade() -> None:
    op.drop_table("product_tags")
