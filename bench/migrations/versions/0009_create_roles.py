"""create roles

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    roles = op.create_table(
        "roles",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(16), nullable=False, unique=True),
        sa.Column("label", sa.String(80), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
    )
    op.bulk_insert(
        roles,
        [
            {"code": "admin", "label": "ADMIN", "position": 0},
            {"code": "staff", "label": "STAFF", "position": 1},
            {"code": "support", "label": "SUPPORT", "position": 2},
            {"code": "customer", "label": "CUSTOMER", "position": 3},
            {"code": "guest", "label": "GUEST", "position": 4},
            {"code": "auditor", "label": "AUDITOR", "position": 5},
        ],
    )


def downgrade() -> None:
    op.drop_table("roles")
