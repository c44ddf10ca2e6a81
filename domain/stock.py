"""Stock arithmetic: levels from ledger sums, and who gets the units a batch competes for."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StockLevel:
    """On hand, reserved and available units of one SKU, summed from the ledger."""

    sku: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True, slots=True)
class Claim:
    """An order's want of stock, and what it already holds from an earlier run."""

    key: str
    wanted: Mapping[str, int]
    held: Mapping[str, int]


def allocate(claims: Iterable[Claim], available: Mapping[str, int]) -> set[str]:
    """Grants claims in the order given (oldest first), all lines or nothing.

    An order keeps what it already reserved, so re-checking it never competes with
    itself.

    Returns:
        The keys of the claims that stock can cover.
    """
    free = dict(available)
    granted: set[str] = set()
    for claim in claims:
        for sku, units in claim.held.items():
            free[sku] = free.get(sku, 0) + units
        if all(free.get(sku, 0) >= units for sku, units in claim.wanted.items()):
            for sku, units in claim.wanted.items():
                free[sku] -= units
            granted.add(claim.key)
        else:
            for sku, units in claim.held.items():
                free[sku] -= units
    return granted


def reservation_changes(held: Mapping[str, int], wanted: Mapping[str, int]) -> dict[str, int]:
    """The ledger deltas that turn an order's reservation from `held` into `wanted`."""
    deltas = {sku: wanted.get(sku, 0) - held.get(sku, 0) for sku in set(held) | set(wanted)}
    return {sku: delta for sku, delta in deltas.items() if delta}
