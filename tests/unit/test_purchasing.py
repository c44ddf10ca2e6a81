"""Purchase orders from needs, the approval threshold, and booking deliveries against them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from domain.purchasing import Need, ReceiptError, book_receipt, draft_purchase_orders, purchase_order_number

NIGHT = date(2026, 11, 26)


def test_needs_are_grouped_one_purchase_order_per_supplier_with_lines_by_sku() -> None:
    needs = [
        Need("MUG-2", "ACME", 12, Decimal("2.50")),
        Need("TEE-1", "Blue Thread Co.", 6, Decimal("4.00")),
        Need("MUG-1", "ACME", 24, Decimal("2.25")),
        Need("CAP-1", "ACME", 0, Decimal("9.99")),  # nothing to buy: no line
    ]
    acme, blue = draft_purchase_orders(needs, NIGHT, {"Blue Thread Co.": "EUR"}, Decimal("5000"))
    assert (acme.number, acme.currency, [n.sku for n in acme.lines], acme.total) == (
        "PO-20261126-ACME", "USD", ["MUG-1", "MUG-2"], Decimal("84.00"))
    assert (blue.number, blue.currency, blue.total) == ("PO-20261126-BLUE-THREAD-CO", "EUR", Decimal("24.00"))


def test_a_total_above_the_threshold_waits_for_approval_and_one_at_it_does_not() -> None:
    above, at = draft_purchase_orders(
        [Need("A", "AT", 100, Decimal("50")), Need("B", "ABOVE", 1, Decimal("5000.01"))], NIGHT, {}, Decimal("5000.00"))
    assert (above.supplier, above.needs_approval) == ("ABOVE", True)
    assert (at.supplier, at.total, at.needs_approval) == ("AT", Decimal("5000.00"), False)


def test_the_number_is_the_same_for_the_same_supplier_and_night_only() -> None:
    assert purchase_order_number("acme", NIGHT) == purchase_order_number("ACME", NIGHT)
    assert purchase_order_number("ACME", NIGHT) != purchase_order_number("ACME", date(2026, 11, 27))
    assert purchase_order_number("!!!", NIGHT) == "PO-20261126-SUPPLIER"


ORDERED = {"MUG-1": (24, 0), "MUG-2": (12, 4)}


def test_a_partial_delivery_leaves_the_order_partially_received() -> None:
    receipt = book_receipt("PO-1", "sent", ORDERED, [(2, "MUG-1", 10), (3, "MUG-1", 4)])
    assert receipt.status == "partially_received"
    assert receipt.under == {"MUG-1": 10, "MUG-2": 8} and receipt.over == {}


def test_a_full_delivery_receives_the_order_and_an_extra_unit_is_reported_over() -> None:
    receipt = book_receipt("PO-1", "partially_received", ORDERED, [(2, "MUG-1", 25), (3, "MUG-2", 8)])
    assert (receipt.status, receipt.over, receipt.under) == ("received", {"MUG-1": 1}, {})


@pytest.mark.parametrize(("status", "rows", "message"), [
    ("sent", [(2, "CAP-9", 1)], "line 2: 'CAP-9' is not on PO-1"),
    ("sent", [(2, "MUG-1", 0)], "line 2: quantity of 'MUG-1' must be a positive whole number, not 0"),
    ("sent", [(2, "MUG-1", -3)], "not -3"),
    ("sent", [], "nothing delivered for PO-1"),
    ("awaiting_approval", [(2, "MUG-1", 1)], "PO-1 is awaiting_approval"),
    ("received", [(2, "MUG-1", 1)], "PO-1 is received"),
    ("cancelled", [(2, "MUG-1", 1)], "PO-1 is cancelled"),
])
def test_a_delivery_that_cannot_be_booked_names_why(status: str, rows: list[tuple[int, str, int]], message: str) -> None:
    with pytest.raises(ReceiptError, match=message.replace("(", r"\(")):
        book_receipt("PO-1", status, ORDERED, rows)


def test_lead_time_spread_is_the_sample_deviation_of_what_each_supplier_took() -> None:
    from domain.purchasing import lead_time_spread

    spread = lead_time_spread({"ACME": [5.0, 7.0, 9.0], "ONCE": [12.0]})
    assert spread == {"ACME": 2.0, "ONCE": 0.0}
