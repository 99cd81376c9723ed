"""create questions

Revision ID: 0065
Revises: 0064
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0065"
down_revision: str | None = "0064"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "questions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "invoice_line_id",
            sa.Integer(),
            sa.ForeignKey("invoice_lines.id", ondelete="RESTRICT"),
            nullable=True,
        ),
        sa.Column(
            "language_id",
            sa.Integer(),
            sa.ForeignKey("languages.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("quantity", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("external_ref", sa.String(64), nullable=True),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False, server_default="0"),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_questions_invoice_line_id", "questions", ["invoice_line_id"])
    op.create_index("ix_questions_language_id", "questions", ["language_id"])


def downgrade() -> None:
    op.drop_table("questions")
