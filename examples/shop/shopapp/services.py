"""Business logic: customers, catalog, stock, orders, coupons. Every write goes to the audit log."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from shopapp.audit import AuditLog
from shopapp.errors import (
    CouponExhaustedError,
    DuplicateCustomerError,
    DuplicateSkuError,
    InvalidTransitionError,
    NotFoundError,
    OutOfStockError,
    ProductInactiveError,
    ValidationError,
)
from shopapp.models import Coupon, Customer, Inventory, Order, OrderLine, OutboxMessage, Product

#: One loyalty point per full 100 cents paid.
CENTS_PER_POINT = 100
MAX_LINE_QUANTITY = 1000


@dataclass(frozen=True)
class LineView:
    sku: str
    quantity: int
    unit_price_cents: int


@dataclass(frozen=True)
class OrderView:
    id: int
    customer_id: int
    status: str
    total_cents: int
    discount_cents: int
    coupon_code: str | None
    lines: tuple[LineView, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "status": self.status,
            "total_cents": self.total_cents,
            "discount_cents": self.discount_cents,
            "coupon_code": self.coupon_code,
            "lines": [
                {"sku": ln.sku, "quantity": ln.quantity, "unit_price_cents": ln.unit_price_cents}
                for ln in self.lines
            ],
        }


def _view(order: Order) -> OrderView:
    return OrderView(
        order.id,
        order.customer_id,
        order.status,
        order.total_cents,
        order.discount_cents,
        order.coupon_code,
        tuple(LineView(ln.product.sku, ln.quantity, ln.unit_price_cents) for ln in order.lines),
    )


def _normalize_email(email: str) -> str:
    email = email.strip()
    if "@" not in email or email.startswith("@") or email.endswith("@") or " " in email:
        raise ValidationError(f"invalid email address {email!r}")
    return email


def merge_lines(lines: Iterable[tuple[str, int]]) -> dict[str, int]:
    """sku -> quantity, duplicate skus added up (a cart may list an item twice)."""
    merged: dict[str, int] = {}
    for sku, quantity in lines:
        if not isinstance(quantity, int) or quantity <= 0 or quantity > MAX_LINE_QUANTITY:
            raise ValidationError(f"{sku}: quantity must be 1..{MAX_LINE_QUANTITY}")
        merged[sku] = merged.get(sku, 0) + quantity
    if not merged:
        raise ValidationError("an order needs at least one line")
    return merged


class Shop:
    """The shop's use cases over a session factory (PostgreSQL) and an audit log (MySQL)."""

    def __init__(self, sessions: sessionmaker[Session], audit: AuditLog) -> None:
        self.sessions = sessions
        self.audit = audit

    # -- customers ----------------------------------------------------------------------------

    def register_customer(self, email: str, name: str) -> Customer:
        email = _normalize_email(email)
        if not name.strip():
            raise ValidationError("name must not be empty")
        try:
            with self.sessions.begin() as s:
                exists = s.scalar(
                    select(Customer.id).where(func.lower(Customer.email) == email.lower())
                )
                if exists is not None:
                    raise DuplicateCustomerError(f"{email} is already registered")
                customer = Customer(email=email, name=name.strip())
                s.add(customer)
                s.flush()
        except IntegrityError as exc:  # registered concurrently
            raise DuplicateCustomerError(f"{email} is already registered") from exc
        self.audit.record("customer.registered", "customer", customer.id, email=email)
        return customer

    def customer(self, customer_id: int) -> Customer:
        with self.sessions() as s:
            customer = s.get(Customer, customer_id)
            if customer is None:
                raise NotFoundError(f"customer {customer_id} not found")
            return customer

    def find_customer(self, email: str) -> Customer | None:
        with self.sessions() as s:
            return s.scalar(select(Customer).where(func.lower(Customer.email) == email.lower()))

    def rename_customer(self, customer_id: int, name: str) -> None:
        with self.sessions.begin() as s:
            customer = s.get(Customer, customer_id)
            if customer is None:
                raise NotFoundError(f"customer {customer_id} not found")
            old, customer.name = customer.name, name
        self.audit.record("customer.renamed", "customer", customer_id, old=old, new=name)

    # -- catalog and stock --------------------------------------------------------------------

    def add_product(self, sku: str, name: str, price_cents: int, stock: int = 0) -> Product:
        if price_cents <= 0:
            raise ValidationError(f"{sku}: price must be positive")
        if stock < 0:
            raise ValidationError(f"{sku}: stock must not be negative")
        try:
            with self.sessions.begin() as s:
                product = Product(sku=sku, name=name, price_cents=price_cents)
                product.inventory = Inventory(quantity=stock)
                s.add(product)
                s.flush()
        except IntegrityError as exc:
            raise DuplicateSkuError(f"sku {sku} exists") from exc
        self.audit.record("product.added", "product", product.id, sku=sku, stock=stock)
        return product

    def add_products(self, rows: Sequence[tuple[str, str, int, int]]) -> list[int]:
        """Adds several products (sku, name, price_cents, stock) in one transaction."""
        try:
            with self.sessions.begin() as s:
                products = []
                for sku, name, price, stock in rows:
                    if price <= 0:
                        raise ValidationError(f"{sku}: price must be positive")
                    product = Product(sku=sku, name=name, price_cents=price)
                    product.inventory = Inventory(quantity=stock)
                    products.append(product)
                s.add_all(products)
                s.flush()
                ids = [p.id for p in products]
        except IntegrityError as exc:
            raise DuplicateSkuError("a sku of the batch exists") from exc
        self.audit.record_many(
            [
                ("product.added", "product", pid, {"sku": row[0], "stock": row[3]})
                for pid, row in zip(ids, rows, strict=True)
            ]
        )
        return ids

    def product(self, sku: str) -> Product:
        with self.sessions() as s:
            product = s.scalar(
                select(Product).options(selectinload(Product.inventory)).where(Product.sku == sku)
            )
            if product is None:
                raise NotFoundError(f"product {sku} not found")
            return product

    def stock(self, sku: str) -> int:
        with self.sessions() as s:
            qty = s.scalar(
                select(Inventory.quantity).join(Inventory.product).where(Product.sku == sku)
            )
            if qty is None:
                raise NotFoundError(f"product {sku} not found")
            return int(qty)

    def restock(self, sku: str, quantity: int) -> int:
        """Adds `quantity` units; returns the new stock."""
        if quantity <= 0:
            raise ValidationError("restock quantity must be positive")
        with self.sessions.begin() as s:
            product_id = s.scalar(select(Product.id).where(Product.sku == sku))
            if product_id is None:
                raise NotFoundError(f"product {sku} not found")
            new = s.scalar(
                update(Inventory)
                .where(Inventory.product_id == product_id)
                .values(quantity=Inventory.quantity + quantity, updated_at=func.now())
                .returning(Inventory.quantity)
            )
        self.audit.record("product.restocked", "product", product_id, sku=sku, added=quantity)
        return int(new or 0)

    def set_price(self, sku: str, price_cents: int) -> None:
        if price_cents <= 0:
            raise ValidationError(f"{sku}: price must be positive")
        with self.sessions.begin() as s:
            product = s.scalar(select(Product).where(Product.sku == sku))
            if product is None:
                raise NotFoundError(f"product {sku} not found")
            old, product.price_cents = product.price_cents, price_cents
        self.audit.record(
            "product.repriced", "product", product.id, sku=sku, old=old, new=price_cents
        )

    def deactivate(self, sku: str) -> None:
        with self.sessions.begin() as s:
            product = s.scalar(select(Product).where(Product.sku == sku))
            if product is None:
                raise NotFoundError(f"product {sku} not found")
            product.active = False
        self.audit.record("product.deactivated", "product", product.id, sku=sku)

    # -- coupons ------------------------------------------------------------------------------

    def create_coupon(self, code: str, percent_off: int, max_uses: int = 1) -> Coupon:
        if not 1 <= percent_off <= 100:
            raise ValidationError("percent_off must be 1..100")
        if max_uses <= 0:
            raise ValidationError("max_uses must be positive")
        try:
            with self.sessions.begin() as s:
                coupon = Coupon(code=code, percent_off=percent_off, max_uses=max_uses)
                s.add(coupon)
        except IntegrityError as exc:
            raise ValidationError(f"coupon {code} exists") from exc
        self.audit.record("coupon.created", "coupon", 0, code=code, percent_off=percent_off)
        return coupon

    # -- orders -------------------------------------------------------------------------------

    def place_order(
        self, customer_id: int, lines: Iterable[tuple[str, int]], coupon: str | None = None
    ) -> OrderView:
        wanted = merge_lines(lines)
        with self.sessions.begin() as s:
            customer = s.get(Customer, customer_id, with_for_update=True)
            if customer is None:
                raise NotFoundError(f"customer {customer_id} not found")
            products = {
                p.sku: p for p in s.scalars(select(Product).where(Product.sku.in_(list(wanted))))
            }
            for sku in wanted:
                if sku not in products:
                    raise NotFoundError(f"product {sku} not found")
                if not products[sku].active:
                    raise ProductInactiveError(f"product {sku} is no longer sold")
            # Lock the stock rows in one order (product id) so concurrent orders cannot deadlock.
            ids = sorted(p.id for p in products.values())
            stock = {
                inv.product_id: inv
                for inv in s.scalars(
                    select(Inventory)
                    .where(Inventory.product_id.in_(ids))
                    .order_by(Inventory.product_id)
                    .with_for_update()
                )
            }
            found: Coupon | None = None
            if coupon is not None:
                found = s.get(Coupon, coupon, with_for_update=True)
                if found is None:
                    raise NotFoundError(f"coupon {coupon} not found")
                if found.uses >= found.max_uses:
                    raise CouponExhaustedError(f"coupon {coupon} is used up")
            order = Order(customer=customer, total_cents=0)
            subtotal = 0
            for sku, quantity in sorted(wanted.items()):
                product = products[sku]
                inv = stock[product.id]
                if inv.quantity < quantity:
                    raise OutOfStockError(sku, quantity, inv.quantity)
                inv.quantity -= quantity
                order.lines.append(
                    OrderLine(
                        product=product, quantity=quantity, unit_price_cents=product.price_cents
                    )
                )
                subtotal += quantity * product.price_cents
            discount = 0
            if found is not None:
                found.uses += 1
                discount = subtotal * found.percent_off // 100
                order.coupon_code = found.code
            order.discount_cents = discount
            order.total_cents = subtotal - discount
            customer.loyalty_points += order.total_cents // CENTS_PER_POINT
            s.add(order)
            s.flush()
            s.add(
                OutboxMessage(
                    kind="order_confirmation", order_id=order.id, recipient=customer.email
                )
            )
            view = _view(order)
        self.audit.record(
            "order.placed",
            "order",
            view.id,
            customer_id=customer_id,
            total_cents=view.total_cents,
            lines={ln.sku: ln.quantity for ln in view.lines},
        )
        return view

    def order(self, order_id: int) -> OrderView:
        with self.sessions() as s:
            order = s.scalar(
                select(Order)
                .options(selectinload(Order.lines).selectinload(OrderLine.product))
                .where(Order.id == order_id)
            )
            if order is None:
                raise NotFoundError(f"order {order_id} not found")
            return _view(order)

    def orders_of(self, customer_id: int) -> list[OrderView]:
        with self.sessions() as s:
            orders = s.scalars(
                select(Order)
                .options(selectinload(Order.lines).selectinload(OrderLine.product))
                .where(Order.customer_id == customer_id)
                .order_by(Order.id)
            )
            return [_view(o) for o in orders]

    def cancel_order(self, order_id: int) -> OrderView:
        """Cancels a placed order: stock back, coupon use released, loyalty points withdrawn."""
        with self.sessions.begin() as s:
            order = s.get(Order, order_id, with_for_update=True)
            if order is None:
                raise NotFoundError(f"order {order_id} not found")
            if order.status != "placed":
                raise InvalidTransitionError(f"order {order_id} is {order.status}")
            for line in order.lines:
                s.execute(
                    update(Inventory)
                    .where(Inventory.product_id == line.product_id)
                    .values(quantity=Inventory.quantity + line.quantity, updated_at=func.now())
                )
            if order.coupon_code is not None:
                s.execute(
                    update(Coupon)
                    .where(Coupon.code == order.coupon_code)
                    .values(uses=Coupon.uses - 1)
                )
            customer = order.customer
            customer.loyalty_points = max(
                0, customer.loyalty_points - order.total_cents // CENTS_PER_POINT
            )
            order.status = "cancelled"
            s.add(
                OutboxMessage(kind="order_cancelled", order_id=order.id, recipient=customer.email)
            )
            s.flush()
            view = _view(order)
        self.audit.record("order.cancelled", "order", order_id, customer_id=view.customer_id)
        return view

    def ship_order(self, order_id: int) -> OrderView:
        with self.sessions.begin() as s:
            order = s.get(Order, order_id, with_for_update=True)
            if order is None:
                raise NotFoundError(f"order {order_id} not found")
            if order.status != "placed":
                raise InvalidTransitionError(f"order {order_id} is {order.status}")
            order.status = "shipped"
            s.add(
                OutboxMessage(
                    kind="order_shipped", order_id=order.id, recipient=order.customer.email
                )
            )
            s.flush()
            view = _view(order)
        self.audit.record("order.shipped", "order", order_id, customer_id=view.customer_id)
        return view
