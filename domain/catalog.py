"""Reading catalog and stock rows from CSV files a clerk prepared: pure, row by row."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from domain.money import MoneyError, is_known_currency, to_money

CATALOG_REQUIRED = ("sku", "title", "price", "currency")
CATALOG_INTEGERS = ("weight_grams", "lead_time_days", "moq", "pack_size")


class RowError(ValueError):
    """A row that cannot be used; the message says why, without personal data."""


def _text(row: Mapping[str, Any], name: str) -> str:
    return (row.get(name) or "").strip()


def _whole(row: Mapping[str, Any], name: str, minimum: int) -> int | None:
    raw = _text(row, name)
    if not raw:
        return None
    if not raw.lstrip("-").isdigit() or int(raw) < minimum:
        raise RowError(f"{name} must be a whole number ≥ {minimum}, got {raw!r}")
    return int(raw)


def _amount(row: Mapping[str, Any], name: str) -> Decimal | None:
    raw = _text(row, name)
    if not raw:
        return None
    try:
        amount = to_money(raw)
    except MoneyError as exc:
        raise RowError(f"{name} is not an amount: {raw!r}") from exc
    if amount < 0:
        raise RowError(f"{name} is negative: {raw!r}")
    return amount


def parse_catalog_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A master-catalog row: `sku,title,price,currency` and the optional columns."""
    for name in CATALOG_REQUIRED:
        if not _text(row, name):
            raise RowError(f"{name} is empty")
    currency = _text(row, "currency").upper()
    if not is_known_currency(currency):
        raise RowError(f"currency is not an ISO 4217 code: {_text(row, 'currency')!r}")
    parsed: dict[str, Any] = {
        "sku": _text(row, "sku"),
        "title": _text(row, "title"),
        "price": _amount(row, "price"),
        "currency": currency,
        "cost": _amount(row, "cost"),
        "barcode": _text(row, "barcode") or None,
        "category": _text(row, "category") or None,
        "supplier": _text(row, "supplier") or None,
    }
    for name in CATALOG_INTEGERS:
        parsed[name] = _whole(row, name, 1 if name in ("moq", "pack_size") else 0)
    return parsed


def parse_stock_row(row: Mapping[str, Any], counted_column: str = "on_hand") -> tuple[str, str, int]:
    """(sku, location, units) from `sku,on_hand[,location]`."""
    sku = _text(row, "sku")
    if not sku:
        raise RowError("sku is empty")
    units = _whole(row, counted_column, 0)
    if units is None:
        raise RowError(f"{counted_column} is empty")
    return sku, _text(row, "location") or "main", units
