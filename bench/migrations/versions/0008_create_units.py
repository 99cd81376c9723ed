"""create units

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    units = op.create_table(
        "units",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(16), nullable=False, unique=True),
        sa.Column("label", sa.String(80), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
    )
    op.bulk_insert(
        units,
        [
            {"code": "piece", "label": "PIECE", "position": 0},
            {"code": "kg", "label": "KG", "position": 1},
            {"code": "g", "label": "G", "position": 2},
            {"code": "l", "label": "L", "position": 3},
            {"code": "ml", "label": "ML", "position": 4},
            {"code": "m", "label": "M", "position": 5},
            {"code": "box", "label": "BOX", "position": 6},
            {"code": "pack", "label": "PACK", "position": 7},
        ],
    )


def downgrade() -> None:
    op.drop_table("units")
