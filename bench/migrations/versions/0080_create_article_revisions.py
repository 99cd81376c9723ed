"""create article_revisions; add price_list_items.archived_at

Revision ID: 0080
Revises: 0079
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0080"
down_revision: str | None = "0079"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "article_revisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "knowledge_article_id",
            sa.Integer(),
            sa.ForeignKey("knowledge_articles.id", ondelete="RESTRICT"),
            nullable=True,
        ),
        sa.Column(
            "payment_method_id",
            sa.Integer(),
            sa.ForeignKey("payment_methods.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("external_ref", sa.String(64), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False, server_default="1"),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index(
        "ix_article_revisions_knowledge_article_id", "article_revisions", ["knowledge_article_id"]
    )
    op.create_index(
        "ix_article_revisions_payment_method_id", "article_revisions", ["payment_method_id"]
    )
    op.add_column("price_list_items", sa.Column("archived_at", sa.DateTime(), nullable=True))
    op.create_index("ix_price_list_items_archived_at", "price_list_items", ["archived_at"])


def downgrade() -> None:
    op.drop_index("ix_price_list_items_archived_at", table_name="price_list_items")
    op.drop_column("price_list_items", "archived_at")
    op.drop_table("article_revisions")
