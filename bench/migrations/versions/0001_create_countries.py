"""create countries

Revision ID: 0001
Revises: None
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    countries = op.create_table(
        "countries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(16), nullable=False, unique=True),
        sa.Column("label", sa.String(80), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
    )
    op.bulk_insert(
        countries,
        [
            {"code": "DE", "label": "DE", "position": 0},
            {"code": "FR", "label": "FR", "position": 1},
            {"code": "IT", "label": "IT", "position": 2},
            {"code": "ES", "label": "ES", "position": 3},
            {"code": "NL", "label": "NL", "position": 4},
            {"code": "BE", "label": "BE", "position": 5},
            {"code": "AT", "label": "AT", "position": 6},
            {"code": "CH", "label": "CH", "position": 7},
            {"code": "PL", "label": "PL", "position": 8},
            {"code": "SE", "label": "SE", "position": 9},
            {"code": "NO", "label": "NO", "position": 10},
            {"code": "DK", "label": "DK", "position": 11},
            {"code": "US", "label": "US", "position": 12},
        ],
    )


def downgrade() -> None:
    op.drop_table("countries")
