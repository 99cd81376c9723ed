"""create currencies

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    currencies = op.create_table(
        "currencies",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(16), nullable=False, unique=True),
        sa.Column("label", sa.String(80), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
    )
    op.bulk_insert(
        currencies,
        [
            {"code": "EUR", "label": "EUR", "position": 0},
            {"code": "USD", "label": "USD", "position": 1},
            {"code": "GBP", "label": "GBP", "position": 2},
            {"code": "CHF", "label": "CHF", "position": 3},
            {"code": "SEK", "label": "SEK", "position": 4},
            {"code": "NOK", "label": "NOK", "position": 5},
            {"code": "DKK", "label": "DKK", "position": 6},
            {"code": "PLN", "label": "PLN", "position": 7},
        ],
    )


def downgrade() -> None:
    op.drop_table("currencies")
