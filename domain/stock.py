"""Stock arithmetic: levels from ledger sums, and who gets the units a batch competes for."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from domain.money import cents


class Movement(StrEnum):
    """Why the ledger changed. Levels are only ever sums of these rows, never overwritten."""

    RECEIPT = "receipt"  # a supplier delivery: on hand up
    RESERVATION = "reservation"  # an accepted order claims units: reserved up
    RELEASE = "release"  # a cancelled or changed order gives units back: reserved down
    SHIPMENT = "shipment"  # units leave: on hand and reserved down
    RETURN = "return"  # a resellable return goes back on the shelf: on hand up
    WRITE_OFF = "write_off"  # damaged or lost: on hand down
    COUNT = "count"  # a cycle count corrects on hand to what was counted
    ADJUSTMENT = "adjustment"  # a person sets or corrects on hand by hand (e.g. `clerk import stock`)


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


@dataclass(frozen=True, slots=True)
class Variance:
    """One counted SKU at one location: what the ledger expected and what was on the shelf."""

    sku: str
    location: str
    expected: int
    counted: int
    unit_cost: Decimal | None

    @property
    def variance(self) -> int:
        return self.counted - self.expected

    @property
    def value(self) -> Decimal | None:
        """The variance at cost (negative: a loss); None when the catalog has no cost."""
        return None if self.unit_cost is None else cents(self.unit_cost * self.variance)

    def as_record(self) -> dict[str, object]:
        return {"sku": self.sku, "location": self.location, "expected": self.expected, "counted": self.counted,
                "variance": self.variance, "value": None if self.value is None else str(self.value)}


def count_variances(
    changes: Iterable[tuple[str, str, int, int]], costs: Mapping[str, Decimal | None]
) -> list[Variance]:
    """The variance report of a cycle count: largest loss at cost first, then by SKU."""
    found = [Variance(sku, location, before, after, costs.get(sku)) for sku, location, before, after in changes]
    return sorted(found, key=lambda v: (v.value if v.value is not None else Decimal(v.variance), v.sku, v.location))



def oversold(available: Mapping[str, int], reserving: Iterable[tuple[str, Mapping[str, int]]]) -> list[str]:
    """Orders to put back on hold, newest first, until no SKU is available below zero.

    A count or a write-off can leave fewer units on hand than accepted orders reserved;
    the newest of those orders give theirs back (and wait, held `insufficient_stock`), so
    the oldest keep their promise.

    Args:
        available: on hand minus reserved, per SKU.
        reserving: (order key, units it reserves per SKU), oldest first.

    Returns:
        The keys to hold, newest first.
    """
    short = {sku: -units for sku, units in available.items() if units < 0}
    held = []
    for key, units in reversed(list(reserving)):
        if not short:
            break
        if any(sku in short for sku in units):
            held.append(key)
            for sku, count in units.items():
                if sku in short:
                    short[sku] -= count
                    if short[sku] <= 0:
                        del short[sku]
    return held
