"""The seeded store in Magento 2's REST shapes.

What a real Magento prints, and this renders alike:
- `entity_id` (small integers) is what the API addresses; `increment_id` ("000001042")
  is the number people see. Timestamps are `YYYY-MM-DD HH:MM:SS` in UTC.
- Amounts are JSON numbers, twice over: in the order's currency and, as `base_*`, in the
  website's base currency (the store's). Orders shipped to the euro area or Britain are
  placed in EUR or GBP at a fixed rate, so their two sets differ. A `malformed` order's
  unreadable amount is printed as the string the store holds, wherever it shows.
- The order's `discount_amount` is negative, an item's positive.
- Prices are tax-exclusive in `price` and `row_total`; orders of countries whose prices
  include tax carry the catalog price in `original_price` and `price_incl_tax`.
- A variant of a product with options is a configurable parent item (price, quantity,
  discount, the child's SKU) followed by its simple child (`parent_item_id`, price 0).
- Unset properties are left out, except those the schema requires, which Magento's
  serializer prints as null (an address without a postcode has `"postcode": null`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from domain.orders import Lifecycle, Risk
from integrations.sandbox.store import (
    CUSTOMER_ID_BASE,
    LINE_ID_BASE,
    ORDER_ID_BASE,
    PRODUCT_ID_BASE,
    VARIANT_ID_BASE,
    Address,
    Line,
    Order,
    Product,
    Store,
    Variant,
    payment_gateway,
    payment_reference,
)

STORE_ID = 1
WEBSITE_ID = 1
CHILD_ITEM_OFFSET = 10_000_000  # child item ids sit above every parent's
PARENT_PRODUCT_OFFSET = 100_000  # configurable products' ids sit above every simple's
# Customers shipping here pay in their own currency; units of it per unit of base currency.
LOCAL_CURRENCY = {"DE": "EUR", "FR": "EUR", "ES": "EUR", "IE": "EUR", "GB": "GBP"}
RATES = {"EUR": Decimal("0.92"), "GBP": Decimal("0.79")}

_DECIMAL = re.compile(r"-?\d+\.\d{2}")
# The store's gateways as Magento's payment modules name them.
PAYMENT_METHODS = {"stripe": {"method": "stripe_payments", "additional_information": ["Stripe"]},
                   "paypal": {"method": "paypal_express", "additional_information": ["PayPal Express Checkout"]}}

Amount = int | str  # cents, or the text of an amount that is not one (a malformed order's)


def timestamp(moment: datetime | None) -> str | None:
    """A moment as Magento prints it: UTC, `YYYY-MM-DD HH:MM:SS`."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def entity_id(order: Order) -> int:
    return order.id - ORDER_ID_BASE


def store_order_id(entity: int) -> int:
    return entity + ORDER_ID_BASE


def item_id(line: Line) -> int:
    return line.id - LINE_ID_BASE


def compact(values: Mapping[str, Any], required: Iterable[str] = ()) -> dict[str, Any]:
    """Drops unset properties but keeps the required ones, as Magento's serializer does."""
    keep = set(required)
    return {key: value for key, value in values.items() if value is not None or key in keep}


def cents(text: str) -> Amount:
    """A store amount in cents, or its text when it is not an amount."""
    if not _DECIMAL.fullmatch(text):
        return text
    return int(Decimal(text).scaleb(2))


def number(amount: Amount) -> float | str:
    """An amount as Magento prints it: a JSON number (a bad one stays text)."""
    if isinstance(amount, str):
        return amount
    return float(Decimal(amount).scaleb(-2)) if amount else 0


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _share(amount: int, numerator: int, denominator: int) -> int:
    return _round(Decimal(amount) * numerator / denominator)


@dataclass(frozen=True, slots=True)
class Pricing:
    """The currency an order was placed in and its rate against the base currency."""

    currency: str
    rate: Decimal

    def convert(self, amount: Amount) -> Amount:
        return amount if isinstance(amount, str) or self.rate == 1 else _round(amount * self.rate)


def pricing(order: Order, base_currency: str) -> Pricing:
    """EUR or GBP for orders shipped there (tricky orders keep the store's own amounts)."""
    local = LOCAL_CURRENCY.get(order.ship_to.country) if order.ship_to else None
    if order.reason or local is None or order.currency != base_currency or local == base_currency:
        return Pricing(order.currency, Decimal(1))
    return Pricing(local, RATES[local])


def item_amounts(unit: Amount, quantity: int, discount: Amount, basis_points: int,
                 taxes_included: bool) -> dict[str, Amount]:
    """An item's money in one currency, in cents, the way Magento's totals relate.

    row_total + tax_amount - discount_amount + discount_tax_compensation_amount is
    what the customer paid for the row, with tax in or out of the catalog price.
    """
    names = ("price", "price_incl_tax", "original_price", "row_total", "row_total_incl_tax",
             "tax_amount", "discount_amount", "discount_tax_compensation_amount")
    bad = unit if isinstance(unit, str) else discount if isinstance(discount, str) else None
    if bad is not None:
        return dict.fromkeys(names, bad)
    gross = unit * quantity
    if taxes_included:
        full_tax = _share(gross, basis_points, 10_000 + basis_points)
        tax = _share(gross - discount, basis_points, 10_000 + basis_points)
        price = _share(unit, 10_000, 10_000 + basis_points)
        values = (price, unit, unit, gross - full_tax, gross, tax, discount, full_tax - tax)
    else:
        tax = _share(gross - discount, basis_points, 10_000)
        values = (unit, _share(unit, 10_000 + basis_points, 10_000), unit, gross,
                  gross + _share(gross, basis_points, 10_000), tax, discount, 0)
    return dict(zip(names, values, strict=True))


def state_and_status(order: Order) -> tuple[str, str]:
    """Magento's state and status for a store order (see the client's ORDER_STATES)."""
    if order.lifecycle is Lifecycle.CANCELLED:
        return "canceled", "canceled"
    if order.lifecycle is Lifecycle.FULFILLED:
        return "complete", "complete"
    if order.lifecycle is Lifecycle.CLOSED:
        return "closed", "closed"
    if order.risk is Risk.HIGH:
        # Suspected fraud, flagged either while the payment is reviewed or after it.
        return ("payment_review", "fraud") if order.id % 2 else ("processing", "fraud")
    return ("new", "pending") if order.id % 7 == 0 else ("processing", "processing")


_ADDRESS_REQUIRED = ("address_type", "city", "country_id", "firstname", "lastname", "postcode", "telephone")


def address(value: Address, kind: str, order: Order) -> dict[str, Any]:
    """An order address; Magento has no line 2 without a line 1, so a lost line 1 is ""."""
    street = [value.street1 or ""] + ([value.street2] if value.street2 else [])
    if street == [""]:
        street = []
    return compact({
        "address_type": kind, "parent_id": entity_id(order), "firstname": value.first_name,
        "lastname": value.last_name, "company": value.company, "street": street, "city": value.city,
        "region": value.province, "region_code": value.province_code, "postcode": value.postal_code,
        "country_id": value.country, "telephone": value.phone, "email": order.email,
    }, _ADDRESS_REQUIRED)


@dataclass(frozen=True, slots=True)
class Refundable:
    """An order's money as a credit memo sees it, in the order's currency's cents."""

    rate: Pricing
    total: int | None  # None when the store's total is unreadable
    shipping: int | None
    rows: dict[int, tuple[int, int]]  # top item id -> (quantity ordered, paid for the row)


@dataclass(frozen=True, slots=True)
class Shipped:
    """Quantities the sandbox's own documents moved, by item id."""

    shipped: Mapping[int, int]
    refunded: Mapping[int, int]


class Renderer:
    """Turns store objects into Magento REST payloads."""

    def __init__(self, store: Store):
        self.store = store
        self.base_currency = store.currency
        self.variants = {v.id: v for v in store.variants}
        self.products = {p.id: p for p in store.products}

    # -- catalog ------------------------------------------------------------------------------

    @staticmethod
    def product_id(variant: Variant) -> int:
        return variant.id - VARIANT_ID_BASE

    def configurable(self, variant: Variant) -> Product | None:
        product = self.products[variant.product_id]
        return product if len(product.variants) > 1 else None

    def products_rows(self) -> list[dict[str, Any]]:
        """Every product, configurable parents followed by their simple children."""
        rows = []
        for product in self.store.products:
            status = 1 if product.status == "active" else 2
            if len(product.variants) > 1:
                rows.append({
                    "id": PARENT_PRODUCT_OFFSET + product.id - PRODUCT_ID_BASE,
                    "sku": product.variants[0].sku.rsplit("-", 1)[0], "name": product.title,
                    "attribute_set_id": 4, "price": 0, "status": status, "visibility": 4,
                    "type_id": "configurable", "created_at": timestamp(product.updated_at),
                    "updated_at": timestamp(product.updated_at),
                    "extension_attributes": {"website_ids": [WEBSITE_ID], "configurable_product_links": [
                        self.product_id(v) for v in product.variants]},
                    "custom_attributes": [{"attribute_code": "url_key", "value": product.handle}],
                })
            for variant in product.variants:
                alone = len(product.variants) == 1
                attributes = [{"attribute_code": "url_key", "value": f"{product.handle}-{variant.id}"}]
                if variant.barcode:
                    attributes.append({"attribute_code": "barcode", "value": variant.barcode})
                rows.append({
                    "id": self.product_id(variant), "sku": variant.sku,
                    "name": product.title if alone else f"{product.title}-{variant.title}",
                    "attribute_set_id": 4, "price": number(cents(str(variant.price))), "status": status,
                    "visibility": 4 if alone else 1,
                    "type_id": "simple" if variant.requires_shipping else "virtual",
                    "created_at": timestamp(variant.updated_at), "updated_at": timestamp(variant.updated_at),
                    "weight": variant.weight_grams / 1000,
                    "extension_attributes": {"website_ids": [WEBSITE_ID]},
                    "custom_attributes": attributes,
                })
        return rows

    # -- orders -------------------------------------------------------------------------------

    def _amounts(self, order: Order, rate: Pricing) -> list[tuple[dict[str, Amount], dict[str, Amount]]]:
        """Each line's money in cents: (in the order's currency, in the base currency)."""
        amounts = []
        for line in order.lines:
            unit, discount = cents(line.unit_price), cents(line.discount)
            base = item_amounts(unit, line.quantity, discount, order.tax_basis_points, order.taxes_included)
            local = item_amounts(rate.convert(unit), line.quantity, rate.convert(discount),
                                 order.tax_basis_points, order.taxes_included)
            amounts.append((local, base))
        return amounts

    def _line_items(self, order: Order, line: Line, local: dict[str, Amount], base: dict[str, Amount],
                    moved: Shipped) -> list[dict[str, Any]]:
        variant = self.variants.get(line.variant_id) if line.variant_id else None
        parent = self.configurable(variant) if variant else None
        own_id = item_id(line)
        quantities = self._quantities(order, line, own_id, moved)
        money = {key: number(value) for key, value in local.items()}
        money |= {f"base_{key}": number(value) for key, value in base.items()}
        common = {
            "order_id": entity_id(order), "store_id": STORE_ID, "created_at": timestamp(order.created_at),
            "updated_at": timestamp(order.updated_at), "is_virtual": 0 if line.requires_shipping else 1,
            "weight": variant.weight_grams / 1000 if variant else None,
        }
        kind = "simple" if line.requires_shipping else "virtual"
        top = compact({
            "item_id": own_id, "sku": line.sku, "name": line.title,
            "product_id": (PARENT_PRODUCT_OFFSET + parent.id - PRODUCT_ID_BASE) if parent
            else self.product_id(variant) if variant else None,
            "product_type": "configurable" if parent else kind,
            "discount_percent": order.discount_percent, "tax_percent": order.tax_basis_points / 100,
            **quantities, **money, **common,
        }, ("sku",))
        if parent is None or variant is None:
            return [top]
        zero = dict.fromkeys(money, 0)
        child = compact({
            "item_id": own_id + CHILD_ITEM_OFFSET, "parent_item_id": own_id, "sku": line.sku,
            "name": f"{line.title}-{line.variant_title}", "product_id": self.product_id(variant),
            "product_type": kind, **quantities, **zero, **common,
        }, ("sku",))
        return [top, child]

    @staticmethod
    def _quantities(order: Order, line: Line, own_id: int, moved: Shipped) -> dict[str, float]:
        history = order.lifecycle in (Lifecycle.FULFILLED, Lifecycle.CLOSED)
        ordered = line.quantity
        return {
            "qty_ordered": float(ordered),
            "qty_invoiced": 0.0 if order.lifecycle is Lifecycle.CANCELLED else float(ordered),
            "qty_shipped": float(ordered if history else moved.shipped.get(own_id, 0)),
            "qty_refunded": float(moved.refunded.get(own_id, 0)),
            "qty_canceled": float(ordered) if order.lifecycle is Lifecycle.CANCELLED else 0.0,
        }

    def order(self, order: Order, moved: Shipped, comments: list[dict[str, Any]]) -> dict[str, Any]:
        """One `sales-data-order-interface` payload."""
        rate = pricing(order, self.base_currency)
        amounts = self._amounts(order, rate)
        items = [item for line, (local, base) in zip(order.lines, amounts, strict=True)
                 for item in self._line_items(order, line, local, base, moved)]
        totals = {key: number(value) for key, value in self._totals(order, rate, [a for a, _ in amounts]).items()}
        base_rate = Pricing(self.base_currency, Decimal(1))
        totals |= {f"base_{key}": number(value)
                   for key, value in self._totals(order, base_rate, [b for _, b in amounts]).items()}
        state, status = state_and_status(order)
        customer = order.customer
        names = customer or order.ship_to
        billing = customer.addresses[0] if customer else order.ship_to
        shipping: dict[str, Any] = {"total": {key: totals[key] for key in (
            "shipping_amount", "shipping_incl_tax", "base_shipping_amount", "base_shipping_incl_tax")}}
        if order.ship_to is not None:
            shipping |= {"address": address(order.ship_to, "shipping", order), "method": "flatrate_flatrate"}
        return compact({
            "entity_id": entity_id(order), "increment_id": f"{order.number:09d}",
            "created_at": timestamp(order.created_at), "updated_at": timestamp(order.updated_at),
            "state": state, "status": status, "store_id": STORE_ID,
            "store_name": "Main Website\nMain Website Store\nDefault Store View",
            "order_currency_code": rate.currency, "base_currency_code": self.base_currency,
            "global_currency_code": self.base_currency, "store_currency_code": self.base_currency,
            "base_to_order_rate": float(rate.rate), "store_to_order_rate": float(rate.rate),
            "base_to_global_rate": 1, "store_to_base_rate": 1,
            **totals,
            "total_qty_ordered": float(sum(line.quantity for line in order.lines)),
            "total_item_count": len(items), "is_virtual": 0 if order.requires_shipping else 1,
            "customer_email": order.email,
            "customer_firstname": names.first_name if names else None,
            "customer_lastname": names.last_name if names else None,
            "customer_id": customer.id - CUSTOMER_ID_BASE if customer else None,
            "customer_is_guest": 0 if customer else 1,
            "customer_group_id": 1 if customer else 0,
            "items": items,
            "billing_address": address(billing, "billing", order) if billing else None,
            "payment": compact({
                **PAYMENT_METHODS[payment_gateway(order.id)], "last_trans_id": payment_reference(order.id),
                "account_status": None, "cc_last4": None, "parent_id": entity_id(order),
                "amount_ordered": totals["grand_total"], "base_amount_ordered": totals["base_grand_total"],
            }, ("account_status", "additional_information", "cc_last4", "method")),
            "status_histories": comments,
            "extension_attributes": {"shipping_assignments": [{"shipping": shipping, "items": items}]},
        }, ("base_grand_total", "customer_email", "grand_total", "items"))

    def refundable(self, order: Order) -> Refundable:
        """What an order's items and shipping were paid, in its own currency's cents."""
        rate = pricing(order, self.base_currency)
        amounts = [local for local, _ in self._amounts(order, rate)]
        totals = self._totals(order, rate, amounts)
        rows = {}
        for line, local in zip(order.lines, amounts, strict=True):
            if all(isinstance(value, int) for value in local.values()):
                paid = int(local["row_total"]) + int(local["tax_amount"]) - int(local["discount_amount"]) \
                    + int(local["discount_tax_compensation_amount"])
                rows[item_id(line)] = (line.quantity, paid)
        total, shipping = totals["grand_total"], totals["shipping_amount"]
        return Refundable(rate, total if isinstance(total, int) else None,
                          shipping if isinstance(shipping, int) else None, rows)

    def _totals(self, order: Order, rate: Pricing, lines: list[dict[str, Amount]]) -> dict[str, Amount]:
        """Order-level money in one currency; a converted order's total is summed anew from its lines."""
        shipping, tax = rate.convert(cents(order.shipping)), rate.convert(cents(order.tax))
        discounts = rate.convert(cents(order.discounts))
        total = cents(order.total)
        if rate.rate != 1:
            discounts, total = _resummed(order, lines, shipping, tax)
        values: dict[str, Amount] = {
            "grand_total": total, "subtotal": _sum(amounts["row_total"] for amounts in lines),
            "subtotal_incl_tax": _sum(amounts["row_total_incl_tax"] for amounts in lines),
            "shipping_amount": shipping, "shipping_incl_tax": shipping, "shipping_tax_amount": 0,
            "tax_amount": tax,
            # Magento keeps the order's discount negative.
            "discount_amount": discounts if isinstance(discounts, str) else -discounts,
        }
        return values


def _resummed(order: Order, lines: list[dict[str, Amount]], shipping: Amount, tax: Amount) -> tuple[int, int]:
    """Discounts and grand total of a converted order, summed from its converted lines.

    Only untricky orders are converted, so every amount is readable.
    """
    price = "price_incl_tax" if order.taxes_included else "price"
    readable = [{key: int(value) for key, value in amounts.items()} for amounts in lines]
    discounts = sum(amounts["discount_amount"] for amounts in readable)
    gross = sum(amounts[price] * line.quantity for amounts, line in zip(readable, order.lines, strict=True))
    return discounts, gross - discounts + int(shipping) + (0 if order.taxes_included else int(tax))


def _sum(amounts: Iterable[Amount]) -> Amount:
    """A sum of amounts; a bad one spoils it, as it would Magento's totals."""
    total = 0
    for amount in amounts:
        if isinstance(amount, str):
            return amount
        total += amount
    return total
