"""create permissions

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision: str | None = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    permissions = op.create_table(
        "permissions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(16), nullable=False, unique=True),
        sa.Column("label", sa.String(80), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
    )
    op.bulk_insert(
        permissions,
        [
            {"code": "read", "label": "READ", "position": 0},
            {"code": "write", "label": "WRITE", "position": 1},
            {"code": "delete", "label": "DELETE", "position": 2},
            {"code": "export", "label": "EXPORT", "position": 3},
            {"code": "approve", "label": "APPROVE", "position": 4},
            {"code": "refund", "label": "REFUND", "position": 5},
            {"code": "admin", "label": "ADMIN", "position": 6},
        ],
    )


def downgrade() -> None:
    op.drop_table("permissions")
