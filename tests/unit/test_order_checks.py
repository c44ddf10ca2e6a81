"""Each hold rule of the contract, as a table."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

import pytest

from domain.orders import (
    Address,
    ChannelOrder,
    Customer,
    OrderLine,
    PriceTolerance,
    Risk,
    address_complete,
    hold_reasons,
)
from domain.reasons import Hold
from tests.unit.factories import CATALOG, HOME, line, order

CASES = [
    ("clean order", order(), []),
    ("unknown sku", order(lines=(line("NOPE"),)), [Hold.UNKNOWN_SKU]),
    ("line without sku", order(lines=(line(None),)), [Hold.UNKNOWN_SKU]),
    ("price 20% high", order(lines=(line(price="12.00"),)), [Hold.PRICE_MISMATCH]),
    ("price within 1%", order(lines=(line(price="10.09"),)), []),
    ("price off by a cent on a cheap item", order(lines=(line(price="10.01"),)), []),
    ("discounted price explained by the line discount",
     order(lines=(line(qty=2, price="8.00", discount="4.00"),)), []),
    ("missing postal code", order(ship_to=replace(HOME, postal_code=None)), [Hold.INCOMPLETE_ADDRESS]),
    ("no address at all", order(ship_to=None), [Hold.INCOMPLETE_ADDRESS]),
    ("Hong Kong needs no postal code", order(ship_to=replace(HOME, postal_code=None, country="HK")), []),
    ("total off by 5", order(total="20.00"), [Hold.TOTAL_MISMATCH]),
    ("total off by a cent is fine", order(total="15.01"), []),
    ("taxes included are not added again", order(tax="1.50", taxes_included=True), []),
    ("tax added on top", order(tax="1.50"), []),
    ("discount subtracted", order(discounts="2.00"), []),
    ("high risk", order(risk=Risk.HIGH), [Hold.HIGH_RISK]),
    ("several at once", order(lines=(line("NOPE"),), risk=Risk.HIGH, ship_to=None),
     [Hold.UNKNOWN_SKU, Hold.INCOMPLETE_ADDRESS, Hold.HIGH_RISK]),
]


@pytest.mark.parametrize(("name", "subject", "expected"), CASES, ids=[c[0] for c in CASES])
def test_hold_rules(name: str, subject, expected) -> None:  # type: ignore[no-untyped-def]
    assert hold_reasons(subject, CATALOG) == expected


def test_price_in_another_currency_is_not_compared() -> None:
    foreign = replace(order(lines=(line(price="99.00"),)), currency="EUR", total="104.00")
    assert Hold.PRICE_MISMATCH not in hold_reasons(replace(foreign, total=Decimal("104.00")), CATALOG)


def test_tolerance_is_the_larger_bound() -> None:
    tolerance = PriceTolerance(Decimal("0.01"), Decimal("0.01"))
    assert tolerance.allows(Decimal("1000.00"), Decimal("1009.00"))
    assert not tolerance.allows(Decimal("1000.00"), Decimal("1011.00"))
    assert tolerance.allows(Decimal("0.50"), Decimal("0.51"))
    assert not tolerance.allows(Decimal("0.50"), Decimal("0.52"))


def test_address_needs_every_part() -> None:
    assert address_complete(HOME)
    for part in ("name", "street1", "city", "country", "postal_code"):
        assert not address_complete(replace(HOME, **{part: " "})), part
    assert not address_complete(Address())


def _other(value: object) -> object:
    """A different value of the same kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, StrEnum):
        return next(member for member in type(value) if member != value)
    if isinstance(value, (Decimal, int)):
        return value + 1
    if isinstance(value, datetime):
        return value + timedelta(seconds=1)
    return f"{value}x" if value is not None else "x"


def test_fingerprint_ignores_only_the_update_stamp() -> None:
    """Every stored field, however deep, changes the digest; the update stamp alone does not."""
    base = replace(order(lines=(line("SKU-1"), line("SKU-2", 2, "25.00"))), extra={"status": "paid"})
    assert base.fingerprint() == replace(base, updated_at=base.updated_at.replace(year=2030)).fingerprint()
    seen = {base.fingerprint()}
    for name in (f.name for f in fields(ChannelOrder) if f.name != "updated_at"):
        value = getattr(base, name)
        if name == "lines":
            for part in fields(OrderLine):
                changed = replace(value[1], **{part.name: _other(getattr(value[1], part.name))})
                seen.add(replace(base, lines=(value[0], changed)).fingerprint())
            seen.add(replace(base, lines=value[::-1]).fingerprint())
        elif name in ("ship_to", "customer"):
            for part in fields(value):
                seen.add(replace(base, **{name: replace(value, **{part.name: _other(getattr(value, part.name))})}).fingerprint())
            seen.add(replace(base, **{name: None}).fingerprint())
        elif name == "extra":
            seen.add(replace(base, extra={"status": "refunded"}).fingerprint())
        else:
            seen.add(replace(base, **{name: _other(value)}).fingerprint())
    changes = (len(fields(ChannelOrder)) - 5 + len(fields(OrderLine)) + 1 + len(fields(Address)) + 1
               + len(fields(Customer)) + 1 + 1)
    assert len(seen) == 1 + changes
