"""Small builders for domain objects in tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from domain.orders import Address, CatalogPrice, ChannelOrder, Customer, Lifecycle, OrderLine, Risk

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
HOME = Address(name="Ana Lima", street1="12 Main St", city="Portland", postal_code="97201", country="US")
CATALOG = {"SKU-1": CatalogPrice(Decimal("10.00"), "USD"), "SKU-2": CatalogPrice(Decimal("25.00"), "USD")}


def line(sku: str | None = "SKU-1", qty: int | str | None = 1, price: str = "10.00", discount: str = "0") -> OrderLine:
    quantity = None if qty is None else Decimal(str(qty))
    return OrderLine(sku, f"Item {sku}", quantity, Decimal(price), Decimal(discount))


def order(
    external_id: str = "1",
    lines: tuple[OrderLine, ...] | None = None,
    *,
    total: str | None = None,
    shipping: str = "5.00",
    tax: str = "0",
    discounts: str = "0",
    lifecycle: Lifecycle = Lifecycle.OPEN,
    ship_to: Address | None = HOME,
    risk: Risk = Risk.LOW,
    placed: int = 0,
    updated: int = 0,
    taxes_included: bool = False,
) -> ChannelOrder:
    lines = (line(),) if lines is None else lines
    if total is None:
        subtotal = sum((l.unit_price * l.units for l in lines), Decimal(0))
        tax_part = Decimal(0) if taxes_included else Decimal(tax)
        total = str(subtotal + Decimal(shipping) + tax_part - Decimal(discounts))
    return ChannelOrder(
        channel="shopify", external_id=external_id, number=f"#{1000 + int(external_id)}", currency="USD",
        placed_at=T0 + timedelta(minutes=placed), updated_at=T0 + timedelta(minutes=updated), lifecycle=lifecycle,
        lines=lines, total=Decimal(total), shipping=Decimal(shipping), tax=Decimal(tax), discounts=Decimal(discounts),
        taxes_included=taxes_included, ship_to=ship_to, customer=Customer("c1", "ana@example.com"), risk=risk,
    )
