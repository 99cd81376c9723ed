"""The shop's JSON HTTP API, a plain WSGI application.

GET  /health                         {"status": "ok", "database": ..., "audit_database": ...}
GET  /products                       [{"sku", "name", "price_cents", "active", "stock"}]
GET  /products/<sku>
POST /products                       {"sku", "name", "price_cents", "stock"}
POST /products/<sku>/restock         {"quantity"}
POST /customers                      {"email", "name"}
GET  /customers/<id>
GET  /customers/<id>/orders
POST /orders                         {"customer_id", "lines": [{"sku", "quantity"}], "coupon"}
GET  /orders/<id>
POST /orders/<id>/cancel | /ship
GET  /reports/sales | /reports/top-customers?limit=N | /reports/low-stock?threshold=N
GET  /audit?entity=E&entity_id=N
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any, TypeVar
from urllib.parse import parse_qs

from sqlalchemy import Engine, select, text

from shopapp import reports
from shopapp.audit import AuditLog
from shopapp.db import session_factory
from shopapp.errors import NotFoundError, ShopError, ValidationError
from shopapp.models import Product
from shopapp.services import Shop
from shopapp.settings import Settings

T = TypeVar("T")
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
Handler = Callable[["Request"], tuple[int, Any]]

_REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    500: "Internal Server Error",
}


class Request:
    def __init__(self, environ: dict[str, Any], params: dict[str, str], shop: Shop) -> None:
        self.environ = environ
        self.params = params
        self.shop = shop
        self.query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}

    def json(self) -> dict[str, Any]:
        length = int(self.environ.get("CONTENT_LENGTH") or 0)
        raw = self.environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            raise ValidationError(f"invalid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ValidationError("the body must be a JSON object")
        return body

    def int_param(self, name: str) -> int:
        return int(self.params[name])

    def int_query(self, name: str, default: int) -> int:
        try:
            return int(self.query.get(name, default))
        except ValueError as exc:
            raise ValidationError(f"{name} must be a number") from exc


def _field(body: dict[str, Any], name: str, kind: type[T]) -> T:
    value = body.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ValidationError(f"{name} must be a {kind.__name__}")
    return value


class ShopAPI:
    """WSGI callable. One engine (pooled) for the process; one audit connection per request."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.sessions = session_factory(engine)
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        for method, pattern, handler in (
            ("GET", r"/health", self.health),
            ("GET", r"/products", self.list_products),
            ("POST", r"/products", self.add_product),
            ("GET", r"/products/(?P<sku>[^/]+)", self.get_product),
            ("POST", r"/products/(?P<sku>[^/]+)/restock", self.restock),
            ("POST", r"/customers", self.add_customer),
            ("GET", r"/customers/(?P<id>\d+)", self.get_customer),
            ("GET", r"/customers/(?P<id>\d+)/orders", self.customer_orders),
            ("POST", r"/orders", self.place_order),
            ("GET", r"/orders/(?P<id>\d+)", self.get_order),
            ("POST", r"/orders/(?P<id>\d+)/cancel", self.cancel_order),
            ("POST", r"/orders/(?P<id>\d+)/ship", self.ship_order),
            ("GET", r"/reports/sales", self.sales),
            ("GET", r"/reports/top-customers", self.top_customers),
            ("GET", r"/reports/low-stock", self.low_stock),
            ("GET", r"/audit", self.audit_entries),
        ):
            self.routes.append((method, re.compile(pattern + r"/?\Z"), handler))

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        status, body = self.dispatch(environ)
        data = json.dumps(body).encode()
        start_response(
            f"{status} {_REASONS.get(status, 'Unknown')}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
        )
        return [data]

    def dispatch(self, environ: dict[str, Any]) -> tuple[int, Any]:
        path = environ.get("PATH_INFO", "/")
        method = environ.get("REQUEST_METHOD", "GET")
        allowed = False
        for route_method, pattern, handler in self.routes:
            m = pattern.match(path)
            if m is None:
                continue
            allowed = True
            if route_method != method:
                continue
            with AuditLog(self.settings, actor="api") as audit:
                request = Request(environ, m.groupdict(), Shop(self.sessions, audit))
                try:
                    return handler(request)
                except ShopError as exc:
                    return exc.status, {"error": type(exc).__name__, "message": str(exc)}
        if allowed:
            return 405, {"error": "MethodNotAllowed", "message": f"{method} {path}"}
        return 404, {"error": "NotFound", "message": f"no route for {path}"}

    # -- handlers -----------------------------------------------------------------------------

    def health(self, req: Request) -> tuple[int, Any]:
        with self.engine.connect() as conn:
            database = conn.scalar(text("SELECT current_database()"))
        return 200, {
            "status": "ok",
            "database": database,
            "audit_database": req.shop.audit.database(),
        }

    def list_products(self, req: Request) -> tuple[int, Any]:
        with self.sessions() as s:
            products = s.scalars(select(Product).order_by(Product.sku)).all()
            return 200, [_product_json(p) for p in products]

    def get_product(self, req: Request) -> tuple[int, Any]:
        return 200, _product_json(req.shop.product(req.params["sku"]))

    def add_product(self, req: Request) -> tuple[int, Any]:
        body = req.json()
        product = req.shop.add_product(
            _field(body, "sku", str),
            _field(body, "name", str),
            _field(body, "price_cents", int),
            int(body.get("stock", 0)),
        )
        return 201, {"id": product.id, "sku": product.sku}

    def restock(self, req: Request) -> tuple[int, Any]:
        quantity = _field(req.json(), "quantity", int)
        return 200, {
            "sku": req.params["sku"],
            "stock": req.shop.restock(req.params["sku"], quantity),
        }

    def add_customer(self, req: Request) -> tuple[int, Any]:
        body = req.json()
        customer = req.shop.register_customer(_field(body, "email", str), _field(body, "name", str))
        return 201, {"id": customer.id, "email": customer.email}

    def get_customer(self, req: Request) -> tuple[int, Any]:
        c = req.shop.customer(req.int_param("id"))
        return 200, {
            "id": c.id,
            "email": c.email,
            "name": c.name,
            "loyalty_points": c.loyalty_points,
        }

    def customer_orders(self, req: Request) -> tuple[int, Any]:
        cid = req.int_param("id")
        req.shop.customer(cid)
        return 200, [o.as_json() for o in req.shop.orders_of(cid)]

    def place_order(self, req: Request) -> tuple[int, Any]:
        body = req.json()
        lines = body.get("lines")
        if not isinstance(lines, list):
            raise ValidationError("lines must be a list")
        try:
            pairs = [(str(ln["sku"]), ln["quantity"]) for ln in lines]
        except (KeyError, TypeError) as exc:
            raise ValidationError("each line needs a sku and a quantity") from exc
        coupon = body.get("coupon")
        order = req.shop.place_order(_field(body, "customer_id", int), pairs, coupon)
        return 201, order.as_json()

    def get_order(self, req: Request) -> tuple[int, Any]:
        return 200, req.shop.order(req.int_param("id")).as_json()

    def cancel_order(self, req: Request) -> tuple[int, Any]:
        return 200, req.shop.cancel_order(req.int_param("id")).as_json()

    def ship_order(self, req: Request) -> tuple[int, Any]:
        return 200, req.shop.ship_order(req.int_param("id")).as_json()

    def sales(self, req: Request) -> tuple[int, Any]:
        return 200, [asdict(r) for r in reports.sales_by_product(self.engine)]

    def top_customers(self, req: Request) -> tuple[int, Any]:
        limit = req.int_query("limit", 5)
        return 200, [asdict(r) for r in reports.top_customers(self.engine, limit)]

    def low_stock(self, req: Request) -> tuple[int, Any]:
        threshold = req.int_query("threshold", 5)
        return 200, [{"sku": s, "stock": q} for s, q in reports.low_stock(self.engine, threshold)]

    def audit_entries(self, req: Request) -> tuple[int, Any]:
        entity = req.query.get("entity")
        entity_id = req.int_query("entity_id", -1)
        if entity is None:
            raise NotFoundError("give entity=...")
        entries = req.shop.audit.entries(entity, None if entity_id < 0 else entity_id)
        return 200, [
            {"id": e.id, "action": e.action, "entity_id": e.entity_id, "details": e.details}
            for e in entries
        ]


def _product_json(p: Product) -> dict[str, Any]:
    return {
        "sku": p.sku,
        "name": p.name,
        "price_cents": p.price_cents,
        "active": p.active,
        "stock": p.inventory.quantity if p.inventory is not None else 0,
    }
