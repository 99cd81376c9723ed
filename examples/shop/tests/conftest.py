"""Fixtures of the shop tests: engines, the service layer, a fixed catalog and customers, an
order history, the live HTTP server, the Redis cache and the RabbitMQ task queue."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import requests
from sqlalchemy import Engine

from shopapp import cache as shop_cache
from shopapp.api import ShopAPI
from shopapp.audit import AuditLog
from shopapp.cache import ProductCache
from shopapp.db import make_engine, session_factory
from shopapp.notifications import MemoryMailer
from shopapp.server import RunningServer, serve_in_thread
from shopapp.services import OrderView, Shop
from shopapp.settings import Settings, load
from shopapp.tasks import TaskQueue, Worker, handlers

try:
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
except ImportError:
    OpenTelemetryMiddleware = None

#: sku -> (name, price in cents, initial stock)
CATALOG: dict[str, tuple[str, int, int]] = {
    "A-100": ("Espresso beans 1kg", 2400, 50),
    "A-101": ("Filter coffee 500g", 1200, 40),
    "A-102": ("Green tea 100g", 800, 30),
    "A-103": ("Chai latte mix", 950, 5),
    "A-104": ("Decaf beans 1kg", 2600, 0),
    "B-200": ("Moka pot", 3500, 10),
    "B-201": ("Pour-over kettle", 4900, 8),
    "B-202": ("Burr grinder", 12900, 3),
    "B-203": ("Milk frother", 2900, 12),
    "B-204": ("Travel mug", 1500, 25),
}
#: email -> name; registered in this order, so their ids are 1, 2, 3.
CUSTOMERS: dict[str, str] = {
    "alice@example.com": "Alice Archer",
    "bob@example.com": "Bob Baker",
    "carol@example.com": "Carol Clark",
}
ALICE, BOB, CAROL = 1, 2, 3


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load()


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    eng = make_engine(settings, pool_size=2)
    yield eng
    eng.dispose()


@pytest.fixture
def audit(settings: Settings) -> Iterator[AuditLog]:
    with AuditLog(settings, actor="test") as log:
        yield log


@pytest.fixture
def shop(engine: Engine, audit: AuditLog) -> Shop:
    return Shop(session_factory(engine), audit)


@pytest.fixture
def catalog(shop: Shop) -> dict[str, int]:
    """The ten catalog products; sku -> product id (1..10 in catalog order)."""
    rows = [(sku, name, price, stock) for sku, (name, price, stock) in CATALOG.items()]
    ids = shop.add_products(rows)
    return dict(zip(CATALOG, ids, strict=True))


@pytest.fixture
def customers(shop: Shop) -> dict[str, int]:
    """Alice, Bob and Carol; email -> customer id (1, 2, 3)."""
    return {email: shop.register_customer(email, name).id for email, name in CUSTOMERS.items()}


@dataclass(frozen=True)
class PlannedOrder:
    customer_id: int
    lines: tuple[tuple[str, int], ...]
    fate: str  # "placed", "shipped" or "cancelled"


def history_plan(n_orders: int = 24, seed: int = 20240611) -> list[PlannedOrder]:
    """A deterministic, feasible order history over the catalog (stock is never exceeded)."""
    rng = random.Random(seed)
    stock = {sku: s for sku, (_n, _p, s) in CATALOG.items()}
    plan = []
    for i in range(n_orders):
        lines: dict[str, int] = {}
        for _ in range(rng.randint(1, 3)):
            sku = rng.choice(sorted(CATALOG))
            qty = rng.randint(1, 3)
            if stock[sku] - lines.get(sku, 0) >= qty:
                lines[sku] = lines.get(sku, 0) + qty
        if not lines:
            sku = max(stock, key=lambda k: stock[k])
            lines[sku] = 1
        fate = "cancelled" if i % 5 == 2 else "shipped" if i % 4 == 1 else "placed"
        if fate != "cancelled":
            for sku, qty in lines.items():
                stock[sku] -= qty
        else:
            # a cancelled order held its stock only until it was cancelled
            for sku, qty in lines.items():
                if stock[sku] < qty:
                    lines[sku] = stock[sku]
            lines = {k: v for k, v in lines.items() if v > 0} or {"A-100": 1}
        plan.append(PlannedOrder(rng.randint(1, 3), tuple(sorted(lines.items())), fate))
    return plan


@dataclass
class History:
    plan: list[PlannedOrder]
    orders: list[OrderView]

    def expected_units(self) -> dict[str, int]:
        units = dict.fromkeys(CATALOG, 0)
        for p in self.plan:
            if p.fate != "cancelled":
                for sku, qty in p.lines:
                    units[sku] += qty
        return units

    def expected_stock(self) -> dict[str, int]:
        units = self.expected_units()
        return {sku: CATALOG[sku][2] - units[sku] for sku in CATALOG}

    def expected_spent(self) -> dict[int, int]:
        spent = {ALICE: 0, BOB: 0, CAROL: 0}
        for p, o in zip(self.plan, self.orders, strict=True):
            if p.fate != "cancelled":
                spent[p.customer_id] += o.total_cents
        return spent

    def count(self, fate: str) -> int:
        return sum(1 for p in self.plan if p.fate == fate)


@pytest.fixture
def history(shop: Shop, catalog: dict[str, int], customers: dict[str, int]) -> History:
    """24 orders placed one by one through the service; some shipped, some cancelled."""
    plan = history_plan()
    orders = []
    for p in plan:
        order = shop.place_order(p.customer_id, p.lines)
        if p.fate == "shipped":
            order = shop.ship_order(order.id)
        elif p.fate == "cancelled":
            order = shop.cancel_order(order.id)
        orders.append(order)
    return History(plan, orders)


# -- the live HTTP server -----------------------------------------------------------------------


@dataclass
class LiveServer:
    server: RunningServer
    engine: Engine

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="session")
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The API served from a thread of this test process, on its own engine (pool)."""
    engine = make_engine(settings, pool_size=4)
    app: Any = ShopAPI(engine, settings)
    if OpenTelemetryMiddleware is not None:  # server spans, when OpenTelemetry is installed
        app = OpenTelemetryMiddleware(app)
    server = serve_in_thread(app)
    yield LiveServer(server, engine)
    server.stop()
    engine.dispose()


class Api:
    """A small JSON client of the live server."""

    def __init__(self, base: str) -> None:
        self.base = base

    def get(self, path: str, **params: str | int) -> requests.Response:
        return requests.get(self.base + path, params=params or None, timeout=30)

    def post(self, path: str, body: object = None) -> requests.Response:
        return requests.post(self.base + path, json=body if body is not None else {}, timeout=30)


@pytest.fixture
def api(live_server: LiveServer) -> Api:
    """The server's pooled connections are dropped before each test: its first request then
    connects again (and, under dagz, the test's databases are prepared like on any connect)."""
    live_server.engine.dispose()
    return Api(live_server.url)


# -- Redis and RabbitMQ -------------------------------------------------------------------------
# Like the SQL databases: under dagz each worker has its own Redis index and vhost, which
# `prepare` empties before each test (conftest.py); without dagz the suite uses the shop's own
# (index 0, vhost /), so the fixtures below delete the shop's keys and queues there before each
# test, and once more at the end of the session so that a run leaves them as it found them.


@dataclass(frozen=True)
class Landed:
    """Where this process's clients really are, against what the settings name."""

    asked: str
    landed: str

    @property
    def rerouted(self) -> bool:
        return self.asked != self.landed


@pytest.fixture(scope="session")
def redis_landed(settings: Settings) -> Iterator[Landed]:
    """The index the server says our connection uses (CLIENT INFO), vs the one in the URL."""
    client = shop_cache.connect(settings)
    asked = str(client.connection_pool.connection_kwargs.get("db", 0))
    landed = Landed(asked, str(client.client_info()["db"]))
    yield landed
    if not landed.rerouted:
        shop_cache.clear_namespace(client)
    client.close()


@pytest.fixture
def redis_client(settings: Settings, redis_landed: Landed) -> Iterator[redis.Redis]:
    client = shop_cache.connect(settings)
    if not redis_landed.rerouted:
        shop_cache.clear_namespace(client)
    yield client
    client.close()


@pytest.fixture
def cache(redis_client: redis.Redis, shop: Shop) -> ProductCache:
    return ProductCache(redis_client, shop)


@pytest.fixture(scope="session")
def amqp_landed(settings: Settings) -> Iterator[Landed]:
    """The vhost our connection opened, vs the one in the URL."""
    with TaskQueue(settings.amqp_url) as q:
        landed = Landed(str(q.conn.virtual_host), q.vhost)
    yield landed
    if not landed.rerouted:
        with TaskQueue(settings.amqp_url) as q:
            q.delete_all()


@pytest.fixture
def task_queue(settings: Settings, amqp_landed: Landed) -> Iterator[TaskQueue]:
    """The web side's connection: the shop's queues, empty."""
    with TaskQueue(settings.amqp_url) as q:
        if not amqp_landed.rerouted:
            q.delete_all()
        q.declare()
        yield q


@pytest.fixture
def task_mailer() -> MemoryMailer:
    return MemoryMailer()


@pytest.fixture
def worker(
    settings: Settings,
    task_queue: TaskQueue,
    shop: Shop,
    cache: ProductCache,
    task_mailer: MemoryMailer,
) -> Iterator[Worker]:
    """A task worker on its own connection to the broker (after `task_queue` emptied it)."""
    with TaskQueue(settings.amqp_url) as q:
        yield Worker(q, handlers(shop, cache, task_mailer))
