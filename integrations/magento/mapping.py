"""Magento 2 REST JSON to and from Clerk's types: pure functions, no I/O.

`client.py` builds every request with the `build_*` functions and reads every answer
with the `parse_*` and `find_*` ones. Magento speaks in two currencies: `base_*`
amounts are in the website's base currency, the plain ones in the currency the customer
paid in (`order_currency_code`); Clerk keeps the latter, as it does on every channel.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from domain.money import CENT
from domain.orders import Address, ChannelOrder, Customer, Lifecycle, OrderLine, Payment, Risk, normalise_gateway
from integrations.protocols import CatalogItem, ChannelReturn, Payload, Unreadable
from integrations.reading import Reader, read_amount, read_quantity, return_reason

CHANNEL = "magento"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"  # how Magento prints and parses times, in UTC
ORDERS_PER_PAGE = 100
PRODUCTS_PER_PAGE = 100

# Where Clerk leaves its idempotency key on a shipment, credit memo or order comment:
# Magento has no idempotency header, so a retry looks for this text before writing again.
_KEY_MARK = "[clerk:{key}]"


class ShapeError(ValueError):
    """An answer that is valid JSON but not the shape Magento documents."""


# ------------------------------------------------------------------ search criteria


@dataclass(frozen=True, slots=True)
class Filter:
    """One `searchCriteria` filter; filters of a group are OR-ed, groups AND-ed."""

    field: str
    value: str
    condition: str = "eq"


def format_timestamp(moment: datetime) -> str:
    """A moment as Magento compares it: UTC, to the second (a naive moment is taken as UTC)."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime(TIMESTAMP_FORMAT)


def build_search(
    groups: Sequence[Sequence[Filter]],
    sort: Sequence[tuple[str, str]],
    page_size: int,
    current_page: int = 1,
) -> dict[str, str]:
    """`searchCriteria[...]` query parameters, spelled in camelCase as the schema does."""
    params: dict[str, str] = {}
    for g, group in enumerate(groups):
        for f, item in enumerate(group):
            prefix = f"searchCriteria[filterGroups][{g}][filters][{f}]"
            params[f"{prefix}[field]"] = item.field
            params[f"{prefix}[value]"] = item.value
            params[f"{prefix}[conditionType]"] = item.condition
    for s, (field, direction) in enumerate(sort):
        params[f"searchCriteria[sortOrders][{s}][field]"] = field
        params[f"searchCriteria[sortOrders][{s}][direction]"] = direction
    params["searchCriteria[pageSize]"] = str(page_size)
    params["searchCriteria[currentPage]"] = str(current_page)
    return params


_BY_CHANGE = (("updated_at", "ASC"), ("entity_id", "ASC"))


def build_orders_search(
    since: datetime | None, after: tuple[datetime, int] | None, page_size: int = ORDERS_PER_PAGE
) -> dict[str, str]:
    """Orders changed at or after `since`, oldest change first, past the `after` key.

    Pages are walked by key, never by `currentPage`: an order edited while we page moves
    to the end, and page numbers would then skip the order that slid into its place.
    `(updated_at, entity_id) > (t, id)` is spelled as two groups Magento can AND:
    `updated_at >= t` and `(updated_at > t OR entity_id > id)`.
    """
    groups: list[list[Filter]] = []
    if after is not None:
        moment, entity_id = after
        stamp = format_timestamp(moment)
        groups = [[Filter("updated_at", stamp, "gteq")],
                  [Filter("updated_at", stamp, "gt"), Filter("entity_id", str(entity_id), "gt")]]
    elif since is not None:
        groups = [[Filter("updated_at", format_timestamp(since), "gteq")]]
    return build_search(groups, _BY_CHANGE, page_size)


def build_products_search(since: datetime | None, page: int, page_size: int = PRODUCTS_PER_PAGE) -> dict[str, str]:
    """Products changed at or after `since` (all when None), page `page` (1-based)."""
    groups = [[Filter("updated_at", format_timestamp(since), "gteq")]] if since else []
    return build_search(groups, _BY_CHANGE, page_size, page)


def build_order_documents_search(order_id: int) -> dict[str, str]:
    """The shipments or credit memos of one order (an order has a handful: one page)."""
    return build_search([[Filter("order_id", str(order_id))]], [("entity_id", "ASC")], 300)


def encode_cursor(moment: datetime, entity_id: int) -> str:
    """An opaque cursor: the change key of the last order handed out."""
    raw = json.dumps([format_timestamp(moment), entity_id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The change key in a cursor from `encode_cursor`.

    Raises:
        ValueError: when the text is not such a cursor.
    """
    try:
        stamp, entity_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        moment = _read_timestamp(stamp)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValueError(f"not a Magento cursor: {cursor!r}") from exc
    if moment is None or not isinstance(entity_id, int):
        raise ValueError(f"not a Magento cursor: {cursor!r}")
    return moment, entity_id


# ------------------------------------------------------------------ answers


@dataclass(frozen=True, slots=True)
class SearchResult:
    """A `*-search-result-interface` answer."""

    items: list[Any]
    total_count: int
    search_criteria: Payload


def parse_search_result(body: Any) -> SearchResult:
    """Reads a search answer; items pass as they are, for `parse_order` to judge.

    Raises:
        ShapeError: when the answer is not a search result.
    """
    if not isinstance(body, dict):
        raise ShapeError("search result is not an object")
    items, total = body.get("items"), body.get("total_count")
    if not isinstance(items, list) or isinstance(total, bool) or not isinstance(total, int):
        raise ShapeError("search result lacks items or total_count")
    criteria = body.get("search_criteria")
    return SearchResult(items, total, criteria if isinstance(criteria, dict) else {})


def change_key(payload: Any) -> tuple[datetime, int] | None:
    """`(updated_at, entity_id)` of an order payload, or None when either is unreadable."""
    if not isinstance(payload, dict):
        return None
    moment = _read_timestamp(payload.get("updated_at"))
    entity_id = payload.get("entity_id")
    if moment is None or isinstance(entity_id, bool) or not isinstance(entity_id, int):
        return None
    return moment, entity_id


def newest_update(payloads: Iterable[Any]) -> datetime | None:
    """The latest readable `updated_at` among payloads."""
    keys = [key[0] for key in map(change_key, payloads) if key is not None]
    return max(keys, default=None)


@dataclass(frozen=True, slots=True)
class StoreView:
    """What Clerk needs of one store view's configuration."""

    code: str
    base_currency: str


def parse_store_views(body: Any) -> list[StoreView]:
    """Reads `/V1/store/storeConfigs`.

    Raises:
        ShapeError: when the answer is not a list of store configurations.
    """
    if not isinstance(body, list):
        raise ShapeError("storeConfigs is not a list")
    views = []
    for entry in body:
        if isinstance(entry, dict) and isinstance(entry.get("code"), str):
            currency = entry.get("base_currency_code")
            views.append(StoreView(entry["code"], currency if isinstance(currency, str) else ""))
    return views


def error_message(body: Any) -> str:
    """Magento's error text with its `%name` / `%1` placeholders filled in."""
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return ""
    message = body["message"]
    parameters = body.get("parameters")
    if isinstance(parameters, list) and parameters and all(isinstance(p, dict) for p in parameters):
        # The schema's spelling of named parameters: a list of one-key objects.
        parameters = {name: value for p in parameters for name, value in p.items()}
    if isinstance(parameters, dict):
        for name, value in parameters.items():
            message = message.replace(f"%{name}", str(value))
    elif isinstance(parameters, list):
        for index, value in enumerate(parameters, start=1):
            message = message.replace(f"%{index}", str(value))
    return message


# ------------------------------------------------------------------ catalog

# Product types that are a thing one can sell by SKU; configurable, bundle and grouped
# products are containers whose SKUs are never what a line ships.
_SELLABLE_TYPES = frozenset({"simple", "virtual", "downloadable", "giftcard"})
_BARCODE_ATTRIBUTES = ("barcode", "ean", "gtin", "upc")


def parse_product(node: Any, currency: str) -> CatalogItem | None:
    """A sellable product as a catalog item; None for containers and unreadable entries.

    `price` is the catalog's, in the base currency (Magento's price scope is global).
    """
    if not isinstance(node, dict) or node.get("type_id", "simple") not in _SELLABLE_TYPES:
        return None
    sku = node.get("sku")
    if not isinstance(sku, str) or not sku.strip():
        return None
    price = read_amount(node.get("price"))
    if price is None:
        return None
    attributes = {a.get("attribute_code"): a.get("value") for a in node.get("custom_attributes") or []
                  if isinstance(a, dict)}
    barcode = next((attributes[c] for c in _BARCODE_ATTRIBUTES if isinstance(attributes.get(c), str)), None)
    name = node.get("name") if isinstance(node.get("name"), str) else sku
    entity_id = node.get("id")
    return CatalogItem(
        sku=sku,
        title=name,
        price=price,
        currency=currency,
        product_title=name,
        barcode=barcode or None,
        channel_ref=str(entity_id) if isinstance(entity_id, int) else None,
        updated_at=_read_timestamp(node.get("updated_at")),
    )


# ------------------------------------------------------------------ one order

# Magento's order states are fixed in its code; statuses are the merchant's labels on
# them. One table decides Clerk's lifecycle and the channel's risk: the row for the exact
# (state, status) if there is one, else the state's row (status None).
# `payment_review` is Magento holding a payment its fraud filters flagged, and `fraud` is
# its "Suspected Fraud" status: both are the channel's own high-risk verdict. `holded` is
# a person's hold in Magento; the order is still open. A fully refunded order is `closed`.
ORDER_STATES: dict[tuple[str, str | None], tuple[Lifecycle, Risk]] = {
    ("new", None): (Lifecycle.OPEN, Risk.NONE),
    ("pending_payment", None): (Lifecycle.OPEN, Risk.NONE),
    ("processing", None): (Lifecycle.OPEN, Risk.NONE),
    ("processing", "fraud"): (Lifecycle.OPEN, Risk.HIGH),
    ("payment_review", None): (Lifecycle.OPEN, Risk.HIGH),
    ("holded", None): (Lifecycle.OPEN, Risk.NONE),
    ("complete", None): (Lifecycle.FULFILLED, Risk.NONE),
    ("closed", None): (Lifecycle.CLOSED, Risk.NONE),
    ("canceled", None): (Lifecycle.CANCELLED, Risk.NONE),
}

_NO_SHIPPING_TYPES = frozenset({"virtual", "downloadable"})


def _read_timestamp(value: Any) -> datetime | None:
    """`YYYY-MM-DD HH:MM:SS` (UTC, as Magento prints it) as an aware datetime; else None."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


class _Reader(Reader):
    """`Reader` of Magento's spellings: `YYYY-MM-DD HH:MM:SS` times in UTC, amounts as JSON numbers."""

    time_form = "a YYYY-MM-DD HH:MM:SS time"
    parse_time = staticmethod(_read_timestamp)


@dataclass(frozen=True, slots=True)
class _Item:
    """A top-level order item and, for a configurable product, its one child."""

    node: Payload
    where: str  # its path, "items[3]."
    child: Payload | None


def _top_level_items(read: _Reader, payload: Payload) -> list[_Item]:
    """Items as Clerk counts lines: children folded into their parents.

    A configurable product arrives as two items: the parent (`configurable`) carrying the
    price, quantity and discount, and its child (`simple`, `parent_item_id` set) carrying
    the SKU actually sold, with a zero price. The line is counted once, from the parent,
    with the child's SKU. A parent with several children (a bundle) keeps its own SKU.
    """
    nodes = read.get(payload, "items", list) or []
    children: dict[int, list[Payload]] = {}
    top: list[tuple[int, Payload]] = []
    for index, node in enumerate(nodes):
        if not isinstance(node, dict):
            read.fail(f"items[{index}] is not an object")
        parent = read.get(node, "parent_item_id", int, f"items[{index}].")
        if parent is None:
            top.append((index, node))
        else:
            children.setdefault(parent, []).append(node)
    parents = {node.get("item_id") for _, node in top}
    # A child whose parent is not in the payload still is a line of its own.
    top += [(index, node) for index, node in enumerate(nodes)
            if node.get("parent_item_id") is not None and node["parent_item_id"] not in parents]
    top.sort(key=lambda pair: pair[0])
    items = []
    for index, node in top:
        kids = children.get(node.get("item_id"), []) if node.get("parent_item_id") is None else []
        items.append(_Item(node, f"items[{index}].", kids[0] if len(kids) == 1 else None))
    return items


def _taxes_included(read: _Reader, items: list[_Item]) -> bool:
    """True when the store's catalog prices include tax.

    Magento has no order field for it. Its items do tell: `original_price` is the catalog
    price as entered, `price` the unit price before tax and `price_incl_tax` after it, so
    a taxed item whose `original_price` is its `price_incl_tax` was priced tax-inclusive.
    An item sold below its catalog price (a special price) tells neither way.
    """
    for item in items:
        node, where = item.node, item.where
        before = read.money(node, "price", where)
        after = read.money(node, "price_incl_tax", where)
        original = read.money(node, "original_price", where)
        if before == after or node.get("original_price") is None:
            continue
        if original in (before, after):
            return original == after
    return False


def _lines(read: _Reader, items: list[_Item], taxes_included: bool) -> list[OrderLine]:
    price_key = "price_incl_tax" if taxes_included else "price"
    lines = []
    for item in items:
        node, where = item.node, item.where
        sold = item.child or node
        sku = read.get(sold, "sku", str, where)
        kind = read.get(sold, "product_type", str, where)
        virtual = read.get(sold, "is_virtual", int, where)
        lines.append(OrderLine(
            sku=sku or None,
            title=read.get(node, "name", str, where) or "",
            quantity=read_quantity(node.get("qty_ordered")),
            unit_price=read.money(node, price_key, where, required=True),
            # Magento keeps an item's discount positive (the order's is negative).
            discount=abs(read.money(node, "discount_amount", where)),
            requires_shipping=kind not in _NO_SHIPPING_TYPES and virtual != 1,
        ))
    return lines


def _address(read: _Reader, node: Payload | None, where: str) -> Address | None:
    if node is None:
        return None

    def text(key: str) -> str | None:
        return read.text(node, key, where)

    street = read.get(node, "street", list, where) or []
    if not all(isinstance(part, str) for part in street):
        read.fail(f"{where}street is not a list of strings")
    name = " ".join(part for part in (text("firstname"), text("lastname")) if part)
    return Address(
        name=name or None,
        company=text("company"),
        street1=street[0] if street else None,
        street2=" ".join(part for part in street[1:] if part) or None,
        city=text("city"),
        province=text("region_code") or text("region"),
        postal_code=text("postcode"),
        country=text("country_id"),
        phone=text("telephone"),
    )


def _ship_to(read: _Reader, payload: Payload) -> Address | None:
    """The address of the first shipping assignment (Magento keeps it only there)."""
    extension = read.get(payload, "extension_attributes", dict) or {}
    assignments = read.get(extension, "shipping_assignments", list, "extension_attributes.") or []
    if not assignments:
        return None
    first = "extension_attributes.shipping_assignments[0]"
    if not isinstance(assignments[0], dict):
        read.fail(f"{first} is not an object")
    shipping = read.get(assignments[0], "shipping", dict, f"{first}.") or {}
    address = read.get(shipping, "address", dict, f"{first}.shipping.")
    return _address(read, address, f"{first}.shipping.address.")


def _customer(read: _Reader, payload: Payload, ship_to: Address | None) -> Customer | None:
    billing = _address(read, read.get(payload, "billing_address", dict), "billing_address.")
    guest = read.get(payload, "customer_is_guest", int) == 1
    customer_id = None if guest else read.get(payload, "customer_id", int)
    email = read.text(payload, "customer_email")
    phone = (billing.phone if billing else None) or (ship_to.phone if ship_to else None)
    first = read.text(payload, "customer_firstname")
    last = read.text(payload, "customer_lastname")
    if customer_id is None and not any((email, phone, first, last)):
        return None
    return Customer(external_id=str(customer_id) if customer_id is not None else None,
                    email=email, phone=phone, first_name=first, last_name=last)


def _requires_shipping(is_virtual: int | None, lines: list[OrderLine]) -> bool:
    """Magento's own `is_virtual` when given; else whether any line ships (an empty order: yes)."""
    if is_virtual is not None:
        return is_virtual != 1
    return not lines or any(line.requires_shipping for line in lines)


def order_state(state: str, status: str | None) -> tuple[Lifecycle, Risk] | None:
    """The ORDER_STATES row for a state and status; None for a state Magento does not have."""
    return ORDER_STATES.get((state, status)) or ORDER_STATES.get((state, None))


def parse_order(payload: Payload, channel: str = CHANNEL) -> ChannelOrder:
    """Maps one `sales-data-order-interface` payload to a `ChannelOrder`.

    The external id is `entity_id` (what the API addresses), the number `increment_id`
    (what the merchant and customer see). Amounts are the order-currency ones; the base
    currency's are kept in `extra` for reference only. Currency, line count and
    quantities are kept as given: judging them is the quality suite's job.

    Raises:
        Unreadable: reason "malformed" when the payload cannot be read as an order.
    """
    if not isinstance(payload, dict):
        raise Unreadable("malformed", "payload is not an object")
    raw_id = payload.get("entity_id")
    read = _Reader(str(raw_id) if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None)
    entity_id = read.get(payload, "entity_id", int, required=True)
    state = read.text(payload, "state", required=True)
    status = read.text(payload, "status")
    lifecycle_risk = order_state(state, status)
    if lifecycle_risk is None:
        read.fail("state is not a Magento order state")
    items = _top_level_items(read, payload)
    taxes_included = _taxes_included(read, items)
    lines = _lines(read, items, taxes_included)
    shipping_key = "shipping_incl_tax" if taxes_included and payload.get("shipping_incl_tax") is not None \
        else "shipping_amount"
    virtual = read.get(payload, "is_virtual", int)
    ship_to = _ship_to(read, payload)
    extra = {"state": state, "status": status or ""}
    base_currency = read.text(payload, "base_currency_code")
    base_total = read_amount(payload.get("base_grand_total"))
    if base_currency and base_total is not None:
        extra |= {"base_currency": base_currency, "base_total": str(base_total)}
    return ChannelOrder(
        channel=channel,
        external_id=str(entity_id),
        number=read.text(payload, "increment_id", required=True),
        currency=read.text(payload, "order_currency_code") or "",
        placed_at=read.timestamp(payload, "created_at", required=True),
        updated_at=read.timestamp(payload, "updated_at", required=True),
        lifecycle=lifecycle_risk[0],
        lines=tuple(lines),
        total=read.money(payload, "grand_total", required=True),
        shipping=read.money(payload, shipping_key),
        tax=read.money(payload, "tax_amount"),
        # Magento stores the order's discount as a negative amount.
        discounts=abs(read.money(payload, "discount_amount")),
        taxes_included=taxes_included,
        requires_shipping=_requires_shipping(virtual, lines),
        ship_to=ship_to,
        customer=_customer(read, payload, ship_to),
        risk=lifecycle_risk[1],
        extra=extra,
        payment=parse_payment(payload.get("payment")),
    )


def parse_payment(node: Any) -> Payment | None:
    """The order's `payment`: its `method` ("stripe_payments", "checkmo", "braintree", ...) and
    `last_trans_id`. Lenient: None when there is no method."""
    if not isinstance(node, dict):
        return None
    method = node.get("method")
    gateway = normalise_gateway(method if isinstance(method, str) else None)
    if gateway is None:
        return None
    reference = node.get("last_trans_id")
    return Payment(gateway, reference.strip() or None if isinstance(reference, str) else None)


# ------------------------------------------------------------------ write-backs


@dataclass(frozen=True, slots=True)
class Track:
    """A parcel's tracking number as Magento records it on a shipment."""

    number: str
    carrier_code: str  # Magento's carrier code: "ups", "usps", "fedex", "dhl", or "custom"
    title: str


def key_mark(key: str) -> str:
    """The text that carries Clerk's idempotency key in a Magento comment."""
    return _KEY_MARK.format(key=key)


def _top_item_ids(order: Payload) -> dict[str, tuple[int, Decimal]]:
    """SKU -> (item id Magento ships and refunds by, quantity ordered), from a readable order.

    For a configurable product that is the parent's id with the child's SKU.
    """
    read = _Reader(None)
    found: dict[str, tuple[int, Decimal]] = {}
    for item in _top_level_items(read, order):
        sku = (item.child or item.node).get("sku")
        item_id = item.node.get("item_id")
        quantity = read_quantity(item.node.get("qty_ordered"))
        if isinstance(sku, str) and isinstance(item_id, int) and quantity is not None:
            found.setdefault(sku, (item_id, quantity))
    return found


def resolve_items(order: Payload, wanted: Mapping[str, int]) -> list[tuple[int, int]]:
    """`(order_item_id, qty)` pairs for SKU quantities on one order.

    Raises:
        ValueError: naming a SKU the order does not have.
    """
    known = _top_item_ids(order)
    missing = sorted(set(wanted) - set(known))
    if missing:
        raise ValueError(f"order {order.get('entity_id')} has no line with SKU {', '.join(missing)}")
    return [(known[sku][0], quantity) for sku, quantity in wanted.items()]


def every_item(order: Payload, quantity: int | None = None) -> list[tuple[int, int]]:
    """Every top-level item of an order, at `quantity` each (its ordered quantity when None)."""
    return [(item_id, int(ordered) if quantity is None else quantity)
            for item_id, ordered in _top_item_ids(order).values()]


def refund_value(order: Payload, items: Sequence[tuple[int, int]]) -> Decimal:
    """What a credit memo for these items credits before adjustments, in the order's currency.

    Per item, as Magento totals it: row total + tax - discount + the tax hidden in a
    tax-inclusive discount, pro rata to the quantity refunded, rounded to the cent.
    """
    by_id = {node.get("item_id"): node for node in order.get("items") or [] if isinstance(node, dict)}
    total = Decimal(0)
    for item_id, quantity in items:
        node = by_id.get(item_id, {})
        ordered = read_quantity(node.get("qty_ordered"))
        if not quantity or not ordered:
            continue
        row = sum(((read_amount(node.get(key)) or Decimal(0)) * sign for key, sign in (
            ("row_total", 1), ("tax_amount", 1), ("discount_amount", -1),
            ("discount_tax_compensation_amount", 1))), Decimal(0))
        total += (row * quantity / ordered).quantize(CENT, rounding=ROUND_HALF_UP)
    return total


def build_shipment(items: Sequence[tuple[int, int]], tracks: Sequence[Track], key: str) -> Payload:
    """The body of `POST /V1/order/{orderId}/ship`; no items ships everything left."""
    return {
        "items": [{"order_item_id": item_id, "qty": quantity} for item_id, quantity in items],
        "notify": False,
        "appendComment": True,
        "comment": {"comment": f"Shipped by Clerk {key_mark(key)}", "is_visible_on_front": 0},
        "tracks": [{"track_number": t.number, "title": t.title, "carrier_code": t.carrier_code} for t in tracks],
        "arguments": {"extension_attributes": {}},
    }


def build_refund(items: Sequence[tuple[int, int]], adjustment: Decimal, key: str) -> Payload:
    """The body of `POST /V1/order/{orderId}/refund` (an offline credit memo).

    Shipping is never refunded implicitly (Magento would refund it all on the first
    credit memo); `adjustment` brings the credit memo to the amount Clerk decided.
    """
    return {
        "items": [{"order_item_id": item_id, "qty": quantity} for item_id, quantity in items],
        "notify": False,
        "appendComment": True,
        "comment": {"comment": f"Refunded by Clerk {key_mark(key)}", "is_visible_on_front": 0},
        "arguments": {
            "shipping_amount": 0,
            "adjustment_positive": float(max(adjustment, Decimal(0))),
            "adjustment_negative": float(max(-adjustment, Decimal(0))),
            "extension_attributes": {"return_to_stock_items": []},
        },
    }


def build_comment(order_id: int, text: str, key: str) -> Payload:
    """The body of `POST /V1/orders/{id}/comments`: a note for the merchant, not the customer."""
    return {"statusHistory": {
        "comment": f"{text} {key_mark(key)}",
        "is_customer_notified": 0,
        "is_visible_on_front": 0,
        "parent_id": order_id,
    }}


def skus_of(products: Iterable[Any], skus: Collection[str]) -> list[str]:
    """The SKUs among `skus` that a product search found."""
    return [p["sku"] for p in products if isinstance(p, dict) and p.get("sku") in skus]


def source_quantities(items: Iterable[Any]) -> dict[str, int]:
    """Quantities by SKU from a source-items search. Magento prints them as decimals; one that
    is not whole (never Clerk's) is rounded up, so it still reads as a count changed there.

    Raises:
        ShapeError: for a source item without a SKU or a quantity.
    """
    found = {}
    for item in items:
        sku = item.get("sku") if isinstance(item, dict) else None
        quantity = item.get("quantity") if isinstance(item, dict) else None
        if not isinstance(sku, str) or isinstance(quantity, bool) or not isinstance(quantity, int | float):
            raise ShapeError("a source item has no sku or quantity")
        found[sku] = math.ceil(quantity)
    return found


def build_stock(levels: Mapping[str, int], source_code: str) -> Payload:
    """The body of `POST /V1/inventory/source-items`: absolute quantities, in stock when above 0."""
    return {"sourceItems": [
        {"sku": sku, "source_code": source_code, "quantity": quantity, "status": 1 if quantity > 0 else 0}
        for sku, quantity in levels.items()
    ]}


def _carries(comments: Any, key: str) -> bool:
    mark = key_mark(key)
    return isinstance(comments, list) and any(
        isinstance(c, dict) and isinstance(c.get("comment"), str) and mark in c["comment"] for c in comments)


def find_document(documents: Iterable[Any], key: str) -> int | None:
    """The id of the shipment or credit memo whose comments carry `key`, if one does."""
    for document in documents:
        if isinstance(document, dict) and _carries(document.get("comments"), key):
            entity_id = document.get("entity_id")
            if isinstance(entity_id, int):
                return entity_id
    return None


def find_tracked_shipment(shipments: Iterable[Any], numbers: Iterable[str]) -> int | None:
    """The id of a shipment already carrying one of these tracking numbers."""
    wanted = set(numbers)
    for shipment in shipments:
        if not isinstance(shipment, dict) or not isinstance(shipment.get("entity_id"), int):
            continue
        tracks = shipment.get("tracks") or []
        if any(isinstance(t, dict) and t.get("track_number") in wanted for t in tracks):
            return shipment["entity_id"]
    return None


def has_comment(comments: Iterable[Any], key: str) -> bool:
    """True when an order's status history already carries `key`."""
    return _carries(list(comments), key)


# ------------------------------------------------------------------ return requests (read only)

CREDITMEMOS_PER_PAGE = 100
_BY_CREATION = (("created_at", "ASC"), ("entity_id", "ASC"))


def build_creditmemos_search(since: datetime | None, after: tuple[datetime, int] | None,
                             page_size: int = CREDITMEMOS_PER_PAGE) -> dict[str, str]:
    """Credit memos created at or after `since`, oldest first, past the `after` key
    `(created_at, entity_id)`: walked by key, as orders are (see `build_orders_search`)."""
    groups: list[list[Filter]] = []
    if after is not None:
        stamp = format_timestamp(after[0])
        groups = [[Filter("created_at", stamp, "gteq")],
                  [Filter("created_at", stamp, "gt"), Filter("entity_id", str(after[1]), "gt")]]
    elif since is not None:
        groups = [[Filter("created_at", format_timestamp(since), "gteq")]]
    return build_search(groups, _BY_CREATION, page_size)


def build_orders_by_id_search(entity_ids: Collection[int]) -> dict[str, str]:
    """The orders with these `entity_id`s (one page)."""
    ids = sorted(set(entity_ids))
    return build_search([[Filter("entity_id", ",".join(map(str, ids)), "in")]], [("entity_id", "ASC")],
                        max(1, len(ids)))


def creation_key(memo: Any) -> tuple[datetime, int] | None:
    """`(created_at, entity_id)` of a credit memo, or None when either is unreadable."""
    if not isinstance(memo, dict):
        return None
    moment = _read_timestamp(memo.get("created_at"))
    memo_id = memo.get("entity_id")
    if moment is None or isinstance(memo_id, bool) or not isinstance(memo_id, int):
        return None
    return moment, memo_id


def memo_order_id(memo: Any) -> int | None:
    order_id = memo.get("order_id") if isinstance(memo, dict) else None
    return order_id if isinstance(order_id, int) and not isinstance(order_id, bool) else None


def is_clerks(memo: Any) -> bool:
    """True for a credit memo Clerk made (its key mark in a comment)."""
    comments = memo.get("comments") if isinstance(memo, dict) else None
    return isinstance(comments, list) and any(
        isinstance(c, dict) and isinstance(c.get("comment"), str) and "[clerk:" in c["comment"] for c in comments)


def parse_creditmemo(memo: Any, order_numbers: Mapping[int, str], channel: str = CHANNEL) -> ChannelReturn | None:
    """A credit memo made in Magento (not by Clerk: None for those) as a `ChannelReturn`.

    Lines are its items' `qty` by `sku` (items with nothing credited are skipped). Magento keeps no
    reason on a credit memo: its comments are the note, read as a code where they name one, else
    "other". `refunded` is the grand total when the memo was refunded online (it carries the
    gateway's `transaction_id`), 0 for an offline one (money moved outside Magento, if at all).

    Raises:
        Unreadable: "malformed", naming the credit memo, when it cannot be read.
    """
    raw_id = memo.get("entity_id") if isinstance(memo, dict) else None
    read = _Reader(str(raw_id) if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None)
    if not isinstance(memo, dict):
        read.fail("credit memo is not an object")
    memo_id = read.get(memo, "entity_id", int, required=True)
    if is_clerks(memo):
        return None
    order_id = read.get(memo, "order_id", int, required=True)
    created = read.timestamp(memo, "created_at", required=True)
    lines: dict[str, int] = {}
    for index, item in enumerate(read.get(memo, "items", list, required=True)):
        where = f"items[{index}]."
        if not isinstance(item, dict):
            read.fail(f"items[{index}] is not an object")
        quantity = read_quantity(item.get("qty"))
        if quantity is None or quantity < 0 or quantity != quantity.to_integral_value():
            read.fail(f"{where}qty is not a whole number of units")
        if not quantity:
            continue
        sku = read.text(item, "sku", where)
        if not sku or not sku.strip():
            read.fail(f"{where}sku is missing")
        lines[sku] = lines.get(sku, 0) + int(quantity)
    comments = [c["comment"].strip() for c in read.get(memo, "comments", list) or []
                if isinstance(c, dict) and isinstance(c.get("comment"), str) and c["comment"].strip()]
    note = "\n".join(comments) or None
    online = isinstance(memo.get("transaction_id"), str) and bool(memo["transaction_id"].strip())
    return ChannelReturn(
        channel=channel, external_id=str(memo_id), order_external_id=str(order_id),
        order_number=order_numbers.get(order_id, str(order_id)), lines=lines, reason=return_reason(note),
        requested_at=created, refunded=read.money(memo, "grand_total", required=True) if online else Decimal(0),
        note=note, recorded=True,
    )
