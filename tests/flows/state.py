"""Reading Clerk's database back as plain, comparable state."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from models import Order, OrderHold, OrderLine, QuarantinedPayload, StockMovement
from models.catalog_store import MASTER, upsert_variants
from models.db import unit_of_work
from models.stock_store import set_on_hand


def seed_catalog_and_stock(database_url: str, store: Any) -> None:
    """What a clerk does first: import the master catalog and the stock counts."""
    from domain.catalog import parse_catalog_row, parse_stock_row

    rows = [parse_catalog_row({k: str(v) for k, v in row.items()}) for row in store.catalog_rows()]
    counts = [parse_stock_row({k: str(v) for k, v in row.items()}) for row in store.stock_rows()]
    with unit_of_work(database_url) as session:
        upsert_variants(session, rows, MASTER)
        set_on_hand(session, counts, "adjustment", "test seed")


def snapshot(database_url: str) -> dict[str, Any]:
    """Everything intake decides, without row ids or timestamps of our own."""
    with unit_of_work(database_url) as session:
        orders = {
            (o.channel, o.external_id): (o.status, o.fingerprint)
            for o in session.scalars(select(Order))
        }
        ext = dict(session.execute(select(Order.id, Order.external_id)).all())
        lines = sorted(
            (ext[l.order_id], l.position, l.sku, l.quantity, str(l.unit_price))
            for l in session.scalars(select(OrderLine))
        )
        holds = sorted((ext[h.order_id], h.reason) for h in session.scalars(select(OrderHold)))
        reservations = sorted(
            (ext.get(m.order_id), m.sku, m.kind, m.reserved_delta)
            for m in session.scalars(select(StockMovement).where(StockMovement.order_id.is_not(None)))
        )
        quarantine = sorted(
            (q.channel, q.external_id or "", q.reason, q.payload_hash) for q in session.scalars(select(QuarantinedPayload))
        )
        on_hand = dict(
            session.execute(
                select(StockMovement.sku, func.sum(StockMovement.on_hand_delta) - func.sum(StockMovement.reserved_delta))
                .group_by(StockMovement.sku)
            ).all()
        )
    return {"orders": orders, "lines": lines, "holds": holds, "reservations": reservations,
            "quarantine": quarantine, "available": on_hand}


def rows_in(database_url: str, model: Any) -> int:
    """How many rows `model`'s table has now; 0 while a child process is still migrating it."""
    try:
        with unit_of_work(database_url) as session:
            return session.scalar(select(func.count()).select_from(model)) or 0
    except Exception:  # the table may be mid-migration in the child
        return 0
