"""Records for `clerk export`, streamed a chunk at a time; personal data only when asked."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain.tracking import performance
from models.catalog import Variant
from models.customers import CustomerPII
from models.orders import Order, OrderAddress, OrderHold, OrderLine, QuarantinedPayload
from models.purchasing import PurchaseOrder, PurchaseOrderLine
from models.restock import incoming as incoming_units
from models.returns import Refund, Return, ReturnLine
from models.shipping import Shipment
from models.stock import RestockFigure, StockMovement
from models.tracking_store import history

CHUNK = 2000


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.quantize(Decimal('0.01'))}"


def orders(session: Session, include_pii: bool = False) -> Iterator[dict[str, Any]]:
    """Every order with its lines and hold reasons, oldest row first."""
    last = 0
    while True:
        chunk = session.scalars(select(Order).where(Order.id > last).order_by(Order.id).limit(CHUNK)).all()
        if not chunk:
            return
        ids = [o.id for o in chunk]
        last = ids[-1]
        lines: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for line in session.scalars(select(OrderLine).where(OrderLine.order_id.in_(ids)).order_by(OrderLine.order_id, OrderLine.position)):
            lines[line.order_id].append({"sku": line.sku, "quantity": line.quantity, "unit_price": _money(line.unit_price)})
        reasons: dict[int, list[str]] = defaultdict(list)
        for order_id, reason in session.execute(select(OrderHold.order_id, OrderHold.reason).where(OrderHold.order_id.in_(ids))):
            reasons[order_id].append(reason)
        addresses = pii = {}
        if include_pii:
            addresses = {a.order_id: a for a in session.scalars(select(OrderAddress).where(OrderAddress.order_id.in_(ids)))}
            customer_ids = [o.customer_id for o in chunk if o.customer_id]
            pii = {p.customer_id: p for p in session.scalars(select(CustomerPII).where(CustomerPII.customer_id.in_(customer_ids)))}
        for order in chunk:
            record = {
                "channel": order.channel, "external_id": order.external_id, "number": order.number,
                "status": order.status, "reasons": sorted(reasons.get(order.id, [])) if order.status == "held" else [],
                "currency": order.currency, "total": _money(order.total), "shipping": _money(order.shipping),
                "tax": _money(order.tax), "discounts": _money(order.discounts), "placed_at": _iso(order.placed_at),
                "updated_at": _iso(order.upstream_updated_at), "lines": lines.get(order.id, []),
                "ship_to_country": order.ship_to_country, "risk": order.risk,
            }
            if include_pii:
                address = addresses.get(order.id)
                person = pii.get(order.customer_id) if order.customer_id else None
                record["email"] = person.email if person else None
                record["phone"] = person.phone if person else None
                record["ship_to"] = {
                    k: getattr(address, k) for k in ("name", "company", "street1", "street2", "city", "province", "postal_code", "country", "phone")
                } if address else None
            yield record


def quarantine(session: Session, include_pii: bool = False) -> Iterator[dict[str, Any]]:
    """Every quarantined payload; the raw payload (personal data) only when asked."""
    last = 0
    while True:
        chunk = session.scalars(
            select(QuarantinedPayload).where(QuarantinedPayload.id > last).order_by(QuarantinedPayload.id).limit(CHUNK)
        ).all()
        if not chunk:
            return
        last = chunk[-1].id
        for row in chunk:
            record = {"channel": row.channel, "external_id": row.external_id, "reason": row.reason,
                      "detail": row.detail, "received_at": _iso(row.received_at)}
            if include_pii:
                record["payload"] = row.payload
            yield record


def inventory(session: Session, include_pii: bool = False) -> Iterator[dict[str, Any]]:
    """Stock per SKU and location from the ledger, with the last restock check's figures;
    a catalog SKU the ledger never saw shows at `main` with nothing on hand."""
    levels = {
        (sku, location): (int(on_hand or 0), int(reserved or 0))
        for sku, location, on_hand, reserved in session.execute(
            select(StockMovement.sku, StockMovement.location, func.sum(StockMovement.on_hand_delta),
                   func.sum(StockMovement.reserved_delta))
            .group_by(StockMovement.sku, StockMovement.location)
        )
    }
    seen = {sku for sku, _ in levels}
    for sku in session.scalars(select(Variant.sku)):
        if sku not in seen:
            levels[(sku, "main")] = (0, 0)
    figures = {f.sku: f for f in session.scalars(select(RestockFigure))}
    coming = incoming_units(session)
    for (sku, location), (on_hand, reserved) in sorted(levels.items()):
        figure = figures.get(sku)
        yield {
            "sku": sku, "location": location, "on_hand": on_hand, "reserved": reserved,
            "available": on_hand - reserved, "incoming": coming.get(sku, 0),
            "reorder_point": figure.reorder_point if figure else None,
            "days_of_cover": figure.days_of_cover if figure else None,
        }


def stock_valuation(session: Session, include_pii: bool = False) -> Iterator[dict[str, Any]]:
    """On hand at cost per SKU and location (`value` null when the catalog has no cost)."""
    costs = {sku: (cost, currency) for sku, cost, currency in session.execute(select(Variant.sku, Variant.cost, Variant.currency))}
    for row in inventory(session):
        cost, currency = costs.get(row["sku"], (None, None))
        yield {"sku": row["sku"], "location": row["location"], "on_hand": row["on_hand"], "unit_cost": _money(cost),
               "value": _money(cost * row["on_hand"]) if cost is not None else None, "currency": currency}


def purchase_orders(session: Session, include_pii: bool = False) -> Iterator[dict[str, Any]]:
    """Every purchase order with its lines, oldest first."""
    last = 0
    while True:
        chunk = session.scalars(select(PurchaseOrder).where(PurchaseOrder.id > last).order_by(PurchaseOrder.id).limit(CHUNK)).all()
        if not chunk:
            return
        last = chunk[-1].id
        lines: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for line in session.scalars(select(PurchaseOrderLine).where(PurchaseOrderLine.purchase_order_id.in_([p.id for p in chunk]))
                                    .order_by(PurchaseOrderLine.sku)):
            lines[line.purchase_order_id].append({"sku": line.sku, "quantity": line.quantity,
                                                  "unit_cost": _money(line.unit_cost), "received": line.received})
        for po in chunk:
            yield {"number": po.number, "supplier": po.supplier, "status": po.status, "created_at": _iso(po.created_at),
                   "sent_at": _iso(po.sent_at), "lines": lines.get(po.id, []), "total": _money(po.total), "currency": po.currency}


def shipments(session: Session, include_pii: bool = False) -> Iterator[dict[str, Any]]:
    """Every shipment (one bought label each), oldest first; `late` against the promised day."""
    today = datetime.now(UTC).date()
    last = 0
    while True:
        chunk = session.execute(
            select(Shipment, Order.channel, Order.number).join(Order, Order.id == Shipment.order_id)
            .where(Shipment.id > last).order_by(Shipment.id).limit(CHUNK)
        ).all()
        if not chunk:
            return
        last = chunk[-1][0].id
        for shipment, channel, number in chunk:
            arrived = shipment.delivered_at.date() if shipment.delivered_at else None
            late = shipment.promised_by is not None and (arrived or today) > shipment.promised_by \
                and shipment.status != "returned_to_sender"
            yield {"channel": channel, "order_number": number, "carrier": shipment.carrier, "service": shipment.service,
                   "tracking_number": shipment.tracking_number, "label_cost": _money(shipment.label_cost),
                   "currency": shipment.currency, "status": shipment.status, "shipped_at": _iso(shipment.shipped_at),
                   "promised_by": shipment.promised_by.isoformat() if shipment.promised_by else None,
                   "delivered_at": _iso(shipment.delivered_at), "late": late}


def returns(session: Session, include_pii: bool = False) -> Iterator[dict[str, Any]]:
    """Every return with its lines and the policy rule behind its latest decision, oldest first."""
    last = 0
    while True:
        chunk = session.execute(select(Return, Order.number).join(Order, Order.id == Return.order_id)
                                .where(Return.id > last).order_by(Return.id).limit(CHUNK)).all()
        if not chunk:
            return
        last = chunk[-1][0].id
        lines: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for line in session.scalars(select(ReturnLine).where(ReturnLine.return_id.in_([r.id for r, _ in chunk]))
                                    .order_by(ReturnLine.id)):
            lines[line.return_id].append({"sku": line.sku, "quantity": line.quantity})
        for row, number in chunk:
            yield {"rma": row.rma, "channel": row.channel, "order_number": number, "status": row.status,
                   "reason": row.reason, "resolution": row.resolution, "lines": lines.get(row.id, []), "rule": row.rule,
                   "detail": row.detail, "label_paid_by": row.label_paid_by, "refund_quote": _money(row.refund_quote),
                   "currency": row.currency, "carrier": row.carrier, "tracking_number": row.tracking_number,
                   "condition": row.condition, "requested_at": _iso(row.requested_at), "received_at": _iso(row.received_at)}


def refunds(session: Session, include_pii: bool = False) -> Iterator[dict[str, Any]]:
    """Every refund, oldest first: through a gateway, by the channel itself, or as store credit."""
    last = 0
    while True:
        chunk = session.execute(select(Refund, Return.rma, Order.channel, Order.number)
                                .join(Order, Order.id == Refund.order_id).outerjoin(Return, Return.id == Refund.return_id)
                                .where(Refund.id > last).order_by(Refund.id).limit(CHUNK)).all()
        if not chunk:
            return
        last = chunk[-1][0].id
        for refund, rma, channel, number in chunk:
            yield {"rma": rma, "channel": channel, "order_number": number, "gateway": refund.gateway,
                   "amount": _money(refund.amount), "currency": refund.currency, "status": refund.status,
                   "gateway_reference": refund.gateway_reference, "failure_reason": refund.failure_reason,
                   "created_at": _iso(refund.created_at)}


def carrier_performance(session: Session, include_pii: bool = False) -> Iterator[dict[str, Any]]:
    """On-time rate, transit days, exception rate and cost per parcel by carrier, service and lane."""
    for figure in performance(history(session)):
        yield figure.as_record()


EXPORTS = {"orders": orders, "quarantine": quarantine, "inventory": inventory, "purchase-orders": purchase_orders,
           "stock-valuation": stock_valuation, "shipments": shipments,
           "carrier-performance": carrier_performance, "returns": returns, "refunds": refunds}
