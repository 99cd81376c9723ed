"""create carts; add organizations.archived_at

Revision ID: 0040
Revises: 0039
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0040"
down_revision: str | None = "0039"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "carts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "role_permission_id",
            sa.Integer(),
            sa.ForeignKey("role_permissions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False, server_default="0"),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_carts_role_permission_id", "carts", ["role_permission_id"])
    op.create_index("ix_carts_status_created", "carts", ["status", "created_at"])
    op.add_column("organizations", sa.Column("archived_at", sa.DateTime(), nullable=True))
    op.create_index("ix_organizations_archived_at", "organizations", ["archived_at"])


def downgrade() -> None:
    op.drop_index("ix_organizations_archived_at", table_name="organizations")
    op.drop_column("organizations", "archived_at")
    op.drop_table("carts")
