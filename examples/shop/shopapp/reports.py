"""Read-only reports over the shop database (SQLAlchemy Core)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select, text

from shopapp.models import Customer, Inventory, Order, Product


@dataclass(frozen=True)
class ProductSales:
    sku: str
    units: int
    revenue_cents: int


@dataclass(frozen=True)
class CustomerRank:
    customer_id: int
    email: str
    orders: int
    spent_cents: int


def sales_by_product(engine: Engine) -> list[ProductSales]:
    """Units and gross revenue per product (cancelled orders excluded), best first."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT sku, units, revenue_cents FROM product_sales"
                " ORDER BY revenue_cents DESC, sku"
            )
        )
        return [ProductSales(str(r[0]), int(r[1]), int(r[2])) for r in rows]


def top_customers(engine: Engine, limit: int = 5) -> list[CustomerRank]:
    """Customers by money spent (net of discounts, cancelled orders excluded)."""
    spent = func.coalesce(func.sum(Order.total_cents), 0)
    stmt = (
        select(Customer.id, Customer.email, func.count(Order.id), spent)
        .join(Order, (Order.customer_id == Customer.id) & (Order.status != "cancelled"))
        .group_by(Customer.id, Customer.email)
        .order_by(spent.desc(), Customer.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [CustomerRank(int(a), str(b), int(c), int(d)) for a, b, c, d in conn.execute(stmt)]


def low_stock(engine: Engine, threshold: int) -> list[tuple[str, int]]:
    """Active products with fewer than `threshold` units, fewest first."""
    stmt = (
        select(Product.sku, Inventory.quantity)
        .join(Inventory, Inventory.product_id == Product.id)
        .where(Product.active, Inventory.quantity < threshold)
        .order_by(Inventory.quantity, Product.sku)
    )
    with engine.connect() as conn:
        return [(str(s), int(q)) for s, q in conn.execute(stmt)]


def revenue_by_status(engine: Engine) -> dict[str, int]:
    stmt = select(Order.status, func.sum(Order.total_cents)).group_by(Order.status)
    with engine.connect() as conn:
        return {str(s): int(t) for s, t in conn.execute(stmt)}


def inventory_value(engine: Engine) -> int:
    """Sum of stock x price over active products, in cents."""
    stmt = (
        select(func.coalesce(func.sum(Inventory.quantity * Product.price_cents), 0))
        .join(Product, Product.id == Inventory.product_id)
        .where(Product.active)
    )
    with engine.connect() as conn:
        return int(conn.scalar(stmt) or 0)


def table_counts(engine: Engine) -> dict[str, int]:
    names = ("customers", "products", "inventory", "orders", "order_lines", "coupons")
    query = " UNION ALL ".join(f"SELECT '{n}', COUNT(*) FROM {n}" for n in names)
    with engine.connect() as conn:
        return {str(n): int(c) for n, c in conn.execute(text(query))}
