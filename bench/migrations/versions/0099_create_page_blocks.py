"""create page_blocks

Revision ID: 0099
Revises: 0098
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0099"
down_revision: str | None = "0098"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "page_blocks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "country_id",
            sa.Integer(),
            sa.ForeignKey("countries.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column(
            "report_id",
            sa.Integer(),
            sa.ForeignKey("reports.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False, server_default="0"),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False, server_default="1"),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_page_blocks_country_id", "page_blocks", ["country_id"])
    op.create_index("ix_page_blocks_report_id", "page_blocks", ["report_id"])
    op.create_index("ix_page_blocks_status_created", "page_blocks", ["status", "created_at"])
    op.create_index("uq_page_blocks_name", "page_blocks", ["name"], unique=True)


def downgrade() -> None:
    op.drop_table("page_blocks")
