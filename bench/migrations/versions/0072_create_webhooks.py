"""create webhooks

Revision ID: 0072
Revises: 0071
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0072"
down_revision: str | None = "0071"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "order_status_id",
            sa.Integer(),
            sa.ForeignKey("order_statuses.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column(
            "review_vote_id",
            sa.Integer(),
            sa.ForeignKey("review_votes.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("quantity", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("external_ref", sa.String(64), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_webhooks_order_status_id", "webhooks", ["order_status_id"])
    op.create_index("ix_webhooks_review_vote_id", "webhooks", ["review_vote_id"])


def downgrade() -> None:
    op.drop_table("webhooks")
