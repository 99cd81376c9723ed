"""create search_queries

Revision ID: 0094
Revises: 0093
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0094"
down_revision: str | None = "0093"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_queries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "knowledge_article_id",
            sa.Integer(),
            sa.ForeignKey("knowledge_articles.id", ondelete="RESTRICT"),
            nullable=True,
        ),
        sa.Column(
            "order_status_id",
            sa.Integer(),
            sa.ForeignKey("order_statuses.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("external_ref", sa.String(64), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index(
        "ix_search_queries_knowledge_article_id", "search_queries", ["knowledge_article_id"]
    )
    op.create_index("ix_search_queries_order_status_id", "search_queries", ["order_status_id"])


def downgrade() -> None:
    op.drop_table("search_queries")
