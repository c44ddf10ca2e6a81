"""`clerk pack`: scans checked against the order; a mismatch holds it until a check matches."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from deployments.cli import main
from models import Order, OrderHold, OrderLine, PackCheck
from models.db import unit_of_work


@pytest.fixture
def orders(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    from integrations import wiring

    monkeypatch.setenv("CLERK_DATABASE_URL", database_url)
    wiring.reset()
    now = datetime(2026, 11, 26, 9, tzinfo=UTC)
    with unit_of_work(database_url) as session:
        for channel, number in (("shopify", "#1001"), ("shopify", "#1002"), ("woocommerce", "#1002")):
            order = Order(channel=channel, external_id=f"{channel}-{number}", number=number, status="accepted",
                          lifecycle="open", currency="USD", total=Decimal(0), shipping=Decimal(0), tax=Decimal(0),
                          discounts=Decimal(0), taxes_included=False, requires_shipping=True, risk="low",
                          placed_at=now, upstream_updated_at=now, fingerprint="-")
            session.add(order)
            session.flush()
            session.add_all([
                OrderLine(order_id=order.id, position=0, sku="MUG-1", title="Mug", quantity=2, unit_price=Decimal(9),
                          discount=Decimal(0)),
                OrderLine(order_id=order.id, position=1, sku="EBOOK-1", title="Care guide", quantity=1,
                          unit_price=Decimal(3), discount=Decimal(0), requires_shipping=False),  # nothing to pack
            ])
    yield database_url
    wiring.reset()


def _order(url: str, number: str) -> tuple[str, list[str]]:
    with unit_of_work(url) as session:
        order = session.scalars(select(Order).where(Order.number == number, Order.channel == "shopify")).one()
        return order.status, [h.reason for h in session.scalars(select(OrderHold).where(OrderHold.order_id == order.id))]


def test_a_matching_pack_keeps_the_order_ready_to_ship(orders: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pack", "#1001", "--scan", "MUG-1", "--scan", "MUG-1", "--by", "kim"]) == 0
    assert json.loads(capsys.readouterr().out) == {"order": "#1001", "channel": "shopify", "matches": True,
                                                    "missing": {}, "extra": {}, "status": "accepted"}
    with unit_of_work(orders) as session:
        [check] = session.scalars(select(PackCheck)).all()
        assert (check.scans, check.packed_by, check.matches) == (["MUG-1", "MUG-1"], "kim", True)


def test_a_scan_of_an_unknown_sku_holds_the_order_until_a_check_matches(
    orders: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pack", "#1001", "--scan", "MUG-1", "--scan", "CAP-9"]) == 1
    report = capsys.readouterr()
    assert json.loads(report.out)["missing"] == {"MUG-1": 1} and json.loads(report.out)["extra"] == {"CAP-9": 1}
    assert "held: packing_mismatch" in report.err
    assert _order(orders, "#1001") == ("held", ["packing_mismatch"])
    scans = tmp_path / "scans.csv"
    scans.write_text("sku,quantity\nMUG-1,2\n")
    assert main(["pack", "#1001", "--scans", str(scans)]) == 0
    assert _order(orders, "#1001") == ("accepted", [])


@pytest.mark.parametrize(("argv", "message"), [
    (["pack", "#9999", "--scan", "MUG-1"], "no order #9999"),
    (["pack", "#1002", "--scan", "MUG-1"], "order #1002 is on shopify, woocommerce: name one with --channel"),
    (["pack", "#1001"], "give at least one --scan"),
])
def test_a_pack_that_cannot_be_recorded_says_why(orders: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    with unit_of_work(orders) as session:
        assert session.scalars(select(PackCheck)).all() == []
