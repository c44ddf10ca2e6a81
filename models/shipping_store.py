"""Shipping's reads and writes: orders by number, their lines, packing checks and holds."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from domain.shipping import PackCheck as Packed
from domain.shipping import ShipHold
from models.base import utcnow
from models.orders import Order, OrderHold, OrderLine
from models.shipping import PackCheck


@dataclass(frozen=True, slots=True)
class OrderRef:
    id: int
    channel: str
    number: str
    status: str
    lines: dict[str, int]  # SKU -> units shipped from our shelves


class OrderLookupError(ValueError):
    """No order, or more than one, answers to a number."""


def order_by_number(session: Session, number: str, channel: str | None) -> OrderRef:
    query = select(Order.id, Order.channel, Order.number, Order.status).where(Order.number == number)
    if channel:
        query = query.where(Order.channel == channel)
    found = session.execute(query).all()
    if not found:
        raise OrderLookupError(f"no order {number}" + (f" on {channel}" if channel else ""))
    if len(found) > 1:
        raise OrderLookupError(f"order {number} is on {', '.join(sorted(r.channel for r in found))}: name one with --channel")
    order_id, order_channel, order_number, status = found[0]
    lines: dict[str, int] = defaultdict(int)
    for sku, units in session.execute(
        select(OrderLine.sku, func.sum(OrderLine.quantity))
        .where(OrderLine.order_id == order_id, OrderLine.sku.is_not(None), OrderLine.requires_shipping.is_(True))
        .group_by(OrderLine.sku)
    ):
        lines[sku] = int(units)
    return OrderRef(order_id, order_channel, order_number, status, dict(lines))


def record_pack(session: Session, order: OrderRef, scans: list[str], check: Packed, by: str) -> str:
    """Stores the packing check; a mismatch holds the order `packing_mismatch`, a match lifts
    that hold (and accepts the order when it was its only one). Returns the order's status."""
    now = utcnow()
    session.add(PackCheck(order_id=order.id, scans=scans, matches=check.matches, missing=check.missing,
                          extra=check.extra, packed_by=by, packed_at=now))
    if order.status not in ("accepted", "held"):
        return order.status
    if not check.matches:
        if not session.scalar(select(OrderHold.id).where(OrderHold.order_id == order.id,
                                                         OrderHold.reason == ShipHold.PACKING_MISMATCH.value)):
            session.add(OrderHold(order_id=order.id, reason=ShipHold.PACKING_MISMATCH.value, created_at=now))
        session.execute(update(Order).where(Order.id == order.id).values(status="held", updated_at=now))
        return "held"
    session.execute(delete(OrderHold).where(OrderHold.order_id == order.id, OrderHold.reason == ShipHold.PACKING_MISMATCH.value))
    others = session.scalar(select(func.count()).select_from(OrderHold).where(OrderHold.order_id == order.id))
    if order.status == "held" and not others:
        session.execute(update(Order).where(Order.id == order.id).values(status="accepted", updated_at=now))
        return "accepted"
    return order.status
