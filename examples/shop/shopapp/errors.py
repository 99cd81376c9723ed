"""Domain errors (the HTTP API maps each to a status code)."""

from __future__ import annotations


class ShopError(Exception):
    status = 400


class ValidationError(ShopError):
    status = 400


class NotFoundError(ShopError):
    status = 404


class ConflictError(ShopError):
    status = 409


class DuplicateCustomerError(ConflictError):
    pass


class DuplicateSkuError(ConflictError):
    pass


class OutOfStockError(ConflictError):
    def __init__(self, sku: str, requested: int, available: int) -> None:
        super().__init__(f"{sku}: {requested} requested, {available} available")
        self.sku = sku
        self.requested = requested
        self.available = available


class ProductInactiveError(ConflictError):
    pass


class CouponExhaustedError(ConflictError):
    pass


class InvalidTransitionError(ConflictError):
    pass
