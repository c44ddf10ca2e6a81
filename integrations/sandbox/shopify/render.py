"""The seeded store in Shopify's shapes: gids, MoneyBags, enums and lazy field views.

A view computes a field only when a query selects it, so a bulk export of 100k orders
renders just what its query asks for. graphql-core's default resolver reads views like
dicts and calls connection fields with their arguments.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from graphql import GraphQLError

from domain.orders import Lifecycle, Risk
from integrations.sandbox.store import Address, Customer, Line, Order, Store, Variant

MAX_PAGE_SIZE = 250
SHOP_ID = "gid://shopify/Shop/1"
T = TypeVar("T")

_DECIMAL = re.compile(r"-?\d+\.\d+")
_AMOUNTS: dict[str, str] = {}
_RECOMMENDATION = {Risk.HIGH: "CANCEL", Risk.MEDIUM: "INVESTIGATE", Risk.PENDING: "NONE"}


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def parse_gid(value: str, kind: str) -> int | None:
    """The number in `gid://shopify/{kind}/{n}`, or None when it names something else.

    Raises:
        GraphQLError: when the value is not a global id at all, as Shopify does.
    """
    match = re.fullmatch(r"gid://shopify/(\w+)/(\d+)", value or "")
    if not match:
        raise GraphQLError(f"Invalid global id '{value}'")
    return int(match[2]) if match[1] == kind else None


def timestamp(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC to the second, as Shopify prints DateTime ("2026-10-01T12:00:00Z")."""
    if moment is None:
        return None
    if moment.utcoffset():
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="seconds")[:19] + "Z"


def amount(text: str) -> str:
    """A store amount the way Shopify's Decimal prints it ("12.50" -> "12.5", "3.00" -> "3.0").

    Anything that is not a decimal number (a `malformed` order's amount) passes unchanged.
    """
    shown = _AMOUNTS.get(text)
    if shown is None:
        shown = text
        if _DECIMAL.fullmatch(text):
            whole, fraction = text.split(".")
            shown = f"{whole}.{fraction.rstrip('0') or '0'}"
        if len(_AMOUNTS) < 100_000:
            _AMOUNTS[text] = shown
    return shown


def money_bag(value: str, currency: str, presentment: tuple[str, str] | None = None) -> dict[str, Any]:
    """A MoneyBag of a shop amount; `presentment` is (amount, currency) when the buyer paid in another."""
    money = {"amount": amount(value), "currencyCode": currency}
    shown = money if presentment is None else {"amount": amount(presentment[0]), "currencyCode": presentment[1]}
    return {"shopMoney": money, "presentmentMoney": shown}


def encode_cursor(value: Any, last_id: int) -> str:
    """An opaque cursor holding the sort key's value and the id, as Shopify's do."""
    raw = json.dumps({"last_id": last_id, "last_value": value}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[Any, int]:
    """The `(last_value, last_id)` in a cursor.

    Raises:
        GraphQLError: when the cursor is not one of ours.
    """
    try:
        content = json.loads(base64.b64decode(cursor, validate=True))
        return content["last_value"], int(content["last_id"])
    except (ValueError, TypeError, KeyError) as exc:
        raise GraphQLError("Invalid cursor for current pagination.") from exc


def check_page_size(first: int | None) -> int:
    if first is None:
        raise GraphQLError("you must provide one of first or last")
    if not 0 <= first <= MAX_PAGE_SIZE:
        raise GraphQLError(f"The 'first' argument must be between 0 and {MAX_PAGE_SIZE}.")
    return first


def connection(nodes: list[Any], cursors: list[str], has_next: bool, has_previous: bool) -> dict[str, Any]:
    return {
        "nodes": nodes,
        "edges": [{"cursor": c, "node": n} for c, n in zip(cursors, nodes, strict=True)],
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


def paged(items: Sequence[T], key: Callable[[T], int], render: Callable[[T], Any], first: int | None,
          after: str | None) -> dict[str, Any]:
    """The page of `items` after the cursor `after`, `first` long, as Shopify pages a connection.

    Cursors carry each item's `key`, a number unique among `items`.
    """
    size = check_page_size(first)
    start = 0
    if after is not None:
        _, last_id = decode_cursor(after)
        start = next((i + 1 for i, item in enumerate(items) if key(item) == last_id), None)
        if start is None:
            raise GraphQLError("Invalid cursor for current pagination.")
    page = items[start:start + size]
    return connection([render(item) for item in page], [encode_cursor(key(item), key(item)) for item in page],
                      start + size < len(items), start > 0)


class View(Mapping[str, Any]):
    """One object's fields, each computed from the store only when read."""

    __slots__ = ("fields", "source")

    def __init__(self, source: Any, fields: Mapping[str, Callable[[Any], Any]]):
        self.source = source
        self.fields = fields

    def __getitem__(self, name: str) -> Any:
        return self.fields[name](self.source)

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)


class LineItems:
    """An order's `lineItems` connection: paged for queries, whole for bulk exports."""

    __slots__ = ("order", "renderer")

    def __init__(self, order: Order, renderer: Renderer):
        self.order = order
        self.renderer = renderer

    def __call__(self, _info: Any, first: int | None = None, after: str | None = None,
                 reverse: bool | None = False) -> dict[str, Any]:
        lines = self.order.lines[::-1] if reverse else self.order.lines
        return paged(lines, lambda line: line.id, lambda line: self.renderer.line(line, self.order), first, after)

    def all(self) -> list[View]:
        return [self.renderer.line(line, self.order) for line in self.order.lines]


def _fulfillment(order: Order) -> str:
    return "FULFILLED" if order.lifecycle in (Lifecycle.FULFILLED, Lifecycle.CLOSED) else "UNFULFILLED"


def _address(address: Address | None) -> dict[str, Any] | None:
    if address is None:
        return None
    return {
        "name": address.name, "firstName": address.first_name, "lastName": address.last_name,
        "company": address.company, "address1": address.street1, "address2": address.street2,
        "city": address.city, "province": address.province, "provinceCode": address.province_code,
        "zip": address.postal_code, "countryCodeV2": address.country, "phone": address.phone,
    }


def _customer(customer: Customer | None) -> dict[str, Any] | None:
    if customer is None:
        return None
    return {
        "id": gid("Customer", customer.id), "firstName": customer.first_name, "lastName": customer.last_name,
        "defaultEmailAddress": {"emailAddress": customer.email} if customer.email else None,
        "defaultPhoneNumber": {"phoneNumber": customer.phone} if customer.phone else None,
    }


def _risk(order: Order) -> dict[str, Any]:
    level = order.risk.value.upper()
    return {"recommendation": _RECOMMENDATION.get(order.risk, "ACCEPT"), "assessments": [{"riskLevel": level}]}


class Renderer:
    """Turns store objects into views of Shopify's Admin API types."""

    def __init__(self, store: Store):
        self.store = store
        self.variants = {v.id: v for v in store.variants}
        self.products = {p.id: p for p in store.products}
        currency = store.currency
        self.order_fields: dict[str, Callable[[Order], Any]] = {
            "id": lambda o: gid("Order", o.id),
            "legacyResourceId": lambda o: str(o.id),
            "name": lambda o: f"#{o.number}",
            "createdAt": lambda o: timestamp(o.created_at),
            "updatedAt": lambda o: timestamp(o.updated_at),
            "processedAt": lambda o: timestamp(o.processed_at),
            "cancelledAt": lambda o: timestamp(o.cancelled_at),
            "closed": lambda o: o.closed_at is not None,
            "closedAt": lambda o: timestamp(o.closed_at),
            "displayFulfillmentStatus": _fulfillment,
            "displayFinancialStatus": lambda o: "REFUNDED" if o.cancelled_at else "PAID",
            "currencyCode": lambda o: o.currency,
            "taxesIncluded": lambda o: o.taxes_included,
            "requiresShipping": lambda o: o.requires_shipping,
            "subtotalPriceSet": lambda o: money_bag(o.subtotal, o.currency),
            "totalPriceSet": lambda o: money_bag(o.total, o.currency),
            "totalShippingPriceSet": lambda o: money_bag(o.shipping, o.currency),
            "totalTaxSet": lambda o: money_bag(o.tax, o.currency),
            "totalDiscountsSet": lambda o: money_bag(o.discounts, o.currency),
            "email": lambda o: o.email,
            "phone": lambda o: o.phone,
            "note": lambda o: None,
            "tags": lambda o: [],
            "customer": lambda o: _customer(o.customer),
            "shippingAddress": lambda o: _address(o.ship_to),
            "risk": _risk,
            "lineItems": lambda o: LineItems(o, self),
        }
        self.line_fields: dict[str, Callable[[tuple[Line, Order]], Any]] = {
            "id": lambda lo: gid("LineItem", lo[0].id),
            "sku": lambda lo: lo[0].sku,
            "title": lambda lo: lo[0].title,
            "name": lambda lo: f"{lo[0].title} - {lo[0].variant_title}" if lo[0].variant_title else lo[0].title,
            "quantity": lambda lo: lo[0].quantity,
            "currentQuantity": lambda lo: 0 if lo[1].cancelled_at else lo[0].quantity,
            "requiresShipping": lambda lo: lo[0].requires_shipping,
            "originalUnitPriceSet": lambda lo: money_bag(lo[0].unit_price, lo[1].currency),
            "totalDiscountSet": lambda lo: money_bag(lo[0].discount, lo[1].currency),
            "variant": lambda lo: self.variant(self.variants[lo[0].variant_id]) if lo[0].variant_id else None,
        }
        self.variant_fields: dict[str, Callable[[Variant], Any]] = {
            "id": lambda v: gid("ProductVariant", v.id),
            "sku": lambda v: v.sku,
            "title": lambda v: v.title,
            "displayName": lambda v: f"{v.product_title} - {v.title}",
            "price": lambda v: amount(str(v.price)),
            "barcode": lambda v: v.barcode,
            "updatedAt": lambda v: timestamp(v.updated_at),
            "product": lambda v: self.product(v.product_id),
        }
        self.shop = {"id": SHOP_ID, "name": "Clerk Sandbox", "currencyCode": currency}

    def order(self, order: Order) -> View:
        return View(order, self.order_fields)

    def line(self, line: Line, order: Order) -> View:
        return View((line, order), self.line_fields)

    def variant(self, variant: Variant) -> View:
        return View(variant, self.variant_fields)

    def product(self, product_id: int) -> dict[str, Any]:
        product = self.products[product_id]
        return {
            "id": gid("Product", product.id), "title": product.title, "handle": product.handle,
            "productType": product.category, "status": product.status.upper(),
            "updatedAt": timestamp(product.updated_at),
        }
