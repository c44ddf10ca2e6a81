"""Daily history per SKU, shaped for the reorder math, from sales and ledger sums."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class History:
    """`sold` and `in_stock` shaped (skus, days), oldest first; `first_active` per SKU."""

    sold: np.ndarray
    in_stock: np.ndarray
    first_active: np.ndarray


def daily_history(
    skus: Sequence[str],
    days: int,
    sales: Sequence[tuple[str, int, int]],
    on_hand_changes: Sequence[tuple[str, int, int]],
) -> History:
    """Lays sales and on-hand changes out by SKU and day.

    A day counts as in stock when something sold that day (a sale proves stock) or the
    ledger shows units on hand at the start of it. Before a SKU's first ledger entry its
    stock is unknown, so those days count as in stock: a store whose stock was first
    imported today still has a past to learn from. A SKU is active from its first sale
    or its first day with stock on hand, whichever comes first.

    Args:
        skus: the rows, in order; sales and changes of other SKUs are ignored.
        days: the length of the window.
        sales: (sku, day, units) with 0 <= day < days.
        on_hand_changes: (sku, day, net change) with -1 <= day < days; day -1 holds
            everything before the window (the opening balance).
    """
    row_of = {sku: row for row, sku in enumerate(skus)}
    sold = np.zeros((len(skus), days))
    rows, cols, units = _scatter(sales, row_of, days)
    np.add.at(sold, (rows, cols), units)
    # Column 0 is the opening balance; column d + 1 the change during day d.
    changes = np.zeros((len(skus), days + 1))
    rows_c, cols_c, delta = _scatter(on_hand_changes, row_of, days, shift=1)
    np.add.at(changes, (rows_c, cols_c), delta)
    on_hand_at_start = np.cumsum(changes, axis=1)[:, :days]
    first_entry = np.full(len(skus), days + 1)
    np.minimum.at(first_entry, rows_c, cols_c)  # column c holds the change before day c
    ledger_known = np.arange(days) >= first_entry[:, None]
    stocked = on_hand_at_start > 0
    in_stock = (sold > 0) | stocked | ~ledger_known
    began = (sold > 0) | stocked
    first_active = np.where(began.any(axis=1), np.argmax(began, axis=1), days)
    return History(sold, in_stock, first_active)

def _scatter(
    rows: Sequence[tuple[str, int, int]], row_of: dict[str, int], days: int, shift: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    kept = [(row_of[sku], day + shift, units) for sku, day, units in rows if sku in row_of and -shift <= day < days]
    if not kept:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int), np.zeros(0)
    index, column, value = zip(*kept, strict=True)
    return np.asarray(index), np.asarray(column), np.asarray(value, dtype=float)
