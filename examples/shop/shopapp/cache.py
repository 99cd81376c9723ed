"""The product cache on Redis (redis-py): product lookups read through it, writes invalidate it.

Everything the shop keeps in Redis is under the ``shop:`` prefix of the index in
``SHOP_REDIS_URL`` (index 0 by default):

- ``shop:product:<sku>`` — a cached product (JSON), for ``TTL_SECONDS``;
- ``shop:cache:hits`` / ``shop:cache:misses`` — counters of the lookups;
- ``shop:recent:<customer id>`` — the last ``RECENT_MAX`` skus a customer looked at (a list);
- the pub/sub channel ``shop:invalidations`` — one message (the sku) per invalidation, for the
  other processes that keep a copy of a product in memory.

`clear_namespace` deletes every ``shop:`` key (the cleanup a serial test suite runs).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import redis

from shopapp.services import Shop
from shopapp.settings import Settings

PREFIX = "shop:"
TTL_SECONDS = 300
RECENT_MAX = 5
HITS = PREFIX + "cache:hits"
MISSES = PREFIX + "cache:misses"
INVALIDATIONS = PREFIX + "invalidations"


def product_key(sku: str) -> str:
    return f"{PREFIX}product:{sku}"


def recent_key(customer_id: int) -> str:
    return f"{PREFIX}recent:{customer_id}"


def connect(settings: Settings) -> redis.Redis:
    """A client of the shop's Redis index (``SHOP_REDIS_URL``), replies decoded as text."""
    return redis.Redis.from_url(settings.redis_url, decode_responses=True)


@dataclass(frozen=True)
class CachedProduct:
    sku: str
    name: str
    price_cents: int
    stock: int
    active: bool


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    cached: int  # products in the cache now


class ProductCache:
    """Product lookups through Redis, the shop's service behind it (PostgreSQL)."""

    def __init__(self, client: redis.Redis, shop: Shop) -> None:
        self.redis = client
        self.shop = shop

    def product(self, sku: str, viewer: int | None = None) -> CachedProduct:
        """The product (from the cache if it is there); `viewer`, a customer id, is recorded
        in that customer's recently viewed list."""
        raw = self.redis.get(product_key(sku))
        if raw is not None:
            self.redis.incr(HITS)
            found = CachedProduct(**json.loads(raw))
        else:
            p = self.shop.product(sku)
            stock = p.inventory.quantity if p.inventory is not None else 0
            found = CachedProduct(p.sku, p.name, p.price_cents, stock, p.active)
            pipe = self.redis.pipeline()
            pipe.set(product_key(sku), json.dumps(asdict(found)), ex=TTL_SECONDS)
            pipe.incr(MISSES)
            pipe.execute()
        if viewer is not None:
            self._viewed(viewer, sku)
        return found

    def warm(self, skus: list[str]) -> int:
        """Loads the products that are not cached yet; returns how many were loaded."""
        loaded = 0
        for sku in skus:
            if not self.redis.exists(product_key(sku)):
                self.product(sku)
                loaded += 1
        return loaded

    def invalidate(self, sku: str) -> bool:
        """Drops the cached product and tells the subscribers; True when it was cached."""
        dropped = bool(self.redis.delete(product_key(sku)))
        self.redis.publish(INVALIDATIONS, sku)
        return dropped

    # Writes go to the service, then invalidate the cached copy.

    def set_price(self, sku: str, price_cents: int) -> None:
        self.shop.set_price(sku, price_cents)
        self.invalidate(sku)

    def restock(self, sku: str, quantity: int) -> int:
        new = self.shop.restock(sku, quantity)
        self.invalidate(sku)
        return new

    def stats(self) -> CacheStats:
        hits, misses = self.redis.mget(HITS, MISSES)
        cached = sum(1 for _ in self.redis.scan_iter(match=product_key("*"), count=500))
        return CacheStats(int(hits or 0), int(misses or 0), cached)

    # -- recently viewed --------------------------------------------------------------------

    def _viewed(self, customer_id: int, sku: str) -> None:
        key = recent_key(customer_id)
        pipe = self.redis.pipeline()
        pipe.lrem(key, 0, sku)
        pipe.lpush(key, sku)
        pipe.ltrim(key, 0, RECENT_MAX - 1)
        pipe.execute()

    def recently_viewed(self, customer_id: int) -> list[str]:
        """The customer's last viewed skus, newest first."""
        return [str(s) for s in self.redis.lrange(recent_key(customer_id), 0, -1)]


class Invalidations:
    """A subscription to ``shop:invalidations`` (what a process with an in-memory copy of the
    catalog listens to): `skus` returns the skus invalidated since the last call."""

    def __init__(self, client: redis.Redis) -> None:
        self.pubsub: Any = client.pubsub()
        self.pubsub.subscribe(INVALIDATIONS)
        # The server's confirmation: from here on, every PUBLISH on the channel reaches us.
        confirm = self.pubsub.get_message(timeout=5.0)
        if confirm is None or confirm["type"] != "subscribe":
            raise RuntimeError(f"no confirmation of SUBSCRIBE {INVALIDATIONS}: {confirm!r}")

    def skus(self, quiet: float = 0.2) -> list[str]:
        """The skus received until nothing came for `quiet` seconds, oldest first."""
        out: list[str] = []
        while (msg := self.pubsub.get_message(timeout=quiet)) is not None:
            if msg["type"] == "message" and msg["channel"] == INVALIDATIONS:
                out.append(str(msg["data"]))
        return out

    def close(self) -> None:
        self.pubsub.close()


def clear_namespace(client: redis.Redis) -> int:
    """Deletes every ``shop:`` key of the client's index; returns how many."""
    keys = list(client.scan_iter(match=PREFIX + "*", count=1000))
    return int(client.delete(*keys)) if keys else 0
