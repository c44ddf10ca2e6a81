"""What the restock review reads from the database, on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from models import Order, OrderLine, PurchaseOrder, PurchaseOrderLine, StockMovement
from models.db import unit_of_work
from models.restock import daily_on_hand_changes, daily_sales, incoming, lead_times

START = date(2026, 11, 1)


def _at(day: int, hour: int = 12) -> datetime:
    return datetime.combine(START, datetime.min.time(), UTC) + timedelta(days=day, hours=hour)


def test_sales_and_on_hand_changes_are_summed_by_utc_day_index(database_url: str) -> None:
    with unit_of_work(database_url) as session:
        for number, (day, hour, status, units, ships) in enumerate([
            (0, 23, "accepted", 2, True), (1, 0, "fulfilled", 3, True), (1, 9, "cancelled", 50, True),
            (-1, 12, "accepted", 7, True), (2, 9, "fulfilled", 40, False),  # the last: the marketplace shipped it
        ]):
            order = Order(channel="shopify", external_id=str(number), number=str(number), status=status, lifecycle="open",
                          currency="USD", total=Decimal(0), shipping=Decimal(0), tax=Decimal(0), discounts=Decimal(0),
                          taxes_included=False, requires_shipping=True, risk="low", placed_at=_at(day, hour),
                          upstream_updated_at=_at(day), fingerprint="-")
            session.add(order)
            session.flush()
            session.add(OrderLine(order_id=order.id, position=0, sku="MUG-1", title="Mug", quantity=units,
                                  unit_price=Decimal(1), discount=Decimal(0), requires_shipping=ships))
        session.add_all([StockMovement(sku="MUG-1", kind="adjustment", on_hand_delta=10, created_at=_at(-20)),
                         StockMovement(sku="MUG-1", kind="receipt", on_hand_delta=5, created_at=_at(-2)),
                         StockMovement(sku="MUG-1", kind="receipt", on_hand_delta=4, created_at=_at(3, 1)),
                         StockMovement(sku="MUG-1", kind="reservation", reserved_delta=4, created_at=_at(3))])
    with unit_of_work(database_url) as session:
        assert sorted(daily_sales(session, START, START + timedelta(days=7))) == [("MUG-1", 0, 2), ("MUG-1", 1, 3)]
        assert sorted(daily_on_hand_changes(session, START, START + timedelta(days=7))) == [("MUG-1", -1, 15), ("MUG-1", 3, 4)]


def test_open_purchase_orders_are_incoming_and_received_ones_give_lead_times(database_url: str) -> None:
    with unit_of_work(database_url) as session:
        for number, (status, sent, quantity, received) in enumerate([
            ("received", _at(0), 10, 10), ("received", _at(2), 10, 10), ("sent", _at(4), 8, 3), ("cancelled", None, 5, 0),
        ]):
            po = PurchaseOrder(number=f"PO-{number}", supplier="ACME", status=status, review_day=START, currency="USD",
                               total=Decimal(1), sent_at=sent)
            session.add(po)
            session.flush()
            session.add(PurchaseOrderLine(purchase_order_id=po.id, sku="MUG-1", quantity=quantity, unit_cost=Decimal(1),
                                          received=received))
            if received:
                arrived = sent + timedelta(days=5 + 2 * number)
                session.add(StockMovement(sku="MUG-1", kind="receipt", on_hand_delta=received, purchase_order_id=po.id,
                                          created_at=arrived))
                session.add(StockMovement(sku="MUG-1", kind="receipt", on_hand_delta=0, purchase_order_id=po.id,
                                          created_at=arrived + timedelta(days=3)))
    with unit_of_work(database_url) as session:
        assert incoming(session) == {"MUG-1": 5}
        assert {supplier: [round(days, 6) for days in sorted(found)] for supplier, found in lead_times(session).items()} == {
            "ACME": [5.0, 7.0, 9.0]}
