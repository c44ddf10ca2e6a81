"""Shipping's reads and writes: orders by number, their lines, packing checks and holds."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from domain.orders import Address
from domain.shipping import BoughtLabel
from domain.shipping import PackCheck as Packed
from domain.shipping import ShipHold
from domain.stock import Movement
from models.base import utcnow
from models.catalog import Variant
from models.orders import Order, OrderAddress, OrderHold, OrderLine
from models.shipping import PackCheck, Shipment
from models.stock import StockMovement


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


@dataclass(frozen=True, slots=True)
class ToShip:
    """An accepted order waiting for its label, with what buying one needs."""

    id: int
    channel: str
    external_id: str
    number: str
    placed_at: datetime
    lines: dict[str, int]  # SKU -> units from our shelves
    titles: dict[str, str]
    weights: dict[str, int | None]
    ship_to: Address | None  # personal data: held in memory for the carrier, never logged


def orders_to_ship(session: Session, after_id: int, limit: int) -> list[ToShip]:
    """Accepted orders with something to ship and no label yet, by id after `after_id`."""
    rows = session.execute(
        select(Order.id, Order.channel, Order.external_id, Order.number, Order.placed_at)
        .where(Order.id > after_id, Order.status == "accepted", Order.requires_shipping.is_(True),
               Order.lifecycle == "open", ~Order.id.in_(select(Shipment.order_id)),
               # in SQL, not after: a batch of orders with nothing of ours to ship would read as the end
               Order.id.in_(select(OrderLine.order_id).where(OrderLine.sku.is_not(None),
                                                            OrderLine.requires_shipping.is_(True))))
        .order_by(Order.id).limit(limit)
    ).all()
    ids = [row[0] for row in rows]
    lines: dict[int, dict[str, int]] = defaultdict(dict)
    titles: dict[int, dict[str, str]] = defaultdict(dict)
    for order_id, sku, title, units in session.execute(
        select(OrderLine.order_id, OrderLine.sku, OrderLine.title, OrderLine.quantity)
        .where(OrderLine.order_id.in_(ids), OrderLine.sku.is_not(None), OrderLine.requires_shipping.is_(True))
    ):
        lines[order_id][sku] = lines[order_id].get(sku, 0) + int(units)
        titles[order_id][sku] = title
    skus = sorted({sku for wanted in lines.values() for sku in wanted})
    weights = dict(session.execute(select(Variant.sku, Variant.weight_grams).where(Variant.sku.in_(skus))).all()) if skus else {}
    addresses = {a.order_id: a for a in session.scalars(select(OrderAddress).where(OrderAddress.order_id.in_(ids)))}
    return [
        ToShip(order_id, channel, external_id, number, placed_at, lines[order_id], titles[order_id],
               {sku: weights.get(sku) for sku in lines[order_id]}, _address(addresses.get(order_id)))
        for order_id, channel, external_id, number, placed_at in rows
    ]


def _address(row: OrderAddress | None) -> Address | None:
    if row is None:
        return None
    return Address(row.name, row.company, row.street1, row.street2, row.city, row.province, row.postal_code,
                   row.country, row.phone)


def hold_for_shipping(session: Session, holds: Sequence[tuple[int, str, str | None]]) -> None:
    """Puts orders on hold with a reason and its detail (e.g. the carrier's words on an address)."""
    if not holds:
        return
    now = utcnow()
    for order_id, reason, detail in holds:
        session.add(OrderHold(order_id=order_id, reason=reason, detail=detail, created_at=now))
    ids = sorted({order_id for order_id, _, _ in holds})
    session.execute(update(Order).where(Order.id.in_(ids)).values(status="held", updated_at=now))


def record_label(
    session: Session, order: ToShip, key: str, label: BoughtLabel, promised_by: date | None, zone: str
) -> int:
    """Stores a bought label, marks the order fulfilled, and ships its units out of the ledger
    (on hand and reserved down by what it reserved); returns the shipment's id."""
    existing = session.scalar(select(Shipment.id).where(Shipment.label_key == key))
    if existing is not None:
        return existing
    now = utcnow()
    shipment = Shipment(order_id=order.id, label_key=key, carrier=label.carrier, service=label.service,
                        carrier_shipment_id=label.shipment_id, tracking_number=label.tracking_number,
                        label_cost=label.cost, currency=label.currency, status="pre_transit", shipped_at=now,
                        promised_by=promised_by, zone=zone, tracking_state={}, updated_at=now)
    session.add(shipment)
    reserved = dict(session.execute(
        select(StockMovement.sku, func.sum(StockMovement.reserved_delta))
        .where(StockMovement.order_id == order.id).group_by(StockMovement.sku)).all())
    session.add_all([
        StockMovement(sku=sku, location="main", kind=Movement.SHIPMENT.value, on_hand_delta=-units,
                      reserved_delta=-int(reserved.get(sku) or 0), order_id=order.id, actor="flow:ship-orders",
                      note=f"label {label.tracking_number}", created_at=now)
        for sku, units in sorted(order.lines.items())
    ])
    session.execute(update(Order).where(Order.id == order.id).values(status="fulfilled", updated_at=now))
    session.flush()
    return shipment.id


@dataclass(frozen=True, slots=True)
class LabelRecord:
    """A bought label to store with its order (see `record_labels`)."""

    order: ToShip
    key: str
    label: BoughtLabel
    promised_by: date | None
    zone: str
    path: str | None  # the stored label file, None when it could not be fetched


def record_labels(session: Session, records: Sequence[LabelRecord]) -> list[str]:
    """`record_label` for a batch in a handful of statements, whatever its size: shipments
    (with their label files), the orders `fulfilled`, and their `shipment` movements (on hand
    and reserved down by what each order reserved). A label already stored under its key is
    left as it is. Returns the keys stored now."""
    keys = [record.key for record in records]
    if not keys:
        return []
    stored = set(session.scalars(select(Shipment.label_key).where(Shipment.label_key.in_(keys))))
    fresh = [record for record in records if record.key not in stored]
    if not fresh:
        return []
    now = utcnow()
    ids = [record.order.id for record in fresh]
    session.execute(insert(Shipment), [
        {"order_id": r.order.id, "label_key": r.key, "carrier": r.label.carrier, "service": r.label.service,
         "carrier_shipment_id": r.label.shipment_id, "tracking_number": r.label.tracking_number,
         "label_cost": r.label.cost, "currency": r.label.currency, "label_path": r.path, "status": "pre_transit",
         "shipped_at": now, "promised_by": r.promised_by, "zone": r.zone, "tracking_state": {}, "updated_at": now}
        for r in fresh])
    reserved: dict[tuple[int, str], int] = {
        (order_id, sku): int(units or 0) for order_id, sku, units in session.execute(
            select(StockMovement.order_id, StockMovement.sku, func.sum(StockMovement.reserved_delta))
            .where(StockMovement.order_id.in_(ids)).group_by(StockMovement.order_id, StockMovement.sku))}
    session.execute(insert(StockMovement), [
        {"sku": sku, "location": "main", "kind": Movement.SHIPMENT.value, "on_hand_delta": -units,
         "reserved_delta": -reserved.get((r.order.id, sku), 0), "order_id": r.order.id,
         "actor": "flow:ship-orders", "note": f"label {r.label.tracking_number}", "created_at": now}
        for r in fresh for sku, units in sorted(r.order.lines.items())])
    session.execute(update(Order).where(Order.id.in_(ids)).values(status="fulfilled", updated_at=now))
    return [record.key for record in fresh]


def set_label_path(session: Session, shipment_id: int, path: str) -> None:
    session.execute(update(Shipment).where(Shipment.id == shipment_id).values(label_path=path))


@dataclass(frozen=True, slots=True)
class Unwritten:
    """A shipment its channel has not been told about yet."""

    shipment_id: int
    order_id: int
    channel: str
    external_id: str
    lines: dict[str, int]
    tracking_number: str
    carrier: str


def unwritten_fulfillments(session: Session) -> list[Unwritten]:
    rows = session.execute(
        select(Shipment.id, Order.id, Order.channel, Order.external_id, Shipment.tracking_number, Shipment.carrier)
        .join(Order, Order.id == Shipment.order_id).where(Shipment.fulfillment_ref.is_(None)).order_by(Shipment.id)
    ).all()
    lines: dict[int, dict[str, int]] = defaultdict(dict)
    for order_id, sku, units in session.execute(
        select(OrderLine.order_id, OrderLine.sku, func.sum(OrderLine.quantity))
        .where(OrderLine.order_id.in_([row[1] for row in rows]), OrderLine.sku.is_not(None),
               OrderLine.requires_shipping.is_(True))
        .group_by(OrderLine.order_id, OrderLine.sku)
    ):
        lines[order_id][sku] = int(units)
    return [Unwritten(sid, oid, channel, external_id, lines[oid], number, carrier)
            for sid, oid, channel, external_id, number, carrier in rows]


def record_fulfillment(session: Session, shipment_id: int, reference: str) -> None:
    session.execute(update(Shipment).where(Shipment.id == shipment_id).values(fulfillment_ref=reference, updated_at=utcnow()))


def held_for_weight(session: Session) -> list[tuple[int, dict[str, int], dict[str, int | None]]]:
    """Orders held for `missing_weight` alone: (id, lines, the catalog's weights now)."""
    only_weight = (
        select(OrderHold.order_id).group_by(OrderHold.order_id)
        .having(func.count() == 1, func.max(OrderHold.reason) == ShipHold.MISSING_WEIGHT.value)
    )
    ids = list(session.scalars(select(Order.id).where(Order.status == "held", Order.id.in_(only_weight))))
    lines: dict[int, dict[str, int]] = defaultdict(dict)
    for order_id, sku, units in session.execute(
        select(OrderLine.order_id, OrderLine.sku, func.sum(OrderLine.quantity))
        .where(OrderLine.order_id.in_(ids), OrderLine.sku.is_not(None), OrderLine.requires_shipping.is_(True))
        .group_by(OrderLine.order_id, OrderLine.sku)
    ):
        lines[order_id][sku] = int(units)
    skus = sorted({sku for wanted in lines.values() for sku in wanted})
    weights = dict(session.execute(select(Variant.sku, Variant.weight_grams).where(Variant.sku.in_(skus))).all()) if skus else {}
    return [(order_id, lines[order_id], {sku: weights.get(sku) for sku in lines[order_id]}) for order_id in ids]


def release_holds(session: Session, order_ids: Sequence[int], reason: str) -> None:
    """Lifts one hold reason from orders held for it alone: they are accepted again."""
    if not order_ids:
        return
    session.execute(delete(OrderHold).where(OrderHold.order_id.in_(order_ids), OrderHold.reason == reason))
    session.execute(update(Order).where(Order.id.in_(order_ids)).values(status="accepted", updated_at=utcnow()))
