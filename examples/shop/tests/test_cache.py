"""The product cache on Redis: read-through lookups, invalidation (with its pub/sub message),
counters and the recently viewed lists. Fixed keys (``shop:product:A-100``) and exact counts,
like the rest of the suite; the tests without the ``catalog`` fixture touch Redis only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from shopapp.cache import (
    TTL_SECONDS,
    CachedProduct,
    CacheStats,
    Invalidations,
    ProductCache,
    product_key,
)
from shopapp.services import Shop
from tests.conftest import ALICE, BOB, CAROL, CATALOG


@pytest.fixture
def invalidations(redis_client: redis.Redis) -> Iterator[Invalidations]:
    subscription = Invalidations(redis_client)
    yield subscription
    subscription.close()


def test_cache_starts_empty(cache: ProductCache, redis_client: redis.Redis) -> None:
    assert cache.stats() == CacheStats(hits=0, misses=0, cached=0)
    assert list(redis_client.scan_iter(match="shop:*")) == []


@pytest.mark.usefixtures("catalog")
def test_first_lookup_misses_then_hits(cache: ProductCache, redis_client: redis.Redis) -> None:
    first = cache.product("A-100")
    again = cache.product("A-100")
    assert first == again == CachedProduct("A-100", "Espresso beans 1kg", 2400, 50, True)
    assert cache.stats() == CacheStats(hits=1, misses=1, cached=1)
    assert 0 < int(redis_client.ttl(product_key("A-100"))) <= TTL_SECONDS


@pytest.mark.usefixtures("catalog")
def test_repricing_through_the_cache_invalidates(cache: ProductCache) -> None:
    assert cache.product("B-200").price_cents == 3500
    cache.set_price("B-200", 3900)
    assert cache.product("B-200").price_cents == 3900
    assert cache.stats() == CacheStats(hits=0, misses=2, cached=1)


@pytest.mark.usefixtures("catalog")
def test_repricing_behind_the_cache_serves_the_old_price(cache: ProductCache, shop: Shop) -> None:
    """A write that does not go through the cache is not seen until the entry expires."""
    assert cache.product("B-201").price_cents == 4900
    shop.set_price("B-201", 5200)
    assert cache.product("B-201").price_cents == 4900
    assert shop.product("B-201").price_cents == 5200
    cache.invalidate("B-201")
    assert cache.product("B-201").price_cents == 5200


@pytest.mark.usefixtures("catalog")
def test_restock_invalidates(cache: ProductCache) -> None:
    assert cache.product("A-104").stock == 0
    assert cache.restock("A-104", 12) == 12
    assert cache.product("A-104").stock == 12
    assert cache.stats() == CacheStats(hits=0, misses=2, cached=1)


@pytest.mark.usefixtures("catalog")
def test_warm_loads_what_is_missing(cache: ProductCache) -> None:
    cache.product("A-101")
    assert cache.warm(sorted(CATALOG)) == len(CATALOG) - 1
    assert cache.warm(sorted(CATALOG)) == 0
    assert cache.stats() == CacheStats(hits=0, misses=len(CATALOG), cached=len(CATALOG))


def test_invalidations_are_published(cache: ProductCache, invalidations: Invalidations) -> None:
    assert [cache.invalidate(sku) for sku in ("A-100", "B-202", "A-100")] == [False] * 3
    assert invalidations.skus() == ["A-100", "B-202", "A-100"]


@pytest.mark.usefixtures("catalog")
def test_writes_through_the_cache_publish_invalidations(
    cache: ProductCache, invalidations: Invalidations
) -> None:
    cache.product("A-100")
    cache.set_price("A-100", 2500)
    cache.restock("B-202", 2)
    assert invalidations.skus() == ["A-100", "B-202"]


@pytest.mark.usefixtures("catalog")
@pytest.mark.parametrize("customer", [ALICE, BOB, CAROL])
def test_recently_viewed(cache: ProductCache, customer: int) -> None:
    views = ["A-100", "B-200", "A-101", "A-100", "B-201", "B-202", "A-102", "B-203"]
    for sku in views:
        cache.product(sku, viewer=customer)
    assert cache.recently_viewed(customer) == ["B-203", "A-102", "B-202", "B-201", "A-100"]
    assert [cache.recently_viewed(c) for c in (ALICE, BOB, CAROL) if c != customer] == [[], []]
    assert cache.stats() == CacheStats(hits=1, misses=7, cached=7)
