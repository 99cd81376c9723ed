"""create tax_rates

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tax_rates = op.create_table(
        "tax_rates",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(16), nullable=False, unique=True),
        sa.Column("label", sa.String(80), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
    )
    op.bulk_insert(
        tax_rates,
        [
            {"code": "standard", "label": "STANDARD", "position": 0},
            {"code": "reduced", "label": "REDUCED", "position": 1},
            {"code": "zero", "label": "ZERO", "position": 2},
            {"code": "exempt", "label": "EXEMPT", "position": 3},
        ],
    )


def downgrade() -> None:
    op.drop_table("tax_rates")
