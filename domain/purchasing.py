"""Purchase orders from restock needs, who must approve them, and what a delivery books."""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from domain.money import cents


@dataclass(frozen=True, slots=True)
class Need:
    """Units of one SKU to buy from its supplier, at its catalog cost."""

    sku: str
    supplier: str
    quantity: int
    unit_cost: Decimal


@dataclass(frozen=True, slots=True)
class DraftPurchaseOrder:
    number: str
    supplier: str
    currency: str
    lines: tuple[Need, ...]
    total: Decimal
    needs_approval: bool


def purchase_order_number(supplier: str, review_day: date) -> str:
    """`PO-20261126-ACME`: one number per supplier per review day, so a rerun finds its own."""
    slug = re.sub(r"[^A-Z0-9]+", "-", supplier.upper()).strip("-") or "SUPPLIER"
    return f"PO-{review_day:%Y%m%d}-{slug}"


def draft_purchase_orders(
    needs: Iterable[Need], review_day: date, currencies: Mapping[str, str], approval_above: Decimal
) -> list[DraftPurchaseOrder]:
    """Groups needs by supplier into one draft each, lines by SKU; a total above
    `approval_above` waits for a person.

    Args:
        needs: what to buy; needs of zero units are dropped.
        review_day: the night the needs were found (part of each number).
        currencies: supplier -> the currency it invoices in (default USD).
        approval_above: `approvals.purchase_order_above`.
    """
    by_supplier: dict[str, list[Need]] = defaultdict(list)
    for need in needs:
        if need.quantity > 0:
            by_supplier[need.supplier].append(need)
    drafts = []
    for supplier, lines in sorted(by_supplier.items()):
        lines.sort(key=lambda need: need.sku)
        total = cents(sum((need.unit_cost * need.quantity for need in lines), Decimal(0)))
        drafts.append(DraftPurchaseOrder(
            purchase_order_number(supplier, review_day), supplier, currencies.get(supplier, "USD"),
            tuple(lines), total, total > approval_above,
        ))
    return drafts


def lead_time_spread(observed: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Supplier -> sample standard deviation of its observed lead times, in days; a supplier
    seen fewer than twice has none to speak of (0)."""
    return {supplier: statistics.stdev(days) if len(days) > 1 else 0.0 for supplier, days in observed.items()}


class ReceiptError(ValueError):
    """A delivery that cannot be booked: nothing of it is."""


@dataclass(frozen=True, slots=True)
class ReceiptLine:
    sku: str
    ordered: int
    received_before: int
    received_now: int

    @property
    def outstanding(self) -> int:
        """Units still to come (negative when more came than were ordered)."""
        return self.ordered - self.received_before - self.received_now


@dataclass(frozen=True, slots=True)
class Receipt:
    lines: tuple[ReceiptLine, ...]

    @property
    def over(self) -> dict[str, int]:
        return {line.sku: -line.outstanding for line in self.lines if line.outstanding < 0}

    @property
    def under(self) -> dict[str, int]:
        return {line.sku: line.outstanding for line in self.lines if line.outstanding > 0}

    @property
    def status(self) -> str:
        """`received` once nothing is outstanding, else `partially_received`."""
        return "partially_received" if self.under else "received"


RECEIVABLE = ("sent", "partially_received", "approved")


def book_receipt(
    number: str, status: str, ordered: Mapping[str, tuple[int, int]], delivered: Sequence[tuple[int, str, int]]
) -> Receipt:
    """Checks a supplier delivery against its purchase order.

    Args:
        number: the PO number, for messages.
        status: the PO's status; only an approved, sent or partly received PO takes deliveries.
        ordered: SKU -> (units ordered, units received before).
        delivered: (line number in the file, SKU, units) rows; a SKU may repeat.

    Raises:
        ReceiptError: for a PO that takes no delivery, a SKU not on it, or a count that is
            not a positive whole number. Nothing is booked then.
    """
    if status not in RECEIVABLE:
        raise ReceiptError(f"{number} is {status}: only an approved or sent purchase order takes deliveries")
    now: dict[str, int] = defaultdict(int)
    problems = []
    for line, sku, units in delivered:
        if sku not in ordered:
            problems.append(f"line {line}: {sku!r} is not on {number}")
        elif units <= 0:
            problems.append(f"line {line}: quantity of {sku!r} must be a positive whole number, not {units}")
        else:
            now[sku] += units
    if problems:
        raise ReceiptError("; ".join(problems))
    if not now:
        raise ReceiptError(f"nothing delivered for {number}")
    return Receipt(tuple(
        ReceiptLine(sku, quantity, before, now.get(sku, 0)) for sku, (quantity, before) in sorted(ordered.items())
    ))
