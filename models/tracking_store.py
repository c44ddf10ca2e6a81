"""What track-shipments reads and writes: parcels on their way, their statuses, their history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from domain.tracking import DONE, Shipped
from models.base import utcnow
from models.orders import Order
from models.shipping import Shipment


@dataclass(frozen=True, slots=True)
class OnItsWay:
    shipment_id: int
    tracking_number: str
    status: str
    carrier: str
    order_number: str
    promised_by: date | None
    delivered_at: datetime | None


def _on_its_way(rows: Sequence[tuple]) -> list[OnItsWay]:  # type: ignore[type-arg]
    return [OnItsWay(*row) for row in rows]


def to_track(session: Session, after_id: int, limit: int) -> list[OnItsWay]:
    """Parcels not yet delivered or returned, by shipment id after `after_id`."""
    return _on_its_way(session.execute(
        select(Shipment.id, Shipment.tracking_number, Shipment.status, Shipment.carrier, Order.number,
               Shipment.promised_by, Shipment.delivered_at)
        .join(Order, Order.id == Shipment.order_id)
        .where(Shipment.id > after_id, Shipment.status.not_in(sorted(DONE)))
        .order_by(Shipment.id).limit(limit)
    ).all())


def by_tracking_number(session: Session, numbers: Sequence[str]) -> dict[str, int]:
    return dict(session.execute(select(Shipment.tracking_number, Shipment.id).where(Shipment.tracking_number.in_(numbers))).all())


def apply_updates(session: Session, updates: Sequence[tuple[int, str, str, datetime | None]]) -> None:
    """(shipment id, status, the carrier's word, delivered at) for each parcel whose news changed."""
    now = utcnow()
    for shipment_id, status, carrier_status, delivered_at in updates:
        session.execute(update(Shipment).where(Shipment.id == shipment_id).values(
            status=status, delivered_at=delivered_at, tracking_state={"carrier_status": carrier_status}, updated_at=now))


def watched(session: Session) -> list[OnItsWay]:
    """Every parcel not yet delivered or returned, and those delivered late, for the alert."""
    return _on_its_way(session.execute(
        select(Shipment.id, Shipment.tracking_number, Shipment.status, Shipment.carrier, Order.number,
               Shipment.promised_by, Shipment.delivered_at)
        .join(Order, Order.id == Shipment.order_id).where(Shipment.status != "returned_to_sender")
        .order_by(Shipment.id)
    ).all())


def history(session: Session) -> list[Shipped]:
    return [Shipped(carrier, service, zone or "unknown", cost, shipped_at, delivered_at, promised_by, status)
            for carrier, service, zone, cost, shipped_at, delivered_at, promised_by, status in session.execute(
                select(Shipment.carrier, Shipment.service, Shipment.zone, Shipment.label_cost, Shipment.shipped_at,
                       Shipment.delivered_at, Shipment.promised_by, Shipment.status))]
