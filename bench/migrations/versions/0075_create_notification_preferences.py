"""create notification_preferences

Revision ID: 0075
Revises: 0074
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0075"
down_revision: str | None = "0074"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_preferences",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "credit_note_id",
            sa.Integer(),
            sa.ForeignKey("credit_notes.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index(
        "ix_notification_preferences_credit_note_id", "notification_preferences", ["credit_note_id"]
    )
    op.create_index(
        "ix_notification_preferences_status_created",
        "notification_preferences",
        ["status", "created_at"],
    )


def downgrade() -> None:
    op.drop_table("notification_preferences")
