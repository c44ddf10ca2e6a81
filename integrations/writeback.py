"""Pure helpers the channel clients share for their `OrderWriter` write-backs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from integrations.protocols import StockLevel, Tracking


def shipment_note(lines: Mapping[str, int], tracking: Tracking | None) -> str:
    """A staff note describing a shipment: the units by SKU, then the tracking if any.

    >>> shipment_note({"A-1": 2}, Tracking("1Z9", "UPS", "https://ups.example/1Z9"))
    'Shipped 2 x A-1 with UPS 1Z9 (https://ups.example/1Z9)'
    """
    goods = ", ".join(f"{units} x {sku}" for sku, units in lines.items()) or "everything left to ship"
    text = f"Shipped {goods}"
    if tracking is not None:
        text += f" with {tracking.carrier} {tracking.number}"
        if tracking.url:
            text += f" ({tracking.url})"
    return text


def stock_by_sku(levels: Sequence[StockLevel]) -> dict[str, int]:
    """Levels as SKU -> units, the last level of a SKU given twice winning.

    Raises:
        ValueError: for a negative level (channels refuse them, or read them as back orders).
    """
    found: dict[str, int] = {}
    for level in levels:
        if level.available < 0:
            raise ValueError(f"negative stock for {level.sku!r}: {level.available}")
        found[level.sku] = level.available
    return found


def covers_order(lines: Mapping[str, int], ordered: Mapping[str, int]) -> bool:
    """True when `lines` (SKU -> units) ship at least everything `ordered`; empty `lines` means everything."""
    return not lines or all(lines.get(sku, 0) >= units for sku, units in ordered.items())
