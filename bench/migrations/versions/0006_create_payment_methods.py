"""create payment_methods

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    payment_methods = op.create_table(
        "payment_methods",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(16), nullable=False, unique=True),
        sa.Column("label", sa.String(80), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
    )
    op.bulk_insert(
        payment_methods,
        [
            {"code": "card", "label": "CARD", "position": 0},
            {"code": "sepa", "label": "SEPA", "position": 1},
            {"code": "paypal", "label": "PAYPAL", "position": 2},
            {"code": "invoice", "label": "INVOICE", "position": 3},
            {"code": "voucher", "label": "VOUCHER", "position": 4},
        ],
    )


def downgrade() -> None:
    op.drop_table("payment_methods")
