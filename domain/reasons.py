"""Reason codes of the public contract: why an order is held or a payload quarantined."""

from __future__ import annotations

from enum import StrEnum


class Quarantine(StrEnum):
    """The payload cannot become an order; it is kept raw, apart from orders."""

    MALFORMED = "malformed"
    INVALID_QUANTITY = "invalid_quantity"
    NO_LINE_ITEMS = "no_line_items"
    UNKNOWN_CURRENCY = "unknown_currency"


class Hold(StrEnum):
    """The order is stored but waits for a person."""

    UNKNOWN_SKU = "unknown_sku"
    INSUFFICIENT_STOCK = "insufficient_stock"
    PRICE_MISMATCH = "price_mismatch"
    INCOMPLETE_ADDRESS = "incomplete_address"
    TOTAL_MISMATCH = "total_mismatch"
    HIGH_RISK = "high_risk"


ALL_REASONS: tuple[str, ...] = tuple(r.value for r in Quarantine) + tuple(r.value for r in Hold)
