"""create subscription_items

Revision ID: 0084
Revises: 0083
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0084"
down_revision: str | None = "0083"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscription_items",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "article_revision_id",
            sa.Integer(),
            sa.ForeignKey("article_revisions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "permission_id",
            sa.Integer(),
            sa.ForeignKey("permissions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index(
        "ix_subscription_items_article_revision_id", "subscription_items", ["article_revision_id"]
    )
    op.create_index("ix_subscription_items_permission_id", "subscription_items", ["permission_id"])
    op.create_index(
        "ix_subscription_items_status_created", "subscription_items", ["status", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("subscription_items")
