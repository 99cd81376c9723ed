"""create newsletter_subscriptions

Revision ID: 0068
Revises: 0067
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0068"
down_revision: str | None = "0067"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "newsletter_subscriptions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "review_id",
            sa.Integer(),
            sa.ForeignKey("reviews.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "tax_rate_id",
            sa.Integer(),
            sa.ForeignKey("tax_rates.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False, server_default="0"),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index(
        "ix_newsletter_subscriptions_review_id", "newsletter_subscriptions", ["review_id"]
    )
    op.create_index(
        "ix_newsletter_subscriptions_tax_rate_id", "newsletter_subscriptions", ["tax_rate_id"]
    )
    op.create_index(
        "uq_newsletter_subscriptions_name", "newsletter_subscriptions", ["name"], unique=True
    )


def downgrade() -> None:
    op.drop_table("newsletter_subscriptions")
