"""What the nightly restock review reads: sales and stock history per day, levels, open orders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

from sqlalchemy import ColumnElement, Date, Integer, cast, func, literal, select
from sqlalchemy.orm import Session

from models.catalog import Variant
from models.orders import Order, OrderLine
from models.purchasing import PurchaseOrder, PurchaseOrderLine
from models.stock import StockMovement

# A purchase order in one of these states still brings stock: it counts as incoming.
OPEN_PURCHASE_ORDER = ("draft", "awaiting_approval", "approved", "sent", "partially_received")


@dataclass(frozen=True, slots=True)
class CatalogTerms:
    """How one SKU is bought: who sells it, at what cost, in what quantities, how fast."""

    sku: str
    supplier: str | None
    cost: Decimal | None
    lead_time_days: int | None
    moq: int | None
    pack_size: int | None


def _day_index(session: Session, moment: ColumnElement, start: date) -> ColumnElement[int]:
    """Whole days from `start` to the UTC day of `moment`, computed by the database."""
    if session.get_bind().dialect.name == "sqlite":
        return cast(func.julianday(func.date(moment)) - func.julianday(literal(start.isoformat())), Integer)
    return cast(moment, Date) - literal(start, Date)


def daily_sales(session: Session, start: date, end: date) -> list[tuple[str, int, int]]:
    """(sku, day index from `start`, units) of every order not cancelled, placed in [start, end),
    counting only lines shipped from our shelves (a marketplace's own fulfilment is not our demand)."""
    day = _day_index(session, Order.placed_at, start)
    return [tuple(row) for row in session.execute(  # type: ignore[misc]
        select(OrderLine.sku, day, func.sum(OrderLine.quantity))
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.status != "cancelled", OrderLine.sku.is_not(None), OrderLine.requires_shipping.is_(True),
               Order.placed_at >= _midnight(start), Order.placed_at < _midnight(end))
        .group_by(OrderLine.sku, day)
    )]


def daily_on_hand_changes(session: Session, start: date, end: date) -> list[tuple[str, int, int]]:
    """(sku, day index from `start`, net on-hand change) from the ledger in [start, end);
    days before `start` fold into index -1, so their sum is the opening balance."""
    day = func.max(-1, _day_index(session, StockMovement.created_at, start)) if session.get_bind().dialect.name == "sqlite" \
        else func.greatest(-1, _day_index(session, StockMovement.created_at, start))
    return [tuple(row) for row in session.execute(  # type: ignore[misc]
        select(StockMovement.sku, day, func.sum(StockMovement.on_hand_delta))
        .where(StockMovement.on_hand_delta != 0, StockMovement.created_at < _midnight(end))
        .group_by(StockMovement.sku, day)
    )]


def stock_levels(session: Session) -> dict[str, tuple[int, int]]:
    """SKU -> (on hand, reserved) over every location."""
    return {
        sku: (int(on_hand or 0), int(reserved or 0))
        for sku, on_hand, reserved in session.execute(
            select(StockMovement.sku, func.sum(StockMovement.on_hand_delta), func.sum(StockMovement.reserved_delta))
            .group_by(StockMovement.sku)
        )
    }


def incoming(session: Session) -> dict[str, int]:
    """SKU -> units on open purchase orders not yet received."""
    return {
        sku: int(units)
        for sku, units in session.execute(
            select(PurchaseOrderLine.sku, func.sum(PurchaseOrderLine.quantity - PurchaseOrderLine.received))
            .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
            .where(PurchaseOrder.status.in_(OPEN_PURCHASE_ORDER))
            .group_by(PurchaseOrderLine.sku)
        )
        if units and units > 0
    }


def catalog_terms(session: Session) -> list[CatalogTerms]:
    return [
        CatalogTerms(*row)
        for row in session.execute(
            select(Variant.sku, Variant.supplier, Variant.cost, Variant.lead_time_days, Variant.moq, Variant.pack_size)
            .order_by(Variant.sku)
        )
    ]


def lead_times(session: Session) -> dict[str, list[float]]:
    """Supplier -> days from sending each received purchase order to its first delivery."""
    first = (
        select(StockMovement.purchase_order_id, func.min(StockMovement.created_at).label("arrived"))
        .where(StockMovement.purchase_order_id.is_not(None), StockMovement.kind == "receipt")
        .group_by(StockMovement.purchase_order_id).subquery()
    )
    found: dict[str, list[float]] = {}
    for supplier, sent, arrived in session.execute(
        select(PurchaseOrder.supplier, PurchaseOrder.sent_at, first.c.arrived)
        .join(first, first.c.purchase_order_id == PurchaseOrder.id).where(PurchaseOrder.sent_at.is_not(None))
    ):
        # SQLite hands the subquery's MIN back as text: read it as the column type would.
        arrived_at = arrived if isinstance(arrived, datetime) else datetime.fromisoformat(str(arrived)).replace(tzinfo=UTC)
        if arrived_at.tzinfo is None:
            arrived_at = arrived_at.replace(tzinfo=UTC)
        found.setdefault(supplier, []).append((arrived_at - sent).total_seconds() / 86400)
    return found


def titles(session: Session, skus: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(skus), 5000):
        found.update((sku, title) for sku, title in session.execute(
            select(Variant.sku, Variant.title).where(Variant.sku.in_(skus[start:start + 5000]))))
    return found


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)
