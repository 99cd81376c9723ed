"""create bundle_items

Revision ID: 0097
Revises: 0096
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0097"
down_revision: str | None = "0096"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bundle_items",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "article_revision_id",
            sa.Integer(),
            sa.ForeignKey("article_revisions.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("external_ref", sa.String(64), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_bundle_items_article_revision_id", "bundle_items", ["article_revision_id"])
    op.create_index("ix_bundle_items_status_created", "bundle_items", ["status", "created_at"])


def downgrade() -> None:
    op.drop_table("bundle_items")
