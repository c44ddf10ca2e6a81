"""Records for `clerk export`, streamed a chunk at a time; personal data only when asked."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.customers import CustomerPII
from models.orders import Order, OrderAddress, OrderHold, OrderLine, QuarantinedPayload

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


EXPORTS = {"orders": orders, "quarantine": quarantine}
