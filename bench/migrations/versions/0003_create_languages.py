"""create languages

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    languages = op.create_table(
        "languages",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(16), nullable=False, unique=True),
        sa.Column("label", sa.String(80), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
    )
    op.bulk_insert(
        languages,
        [
            {"code": "de", "label": "DE", "position": 0},
            {"code": "fr", "label": "FR", "position": 1},
            {"code": "it", "label": "IT", "position": 2},
            {"code": "es", "label": "ES", "position": 3},
            {"code": "nl", "label": "NL", "position": 4},
            {"code": "en", "label": "EN", "position": 5},
            {"code": "sv", "label": "SV", "position": 6},
            {"code": "pl", "label": "PL", "position": 7},
        ],
    )


def downgrade() -> None:
    op.drop_table("languages")
