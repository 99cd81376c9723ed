"""create timezones

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    timezones = op.create_table(
        "timezones",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(16), nullable=False, unique=True),
        sa.Column("label", sa.String(80), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
    )
    op.bulk_insert(
        timezones,
        [
            {"code": "UTC", "label": "UTC", "position": 0},
            {"code": "Europe/Berlin", "label": "EUROPE/BERLIN", "position": 1},
            {"code": "Europe/Paris", "label": "EUROPE/PARIS", "position": 2},
            {"code": "Europe/London", "label": "EUROPE/LONDON", "position": 3},
            {"code": "America/New_York", "label": "AMERICA/NEW_YORK", "position": 4},
        ],
    )


def downgrade() -> None:
    op.drop_table("timezones")
