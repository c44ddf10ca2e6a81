"""Shipping rules: what a parcel weighs, which rate to buy, what stops a batch, what was packed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum


class ShipHold(StrEnum):
    """Why an order waits instead of getting a label (beside the intake codes, e.g. incomplete_address)."""

    MISSING_WEIGHT = "missing_weight"  # a line's SKU has no weight in the catalog: never guessed
    IMPOSSIBLE_WEIGHT = "impossible_weight"  # a parcel of no weight, or freight: bad catalog data
    DUPLICATE_ORDER = "duplicate_order"  # the same order number twice on a channel: ship neither blind
    PACKING_MISMATCH = "packing_mismatch"  # what was packed is not what was ordered
    NO_RATE = "no_rate"  # the carrier offered no service for the parcel


# A box, tape and fill; added once per parcel.
PACKAGING_GRAMS = 150
# Above this a parcel is freight, not a label: no carrier API sells it as one.
MAX_PARCEL_GRAMS = 68_000


@dataclass(frozen=True, slots=True)
class Weighed:
    """A parcel's weight in grams, or the SKUs whose weight is missing."""

    grams: int | None
    missing: tuple[str, ...] = ()


def parcel_weight(lines: Mapping[str, int], weights: Mapping[str, int | None]) -> Weighed:
    """Sums the lines' catalog weights plus packaging; a SKU without a weight is named, not guessed."""
    missing = tuple(sorted(sku for sku in lines if not weights.get(sku)))
    if missing:
        return Weighed(None, missing)
    return Weighed(PACKAGING_GRAMS + sum(int(weights[sku] or 0) * units for sku, units in lines.items()))


@dataclass(frozen=True, slots=True)
class RateOption:
    """One service a carrier offers for a parcel."""

    id: str
    carrier: str
    service: str
    amount: Decimal
    delivery_days: int | None


def choose_rate(rates: Sequence[RateOption], ship_day: date, promised_by: date | None) -> RateOption | None:
    """The cheapest service that arrives by the promised day; without a promise, the cheapest.

    When no service can keep the promise, the fastest one (cheapest among equals): the order
    is late whatever is bought, and later the more it costs to wait. A rate with no delivery
    estimate never counts as keeping a promise. None when there are no rates.
    """
    if not rates:
        return None
    if promised_by is None:
        return min(rates, key=lambda r: (r.amount, r.delivery_days or 99, r.id))
    on_time = [r for r in rates if r.delivery_days is not None and ship_day + timedelta(days=r.delivery_days) <= promised_by]
    if on_time:
        return min(on_time, key=lambda r: (r.amount, r.delivery_days, r.id))
    return min(rates, key=lambda r: (r.delivery_days if r.delivery_days is not None else 99, r.amount, r.id))


def lane(country: str | None, postal_code: str | None) -> str:
    """The destination zone figures are kept by: a US ZIP's national area (its first digit),
    else the country. Coarse on purpose: it says where, never who."""
    if not country:
        return "unknown"
    if country == "US" and postal_code and postal_code[:1].isdigit():
        return f"US-{postal_code[0]}"
    return country


@dataclass(frozen=True, slots=True)
class BoughtLabel:
    """What Clerk keeps of a label a carrier sold it."""

    shipment_id: str
    tracking_number: str
    carrier: str
    service: str
    cost: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """An order about to get a label: what the batch gate looks at before money is spent."""

    key: int  # the order's row id
    reference: str  # `channel number`, for people
    grams: int | None
    street: str | None
    country: str | None


@dataclass(frozen=True, slots=True)
class Problem:
    key: int
    reason: str  # a ShipHold or intake Hold value
    detail: str


def batch_problems(candidates: Sequence[Candidate]) -> list[Problem]:
    """What stops a whole batch before anything is bought: impossible weights, empty
    addresses, an order number twice. Such data means something is wrong upstream (weights in
    kilograms, a botched import), not one odd order: nothing of the batch is bought, the
    orders named are held, and a person is told."""
    problems = []
    seen = Counter(c.reference for c in candidates)
    for c in candidates:
        if seen[c.reference] > 1:
            problems.append(Problem(c.key, ShipHold.DUPLICATE_ORDER.value, f"{c.reference} appears {seen[c.reference]} times"))
        if c.grams is not None and not 0 < c.grams <= MAX_PARCEL_GRAMS:
            problems.append(Problem(c.key, ShipHold.IMPOSSIBLE_WEIGHT.value, f"{c.reference} weighs {c.grams} g"))
        if not (c.street or "").strip() or not (c.country or "").strip():
            problems.append(Problem(c.key, "incomplete_address", f"{c.reference} has an empty address"))
    return problems


@dataclass(frozen=True, slots=True)
class PackCheck:
    """What was scanned against what was ordered, by SKU."""

    missing: dict[str, int]  # ordered but not packed
    extra: dict[str, int]  # packed but not ordered (or more than ordered)

    @property
    def matches(self) -> bool:
        return not self.missing and not self.extra


def check_packing(ordered: Mapping[str, int], scans: Iterable[str]) -> PackCheck:
    """Compares scanned SKUs (one scan per unit) with the order's lines."""
    packed = Counter(scans)
    missing = {sku: units - packed.get(sku, 0) for sku, units in ordered.items() if units > packed.get(sku, 0)}
    extra = {sku: units - ordered.get(sku, 0) for sku, units in packed.items() if units > ordered.get(sku, 0)}
    return PackCheck(dict(sorted(missing.items())), dict(sorted(extra.items())))
