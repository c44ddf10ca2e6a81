"""`clerk import count`: a cycle count books count corrections and prints the variance report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from deployments.cli import main
from models import StockMovement
from models.db import unit_of_work


@pytest.fixture
def shop(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    from integrations import wiring

    monkeypatch.setenv("CLERK_DATABASE_URL", database_url)
    wiring.reset()
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("sku,title,price,currency,cost\nMUG-1,Mug,9.99,USD,2.50\nTEE-1,Tee,19.00,USD,4.00\nCAP-1,Cap,12.00,USD,\n")
    stock = tmp_path / "stock.csv"
    stock.write_text("sku,on_hand\nMUG-1,10\nTEE-1,4\nCAP-1,5\n")
    assert main(["import", "catalog", str(catalog)]) == 0 and main(["import", "stock", str(stock)]) == 0
    capsys.readouterr()
    yield database_url
    wiring.reset()


def _ledger(url: str) -> list[tuple[str, str, int, str | None]]:
    with unit_of_work(url) as session:
        return [(m.sku, m.kind, m.on_hand_delta, m.actor) for m in session.scalars(select(StockMovement).order_by(StockMovement.id))]


def test_a_count_books_corrections_and_reports_variances_at_cost(
    shop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    count = tmp_path / "count.csv"
    count.write_text("sku,counted\nMUG-1,7\nTEE-1,6\nCAP-1,5\n")
    assert main(["import", "count", str(count), "--by", "ana"]) == 0
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert (report["counted"], report["changed"], report["units_variance"], report["value_variance"]) == (3, 2, -1, "0.50")
    assert [(v["sku"], v["variance"], v["value"]) for v in report["variances"]] == [
        ("MUG-1", -3, "-7.50"), ("CAP-1", 0, None), ("TEE-1", 2, "8.00")]
    assert "MUG-1 @ main: expected 10, counted 7, variance -3 (-7.50 at cost)" in out.err
    assert _ledger(shop)[-2:] == [("MUG-1", "count", -3, "ana"), ("TEE-1", "count", 2, "ana")]


@pytest.mark.parametrize(("rows", "problem"), [
    ("sku,counted\nMUG-1,7\nTEE-1,-2\n", ":3: counted"),
    ("sku,counted\nMUG-1,7\nNOPE-9,2\n", ":3: sku 'NOPE-9' is not in the catalog"),
    ("sku,counted\nMUG-1,7\nMUG-1,8\n", ":3: sku 'MUG-1' at main repeats line 2"),
    ("sku,counted\nMUG-1,seven\n", ":2: counted"),
])
def test_a_count_with_a_bad_row_books_nothing(
    shop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: str, problem: str
) -> None:
    before = _ledger(shop)
    count = tmp_path / "count.csv"
    count.write_text(rows)
    assert main(["import", "count", str(count)]) == 2
    err = capsys.readouterr().err
    assert problem in err and "nothing booked" in err
    assert _ledger(shop) == before


def test_a_count_file_without_the_counted_column_is_refused(shop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    count = tmp_path / "count.csv"
    count.write_text("sku,on_hand\nMUG-1,7\n")
    assert main(["import", "count", str(count)]) == 2
    assert "missing column(s) counted" in capsys.readouterr().err


def test_a_count_below_what_orders_reserved_puts_the_newest_order_back_on_hold(
    shop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from models import Order, OrderHold
    from models.intake import available_units

    with unit_of_work(shop) as session:
        for number, units in enumerate((4, 3, 2)):  # 9 of MUG-1's 10 promised, oldest first
            placed = datetime(2026, 11, 20, tzinfo=UTC) + timedelta(hours=number)
            order = Order(channel="shopify", external_id=str(number), number=f"#{number}", status="accepted",
                          lifecycle="open", currency="USD", total=Decimal(0), shipping=Decimal(0), tax=Decimal(0),
                          discounts=Decimal(0), taxes_included=False, requires_shipping=True, risk="low",
                          placed_at=placed, upstream_updated_at=placed, fingerprint="-")
            session.add(order)
            session.flush()
            session.add(StockMovement(sku="MUG-1", kind="reservation", reserved_delta=units, order_id=order.id))
    count = tmp_path / "count.csv"
    count.write_text("sku,counted\nMUG-1,6\n")  # 3 short of the 9 promised
    assert main(["import", "count", str(count)]) == 0
    assert json.loads(capsys.readouterr().out)["orders_held"] == 2
    with unit_of_work(shop) as session:
        statuses = {o.number: o.status for o in session.scalars(select(Order))}
        holds = {(h.order_id, h.reason) for h in session.scalars(select(OrderHold))}
        assert available_units(session, ["MUG-1"]) == {"MUG-1": 2}
    assert statuses == {"#0": "accepted", "#1": "held", "#2": "held"}
    assert {reason for _, reason in holds} == {"insufficient_stock"} and len(holds) == 2


def test_the_stock_valuation_export_prices_on_hand_at_cost(shop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "valuation.jsonl"
    assert main(["export", "stock-valuation", "--output", str(output)]) == 0
    rows = {row["sku"]: row for row in map(json.loads, output.read_text().splitlines())}
    assert rows["MUG-1"] == {"sku": "MUG-1", "location": "main", "on_hand": 10, "unit_cost": "2.50",
                                  "value": "25.00", "currency": "USD"}
    assert (rows["CAP-1"]["value"], rows["TEE-1"]["value"]) == (None, "16.00")

