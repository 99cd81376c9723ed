"""create campaign_events; add organizations.legacy_id

Revision ID: 0070
Revises: 0069
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0070"
down_revision: str | None = "0069"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("external_ref", sa.String(64), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    )
    op.create_index(
        "ix_campaign_events_status_created", "campaign_events", ["status", "created_at"]
    )
    op.create_index("uq_campaign_events_name", "campaign_events", ["name"], unique=True)
    op.add_column("organizations", sa.Column("legacy_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_organizations_legacy_id", "organizations", ["legacy_id"])


def downgrade() -> None:
    op.drop_index("ix_organizations_legacy_id", table_name="organizations")
    op.drop_column("organizations", "legacy_id")
    op.drop_table("campaign_events")
