"""create menus; add suppliers.archived_at

Revision ID: 0100
Revises: 0099
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0100"
down_revision: str | None = "0099"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "menus",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "knowledge_article_id",
            sa.Integer(),
            sa.ForeignKey("knowledge_articles.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("quantity", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("external_ref", sa.String(64), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_menus_knowledge_article_id", "menus", ["knowledge_article_id"])
    op.add_column("suppliers", sa.Column("archived_at", sa.DateTime(), nullable=True))
    op.create_index("ix_suppliers_archived_at", "suppliers", ["archived_at"])


def downgrade() -> None:
    op.drop_index("ix_suppliers_archived_at", table_name="suppliers")
    op.drop_column("suppliers", "archived_at")
    op.drop_table("menus")
