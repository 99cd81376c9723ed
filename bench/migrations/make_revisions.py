"""Writes `versions/`: the 100 alembic revisions of the benchmark application's schema.

The revisions are committed; this script only documents (and can reproduce) how they were made.
The shape is that of a real application's history: revision N creates one table (an integer
primary key, a few typed columns, one or two unique or composite indexes, foreign keys to 0 to 3
earlier tables with an index on each foreign key column), lookup tables are seeded with rows,
and every tenth revision also alters an earlier table (a new column and its index).

    .venv/bin/python bench/migrations/make_revisions.py && .venv/bin/ruff format bench/migrations
"""

from __future__ import annotations

import random
from pathlib import Path

VERSIONS = Path(__file__).resolve().parent / "versions"

#: Lookup tables (first, seeded) and then the application's tables, in creation order.
LOOKUPS = {
    "countries": ["DE", "FR", "IT", "ES", "NL", "BE", "AT", "CH", "PL", "SE", "NO", "DK", "US"],
    "currencies": ["EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN"],
    "languages": ["de", "fr", "it", "es", "nl", "en", "sv", "pl"],
    "timezones": ["UTC", "Europe/Berlin", "Europe/Paris", "Europe/London", "America/New_York"],
    "order_statuses": ["new", "paid", "packed", "shipped", "delivered", "cancelled", "refunded"],
    "payment_methods": ["card", "sepa", "paypal", "invoice", "voucher"],
    "tax_rates": ["standard", "reduced", "zero", "exempt"],
    "units": ["piece", "kg", "g", "l", "ml", "m", "box", "pack"],
    "roles": ["admin", "staff", "support", "customer", "guest", "auditor"],
    "permissions": ["read", "write", "delete", "export", "approve", "refund", "admin"],
}
TABLES = [
    *LOOKUPS,
    "organizations", "users", "user_profiles", "user_roles", "role_permissions", "api_keys",
    "sessions", "addresses", "customers", "customer_notes", "customer_groups",
    "customer_group_members", "brands", "categories", "products", "product_variants",
    "product_images", "product_tags", "tags", "product_categories", "price_lists",
    "price_list_items", "warehouses", "stock_levels", "stock_movements", "suppliers",
    "supplier_products", "purchase_orders", "purchase_order_lines", "carts", "cart_items",
    "wishlists", "wishlist_items", "orders", "order_lines", "order_status_history",
    "payments", "payment_attempts", "refunds", "invoices", "invoice_lines", "credit_notes",
    "shipments", "shipment_items", "carriers", "shipping_rates", "returns", "return_items",
    "coupons", "coupon_redemptions", "gift_cards", "gift_card_transactions", "reviews",
    "review_votes", "questions", "answers", "newsletters", "newsletter_subscriptions",
    "campaigns", "campaign_events", "audit_events", "webhooks", "webhook_deliveries",
    "notifications", "notification_preferences", "support_tickets", "ticket_messages",
    "ticket_attachments", "knowledge_articles", "article_revisions", "loyalty_accounts",
    "loyalty_transactions", "subscriptions", "subscription_items", "subscription_invoices",
    "reports", "report_runs", "exports", "imports", "import_rows", "feature_flags",
    "flag_overrides", "settings", "search_queries", "recommendations", "bundles",
    "bundle_items", "pages", "page_blocks", "menus",
]  # fmt: skip

HEADER = '''"""{message}

Revision ID: {rev}
Revises: {down}
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision: str | None = {down_repr}
branch_labels = None
depends_on = None


def upgrade() -> None:
'''


def singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith(("sses", "uses", "xes")):
        return name[:-2]
    return name[:-1] if name.endswith("s") else name


def _fk_columns(index: int, rng: random.Random) -> tuple[list[str], list[str]]:
    """Column definitions of the foreign keys of table `index`, and their column names."""
    earlier = TABLES[:index]
    lookups = [t for t in earlier if t in LOOKUPS]
    others = [t for t in earlier if t not in LOOKUPS][-25:]
    n_fk = rng.choices([0, 1, 2, 3], weights=[1, 4, 3, 1])[0]
    targets: list[str] = []
    if n_fk and others:
        targets += rng.sample(others, min(len(others), n_fk - 1 or 1))
    if n_fk > len(targets):
        targets += rng.sample(lookups, n_fk - len(targets))
    cols, names = [], []
    for target in sorted(set(targets)):
        col = f"{singular(target)}_id"
        nullable = rng.random() < 0.3
        ondelete = rng.choice(["CASCADE", "RESTRICT", "SET NULL" if nullable else "CASCADE"])
        cols.append(
            f'sa.Column("{col}", sa.Integer(), sa.ForeignKey("{target}.id", '
            f'ondelete="{ondelete}"), nullable={nullable})'
        )
        names.append(col)
    return cols, names


def _columns(index: int, rng: random.Random) -> tuple[list[str], list[str]]:
    """Column definitions of table `index` and the names of its foreign key columns."""
    cols = ['sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True)']
    if TABLES[index] in LOOKUPS:
        cols += [
            'sa.Column("code", sa.String(16), nullable=False, unique=True)',
            'sa.Column("label", sa.String(80), nullable=False)',
            'sa.Column("position", sa.Integer(), nullable=False, server_default="0")',
        ]
        return cols, []
    fk_cols, fk_names = _fk_columns(index, rng)
    cols += fk_cols
    cols += [
        'sa.Column("name", sa.String(120), nullable=False)',
        'sa.Column("status", sa.String(20), nullable=False, server_default="active")',
    ]
    cols += rng.sample(
        [
            'sa.Column("amount", sa.Numeric(12, 2), nullable=False, server_default="0")',
            'sa.Column("quantity", sa.Integer(), nullable=False, server_default="1")',
            'sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true())',
            'sa.Column("notes", sa.Text(), nullable=True)',
            'sa.Column("email", sa.String(254), nullable=True)',
            'sa.Column("external_ref", sa.String(64), nullable=True)',
            'sa.Column("valid_until", sa.Date(), nullable=True)',
        ],
        rng.randint(2, 4),
    )
    cols += [
        'sa.Column("created_at", sa.DateTime(), nullable=False, '
        "server_default=sa.func.current_timestamp())",
        'sa.Column("updated_at", sa.DateTime(), nullable=True)',
    ]
    return cols, fk_names


def _alteration(
    index: int, rng: random.Random, added: set[tuple[str, str]]
) -> tuple[str, list[str], list[str]]:
    """Every tenth revision from the 30th on: a new column (and index) on an earlier table.
    Returns (message suffix, upgrade lines, downgrade lines)."""
    if (index + 1) % 10 or index < 20:
        return "", [], []
    kinds = {
        "archived_at": "sa.DateTime()",
        "legacy_id": "sa.BigInteger()",
        "sort_key": "sa.String(40)",
        "region": "sa.String(32)",
    }
    while True:
        table = rng.choice([t for t in TABLES[10:index] if t not in LOOKUPS])
        col = rng.choice(sorted(kinds))
        if (table, col) not in added:
            added.add((table, col))
            break
    up = [
        f'    op.add_column("{table}", sa.Column("{col}", {kinds[col]}, nullable=True))',
        f'    op.create_index("ix_{table}_{col}", "{table}", ["{col}"])',
    ]
    down = [
        f'    op.drop_index("ix_{table}_{col}", table_name="{table}")',
        f'    op.drop_column("{table}", "{col}")',
    ]
    return f"; add {table}.{col}", up, down


def revision_text(index: int, rng: random.Random, added: set[tuple[str, str]]) -> str:
    """The source of revision `index + 1`."""
    table = TABLES[index]
    rev = f"{index + 1:04d}"
    down = f"{index:04d}" if index else None
    seeded = table in LOOKUPS
    cols, fk_names = _columns(index, rng)
    body = [f'    {f"{table} = " if seeded else ""}op.create_table(\n        "{table}",']
    body += [f"        {c}," for c in cols]
    body.append("    )")
    body += [f'    op.create_index("ix_{table}_{c}", "{table}", ["{c}"])' for c in fk_names]
    if seeded:
        rows = ", ".join(
            f'{{"code": "{code}", "label": "{code.upper()}", "position": {pos}}}'
            for pos, code in enumerate(LOOKUPS[table])
        )
        body.append(f"    op.bulk_insert({table}, [{rows}])")
    else:
        if rng.random() < 0.5:
            body.append(
                f'    op.create_index("ix_{table}_status_created", "{table}", '
                '["status", "created_at"])'
            )
        if rng.random() < 0.3:
            body.append(f'    op.create_index("uq_{table}_name", "{table}", ["name"], unique=True)')
    suffix, alter_up, alter_down = _alteration(index, rng, added)
    body += alter_up
    down_body = [*alter_down, f'    op.drop_table("{table}")']
    text = HEADER.format(
        message=f"create {table}{suffix}", rev=rev, down=down, down_repr=repr(down)
    )
    text += "\n".join(body) + "\n\n\ndef downgrade() -> None:\n" + "\n".join(down_body) + "\n"
    return text


def main() -> None:
    assert len(TABLES) == 100, len(TABLES)
    assert len(set(TABLES)) == 100
    rng = random.Random(20240611)
    VERSIONS.mkdir(exist_ok=True)
    for old in VERSIONS.glob("*.py"):
        old.unlink()
    added: set[tuple[str, str]] = set()
    for index, table in enumerate(TABLES):
        text = revision_text(index, rng, added)
        (VERSIONS / f"{index + 1:04d}_create_{table}.py").write_text(text)


if __name__ == "__main__":
    main()
