"""create imports

Revision ID: 0089
Revises: 0088
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0089"
down_revision: str | None = "0088"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imports",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "subscription_id",
            sa.Integer(),
            sa.ForeignKey("subscriptions.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column(
            "ticket_message_id",
            sa.Integer(),
            sa.ForeignKey("ticket_messages.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column(
            "unit_id", sa.Integer(), sa.ForeignKey("units.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False, server_default="0"),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_imports_subscription_id", "imports", ["subscription_id"])
    op.create_index("ix_imports_ticket_message_id", "imports", ["ticket_message_id"])
    op.create_index("ix_imports_unit_id", "imports", ["unit_id"])


def downgrade() -> None:
    op.drop_table("imports")
