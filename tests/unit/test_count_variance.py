"""A cycle count's variance report: what the ledger expected against what was counted, at cost."""

from __future__ import annotations

from decimal import Decimal

from domain.stock import count_variances


def test_variances_are_valued_at_cost_and_the_largest_loss_comes_first() -> None:
    report = count_variances(
        [("MUG-1", "main", 10, 7), ("TEE-1", "main", 4, 6), ("CAP-1", "main", 5, 5), ("BAG-1", "back", 2, 0)],
        {"MUG-1": Decimal("2.50"), "TEE-1": Decimal("4.00"), "CAP-1": Decimal("1.00"), "BAG-1": Decimal("9.99")},
    )
    assert [(v.sku, v.variance, v.value) for v in report] == [
        ("BAG-1", -2, Decimal("-19.98")), ("MUG-1", -3, Decimal("-7.50")),
        ("CAP-1", 0, Decimal("0.00")), ("TEE-1", 2, Decimal("8.00"))]


def test_a_sku_without_cost_has_a_variance_but_no_value() -> None:
    [variance] = count_variances([("NEW-1", "main", 0, 3)], {"NEW-1": None})
    assert variance.as_record() == {"sku": "NEW-1", "location": "main", "expected": 0, "counted": 3,
                                    "variance": 3, "value": None}
