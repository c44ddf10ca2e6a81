"""The seeded store in WooCommerce REST API v3 shapes: integer ids, decimal strings, `*_gmt` times.

WooCommerce keeps line amounts without tax even when the shop's prices include it, so
a tax-inclusive order's lines are split here into their net amount and its tax; what
the store held is their sum. A `malformed` order's bad amount is passed on exactly as
the store has it, in the field it spoils.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from domain.orders import Lifecycle, Risk
from integrations.sandbox.store import (
    Address,
    Line,
    Order,
    Product,
    Store,
    Variant,
    money,
    payment_gateway,
    payment_reference,
    to_cents,
)

# The sandbox site's time zone: UTC-3 without daylight saving, so local and GMT times differ.
SITE_OFFSET = timedelta(hours=-3)
RISK_META_KEY = "_clerk_risk"
_DEFAULT_TITLE = "Default Title"  # the store's title for a product's only variant
_STAMP = "%Y-%m-%dT%H:%M:%S"
# The store's gateways as WooCommerce's payment plugins name them: (payment_method, its title).
PAYMENT_METHODS = {"stripe": ("stripe", "Credit card (Stripe)"), "paypal": ("ppcp-gateway", "PayPal")}


def gmt(moment: datetime | None) -> str | None:
    """`date_*_gmt`: UTC, to the second, without an offset."""
    return moment.astimezone(UTC).strftime(_STAMP) if moment else None


def local(moment: datetime | None) -> str | None:
    """`date_*`: the site's local time, without an offset."""
    return (moment.astimezone(UTC) + SITE_OFFSET).strftime(_STAMP) if moment else None


def order_status(order: Order) -> str:
    """The status WooCommerce would show for the order's lifecycle, varied by id."""
    if order.lifecycle is Lifecycle.OPEN:
        return {0: "on-hold", 1: "pending"}.get(order.id % 10, "processing")
    if order.lifecycle is Lifecycle.FULFILLED:
        return "completed"
    if order.lifecycle is Lifecycle.CLOSED:
        return "refunded" if order.id % 4 == 0 else "completed"
    return "cancelled"


def is_variable(product: Product) -> bool:
    """Products with options are variable (their SKUs are on variations); the rest simple."""
    return len(product.variants) > 1 or product.variants[0].title != _DEFAULT_TITLE


def _share(cents: int, basis_points: int, included: bool) -> int:
    """The tax in (included) or on `cents` at `basis_points`, to the cent, halves away from zero."""
    base = 10_000 + basis_points if included else 10_000
    return int((Decimal(cents * basis_points) / base).to_integral_value(ROUND_HALF_UP))


@dataclass(frozen=True, slots=True)
class LineMoney:
    """One line's amounts as WooCommerce spells them; `tax_off` is its discount's tax."""

    subtotal: str
    subtotal_tax: str
    total: str
    total_tax: str
    price: float
    tax_off: int


def line_money(line: Line, order: Order) -> LineMoney:
    """Splits a store line into WooCommerce's net amounts and their taxes."""
    try:
        gross = to_cents(line.unit_price) * line.quantity
    except InvalidOperation:
        # A malformed unit price spoils the line's subtotal and total, as the store has it.
        return LineMoney(line.unit_price, "0.00", line.unit_price, "0.00", 0.0, 0)
    net = gross - to_cents(line.discount)
    bp, included = order.tax_basis_points, order.taxes_included
    subtotal_tax, total_tax = _share(gross, bp, included), _share(net, bp, included)
    if included:
        gross, net = gross - subtotal_tax, net - total_tax
    price = float(Decimal(net) / line.quantity / 100) if line.quantity else 0.0  # a float, as WooCommerce's
    return LineMoney(money(gross), money(subtotal_tax), money(net), money(total_tax), price,
                     subtotal_tax - total_tax)


def _address(address: Address | None, with_phone: bool) -> dict[str, str]:
    def text(value: str | None) -> str:
        return value or ""

    if address is None:
        fields = dict.fromkeys(("first_name", "last_name", "company", "address_1", "address_2", "city", "state",
                                "postcode", "country"), "")
    else:
        fields = {
            "first_name": text(address.first_name), "last_name": text(address.last_name),
            "company": text(address.company), "address_1": text(address.street1),
            "address_2": text(address.street2), "city": text(address.city),
            "state": text(address.province_code), "postcode": text(address.postal_code),
            "country": text(address.country),
        }
    if with_phone:
        fields["phone"] = text(address.phone) if address else ""
    return fields


class Renderer:
    """Turns store objects into WooCommerce JSON."""

    def __init__(self, store: Store, base_url: str = "http://127.0.0.1"):
        self.store = store
        self.base_url = base_url
        self.variants = {v.id: v for v in store.variants}
        self.products = {p.id: p for p in store.products}

    # -- orders -----------------------------------------------------------------------------

    def order(self, order: Order, status: str, refunds: list[dict[str, Any]]) -> dict[str, Any]:
        lines = [line_money(line, order) for line in order.lines]
        discount_tax = sum(m.tax_off for m in lines)
        # The store's discounts include their tax exactly when its prices do; WooCommerce's never.
        discount_total = money(to_cents(order.discounts) - (discount_tax if order.taxes_included else 0))
        customer = order.customer
        home = customer.addresses[0] if customer else order.ship_to
        billing = _address(home, with_phone=True) | {"email": order.email or "", "phone": order.phone or ""}
        meta = [{"id": order.id * 10 + 1, "key": "_order_attribution_source_type", "value": "typein"}]
        if order.risk is not Risk.NONE:
            meta.append({"id": order.id * 10 + 2, "key": RISK_META_KEY, "value": order.risk.value})
        paid = None if status in ("pending", "failed") else order.processed_at
        completed = order.updated_at if status == "completed" else None
        link = f"{self.base_url}/wp-json/wc/v3/orders"
        method, method_title = PAYMENT_METHODS[payment_gateway(order.id)]
        return {
            "id": order.id, "parent_id": 0, "number": str(order.number), "order_key": f"wc_order_{order.id:x}",
            "created_via": "checkout", "version": "9.4.0", "status": status, "currency": order.currency,
            "date_created": local(order.created_at), "date_created_gmt": gmt(order.created_at),
            "date_modified": local(order.updated_at), "date_modified_gmt": gmt(order.updated_at),
            "discount_total": discount_total, "discount_tax": money(discount_tax),
            "shipping_total": order.shipping, "shipping_tax": "0.00",
            "cart_tax": order.tax, "total": order.total, "total_tax": order.tax,
            "prices_include_tax": order.taxes_included,
            "customer_id": customer.id if customer else 0,
            "customer_ip_address": "", "customer_user_agent": "", "customer_note": "",
            "billing": billing, "shipping": _address(order.ship_to, with_phone=True),
            "payment_method": method, "payment_method_title": method_title,
            "transaction_id": payment_reference(order.id) if paid else "",
            "date_paid": local(paid), "date_paid_gmt": gmt(paid),
            "date_completed": local(completed), "date_completed_gmt": gmt(completed),
            "cart_hash": "", "meta_data": meta,
            "line_items": [self.line(line, amounts, order) for line, amounts in zip(order.lines, lines, strict=True)],
            "tax_lines": self._tax_lines(order),
            "shipping_lines": self._shipping_lines(order),
            "fee_lines": [],
            "coupon_lines": [{"id": order.id * 100 + 3, "code": f"save{order.discount_percent}",
                              "discount": discount_total, "discount_tax": money(discount_tax), "meta_data": []}]
            if order.discount_percent else [],
            "refunds": [{"id": r["id"], "reason": r["reason"], "total": f"-{r['amount']}"} for r in refunds],
            "_links": {"self": [{"href": f"{link}/{order.id}"}], "collection": [{"href": link}]},
        }

    def line(self, line: Line, amounts: LineMoney, order: Order) -> dict[str, Any]:
        variant = self.variants.get(line.variant_id) if line.variant_id else None
        product = self.products[variant.product_id] if variant else None
        variable = product is not None and is_variable(product)
        name = f"{line.title} - {line.variant_title}" if line.variant_title else line.title
        taxed = order.tax_basis_points > 0
        return {
            "id": line.id, "name": name, "product_id": variant.product_id if variant else 0,
            "variation_id": variant.id if variable and variant else 0, "quantity": line.quantity,
            "tax_class": "", "subtotal": amounts.subtotal, "subtotal_tax": amounts.subtotal_tax,
            "total": amounts.total, "total_tax": amounts.total_tax,
            "taxes": [{"id": 1, "total": amounts.total_tax, "subtotal": amounts.subtotal_tax}] if taxed else [],
            "meta_data": [{"id": line.id % 10**7, "key": "pa_option", "value": line.variant_title}]
            if line.variant_title else [],
            "sku": line.sku or "", "price": amounts.price,
            "image": {"id": "", "src": ""}, "parent_name": line.title if variable else None,
        }

    def _tax_lines(self, order: Order) -> list[dict[str, Any]]:
        if not order.tax_basis_points:
            return []
        country = order.ship_to.country if order.ship_to else ""
        return [{"id": order.id * 100 + 1, "rate_code": f"{country}-TAX-1", "rate_id": 1, "label": "Tax",
                 "compound": False, "tax_total": order.tax, "shipping_tax_total": "0.00",
                 "rate_percent": order.tax_basis_points / 100, "meta_data": []}]

    def _shipping_lines(self, order: Order) -> list[dict[str, Any]]:
        if not order.requires_shipping:
            return []  # nothing to send: WooCommerce charges no shipping
        free = order.shipping == "0.00"
        return [{"id": order.id * 100 + 2, "method_title": "Free shipping" if free else "Flat rate",
                 "method_id": "free_shipping" if free else "flat_rate", "instance_id": "1",
                 "total": order.shipping, "total_tax": "0.00", "taxes": [], "meta_data": []}]

    # -- catalog ----------------------------------------------------------------------------

    def product(self, product: Product, stock: dict[int, int]) -> dict[str, Any]:
        variants = product.variants
        first = variants[0]
        variable = is_variable(product)
        prices = [f"{v.price:.2f}" for v in variants]
        price = min(prices, key=Decimal)
        shared = self._stocked(first, product.id, stock) if not variable else {
            "manage_stock": False, "stock_quantity": None, "stock_status": "instock"}
        return {
            "id": product.id, "name": product.title, "slug": product.handle,
            "permalink": f"{self.base_url}/product/{product.handle}/",
            "date_created": local(product.updated_at), "date_created_gmt": gmt(product.updated_at),
            "date_modified": local(product.updated_at), "date_modified_gmt": gmt(product.updated_at),
            "type": "variable" if variable else "simple",
            "status": {"active": "publish", "archived": "private"}.get(product.status, product.status),
            "featured": False, "catalog_visibility": "visible", "description": "", "short_description": "",
            "sku": "" if variable else first.sku, "price": price,
            "regular_price": "" if variable else price, "sale_price": "", "on_sale": False, "purchasable": True,
            "total_sales": 0, "virtual": not first.requires_shipping, "downloadable": False,
            "tax_status": "taxable", "tax_class": "", "backorders": "no",
            "weight": "" if variable else f"{first.weight_grams / 1000:g}",
            "global_unique_id": "" if variable else first.barcode or "",
            "categories": [{"id": zlib.crc32(product.category.encode()) % 1000 + 15, "name": product.category,
                            "slug": product.category.lower().replace(" ", "-")}],
            "attributes": [{"id": 0, "name": "Option", "position": 0, "visible": True, "variation": True,
                            "options": [v.title for v in variants]}] if variable else [],
            "variations": [v.id for v in variants] if variable else [],
            "parent_id": 0, "meta_data": [],
        } | shared

    def variation(self, variant: Variant, stock: dict[int, int]) -> dict[str, Any]:
        price = f"{variant.price:.2f}"
        return {
            "id": variant.id,
            "date_created": local(variant.updated_at), "date_created_gmt": gmt(variant.updated_at),
            "date_modified": local(variant.updated_at), "date_modified_gmt": gmt(variant.updated_at),
            "description": "", "permalink": f"{self.base_url}/product/{variant.product_id}/?option={variant.id}",
            "sku": variant.sku, "price": price, "regular_price": price, "sale_price": "", "on_sale": False,
            "status": "publish", "purchasable": True, "virtual": not variant.requires_shipping,
            "downloadable": False, "tax_status": "taxable", "tax_class": "", "backorders": "no",
            "weight": f"{variant.weight_grams / 1000:g}", "global_unique_id": variant.barcode or "",
            "attributes": [{"id": 0, "name": "Option", "option": variant.title}],
            "menu_order": variant.id % 10, "meta_data": [],
        } | self._stocked(variant, variant.id, stock)

    def variation_as_product(self, variant: Variant, stock: dict[int, int]) -> dict[str, Any]:
        """A variation as `GET products?sku=` lists it, beside products."""
        return self.variation(variant, stock) | {
            "name": f"{variant.product_title} - {variant.title}", "type": "variation",
            "parent_id": variant.product_id}

    def _stocked(self, variant: Variant, own_id: int, stock: dict[int, int]) -> dict[str, Any]:
        count = stock.get(own_id, self.store.on_hand.get(variant.sku, 0))
        return {"manage_stock": True, "stock_quantity": count,
                "stock_status": "instock" if count > 0 else "outofstock"}
