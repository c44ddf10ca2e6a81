"""WooCommerce REST API v3 JSON to and from Clerk's types: pure functions, no I/O.

`client.py` builds every request with the `build_*` functions and reads every answer
with the `parse_*` ones.

Money is read from WooCommerce's decimal strings only; a line's `price` (a float, and
after discounts) is never used. A unit price is the line's `subtotal` (before
discounts) over its quantity, its discount `subtotal - total`. WooCommerce keeps line
amounts without tax even when the shop's prices include it; for such orders
(`prices_include_tax`) the line's taxes are added back, so unit prices, discounts and
shipping are in the same, tax-inclusive terms as the prices the shop shows.

Times are the `*_gmt` fields: UTC without an offset. The site-local ones are ignored.

Risk: WooCommerce has no risk assessment of its own. Clerk reads the order meta entry
`_clerk_risk` (`none`, `low`, `medium`, `high` or `pending`, any case), which a fraud
plugin's rule, a webhook or a person can set; an order without one is `Risk.NONE`.

Write-backs: WooCommerce has no idempotency keys, so Clerk leaves its key where it can
look for it before writing again: refunds carry it as meta `_clerk_idempotency_key`,
notes end with a `Clerk ref: {key}` line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from domain.money import MoneyError, cents, to_money
from domain.orders import Address, ChannelOrder, Customer, Lifecycle, OrderLine, Payment, Risk, normalise_gateway
from integrations.protocols import CatalogItem, ChannelReturn, Payload, Unreadable
from integrations.reading import Reader, read_quantity, return_reason

CHANNEL = "woocommerce"
MAX_PER_PAGE = 100  # WooCommerce refuses larger pages (rest_invalid_param)
RISK_META_KEY = "_clerk_risk"
IDEMPOTENCY_META_KEY = "_clerk_idempotency_key"
NOTE_REF = "Clerk ref: "

# Every status WooCommerce core knows; a plugin's own status is not guessed at (malformed).
STATUS_TO_LIFECYCLE: dict[str, Lifecycle] = {
    "pending": Lifecycle.OPEN,  # awaiting payment
    "processing": Lifecycle.OPEN,  # paid, to be shipped
    "on-hold": Lifecycle.OPEN,  # awaiting confirmation, e.g. of a bank transfer
    "completed": Lifecycle.FULFILLED,
    "refunded": Lifecycle.CLOSED,  # money returned: history, nothing left to ship
    "cancelled": Lifecycle.CANCELLED,
    "failed": Lifecycle.CANCELLED,  # payment failed: nothing to ship or reserve unless it is paid later
    "trash": Lifecycle.CANCELLED,  # deleted in the shop
    "checkout-draft": Lifecycle.CANCELLED,  # a cart in the block checkout, never placed
}

_STAMP = "%Y-%m-%dT%H:%M:%S"
_ONE_SECOND = timedelta(seconds=1)
_FOUR_PLACES = Decimal("0.0001")


# ---------------------------------------------------------------------------- requests


def _utc(moment: datetime) -> datetime:
    """A moment in UTC; a naive one is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _floor(moment: datetime) -> datetime:
    return _utc(moment).replace(microsecond=0)


def gmt(moment: datetime) -> str:
    """A moment as WooCommerce's GMT parameters spell it: UTC, to the second, no offset."""
    return _utc(moment).strftime(_STAMP)


def _changed_since(since: datetime | None) -> dict[str, str]:
    """`modified_after` for records changed at or after `since` (empty for every record).

    WooCommerce's `modified_after` is strict and its times whole seconds, so asking for
    "after one second earlier" includes changes within `since`'s own second.
    """
    if since is None:
        return {}
    return {"modified_after": gmt(_floor(since) - _ONE_SECOND), "dates_are_gmt": "true"}


def build_orders_params(since: datetime | None, page: int, per_page: int = MAX_PER_PAGE) -> dict[str, Any]:
    """Query parameters of `GET orders`: changed at or after `since`, oldest change first."""
    return {"orderby": "modified", "order": "asc", "page": page, "per_page": per_page} | _changed_since(since)


def build_products_params(since: datetime | None, page: int) -> dict[str, Any]:
    """Query parameters of `GET products`: changed at or after `since`, by id."""
    return {"orderby": "id", "order": "asc", "page": page, "per_page": MAX_PER_PAGE} | _changed_since(since)


def build_page_params(page: int) -> dict[str, Any]:
    """Query parameters of a plain list (variations, notes, refunds)."""
    return {"page": page, "per_page": MAX_PER_PAGE}


def build_status_update(status: str) -> Payload:
    """Body of `PUT orders/<id>` moving an order to `status`.

    Raises:
        ValueError: for a status WooCommerce core does not know.
    """
    if status not in STATUS_TO_LIFECYCLE:
        raise ValueError(f"not a WooCommerce order status: {status!r}")
    return {"status": status}


def build_note(note: str, key: str) -> Payload:
    """Body of `POST orders/<id>/notes`: a private note, never mailed to the customer, ending
    with the reference Clerk looks for before writing it again."""
    return {"note": f"{note}\n\n{NOTE_REF}{key}", "customer_note": False}


def build_sku_params(skus: Sequence[str], page: int) -> dict[str, Any]:
    """Query parameters of `GET products` finding products and variations by SKU, up to 100 SKUs
    (WooCommerce splits `sku` at commas, so a SKU holding one cannot be asked for)."""
    return {"sku": ",".join(skus), "orderby": "id", "order": "asc", "page": page, "per_page": MAX_PER_PAGE}


def stock_place(product: Payload) -> tuple[str, int] | None:
    """Where a product or variation found by SKU takes its stock count: the batch endpoint
    (`products/batch`, or its product's `variations/batch`) and its id; None without an id."""
    own = product.get("id")
    parent = product.get("parent_id")
    if not _is_id(own):
        return None
    if product.get("type") == "variation" and _is_id(parent):
        return f"products/{parent}/variations/batch", own
    return "products/batch", own


def shown_stock(product: Payload) -> int | None:
    """The stock count a product or variation shows; None when WooCommerce manages none for it."""
    count = product.get("stock_quantity")
    if product.get("manage_stock") is not True or isinstance(count, bool) or not isinstance(count, int):
        return None
    return count


def build_stock_batch(counts: Sequence[tuple[int, int]]) -> Payload:
    """Body of a `.../batch` request setting (id, count) stock counts, up to 100 of them."""
    return {"update": [{"id": own, "manage_stock": True, "stock_quantity": count} for own, count in counts]}


def stock_batch_errors(body: Any) -> list[str] | None:
    """The items a batch answer refused, as "id: message"; None when it is no batch answer."""
    updated = body.get("update") if isinstance(body, dict) else None
    if not isinstance(updated, list):
        return None
    refused = [item for item in updated if isinstance(item, dict) and item.get("error")]
    return [f"{item.get('id')}: {str(_message(item['error']))[:200]}" for item in refused]


def _message(error: Any) -> Any:
    return error.get("message", "") if isinstance(error, dict) else error


def refund_line_items(order: Payload, lines: Mapping[str, int]) -> list[Payload]:
    """Refund `line_items` for `lines` (SKU to units) of an order as `GET orders/<id>` gave it.

    Each line refunds its share of the line's total after discounts, without tax: the
    refund's `amount` decides the money, these record which goods came back.

    Raises:
        ValueError: when a SKU is not on the order, or more units come back than were sold.
    """
    items = order.get("line_items") if isinstance(order.get("line_items"), list) else []
    by_sku = {item.get("sku"): item for item in items if isinstance(item, dict) and item.get("sku")}
    refund = []
    for sku, units in lines.items():
        item = by_sku.get(sku)
        if item is None or not _is_id(item.get("id")):
            raise ValueError(f"SKU {sku!r} is not on the order")
        sold = item.get("quantity")
        if not isinstance(sold, int) or isinstance(sold, bool) or not 0 < units <= sold:
            raise ValueError(f"cannot refund {units} of {sku!r}")
        share = cents(to_money(item.get("total")) * units / sold)
        refund.append({"id": item["id"], "quantity": units, "refund_total": str(share)})
    return refund


def build_refund(
    amount: Decimal, reason: str, line_items: Sequence[Payload], key: str, api_refund: bool = False
) -> Payload:
    """Body of `POST orders/<id>/refunds`.

    `api_restock` is off: Clerk's stock ledger, not WooCommerce, books returned goods.

    Args:
        api_refund: True lets WooCommerce's payment gateway move the money; Clerk's own
            gateway does that by default, and the refund here only records it.
    """
    return {
        "amount": str(cents(amount)),
        "reason": reason,
        "line_items": list(line_items),
        "api_refund": api_refund,
        "api_restock": False,
        "meta_data": [{"key": IDEMPOTENCY_META_KEY, "value": key}],
    }


# ------------------------------------------------------------------------- answers


def next_page(headers: Mapping[str, str], page: int) -> int | None:
    """The page after `page`: the `Link` header's rel="next" when it names one, else from `X-WP-TotalPages`."""
    found = {name.lower(): value for name, value in headers.items()}
    for link in re.finditer(r"<([^>]*)>([^<]*)", found.get("link", "")):
        rel = re.search(r'rel="?([^";,]*)', link[2])
        if rel and "next" in rel[1].split():
            number = parse_qs(urlsplit(link[1]).query).get("page", [""])[0]
            if number.isdigit() and int(number) > page:
                return int(number)
    total = found.get("x-wp-totalpages", "").strip()
    if total.isdigit() and int(total) > page:
        return page + 1
    return None


def find_refund(refunds: Iterable[Any], key: str) -> Payload | None:
    """The refund carrying Clerk's idempotency `key` in its meta data, if there is one."""
    for refund in refunds:
        if isinstance(refund, dict) and _meta(refund, IDEMPOTENCY_META_KEY) == key:
            return refund
    return None


def find_note(notes: Iterable[Any], key: str) -> Payload | None:
    """The note Clerk wrote with `key`, if there is one."""
    marker = re.compile(re.escape(NOTE_REF + key) + r"(?![\w.-])")
    for note in notes:
        if isinstance(note, dict) and isinstance(note.get("note"), str) and marker.search(note["note"]):
            return note
    return None


def parse_currency(body: Any) -> str:
    """The shop's currency from `GET data/currencies/current`.

    Raises:
        ValueError: when the answer carries no currency code.
    """
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(code, str) or not code:
        raise ValueError("the current currency has no code")
    return code


def modified_at(payload: Any) -> datetime | None:
    """A record's readable `date_modified_gmt` (None when it has none)."""
    return _read_timestamp(payload.get("date_modified_gmt")) if isinstance(payload, dict) else None


def newest_update(payloads: Iterable[Any]) -> datetime | None:
    """The latest readable `date_modified_gmt` among payloads."""
    return max(filter(None, map(modified_at, payloads)), default=None)


# ---------------------------------------------------------------- incremental position


@dataclass(frozen=True, slots=True)
class Position:
    """Where a walk through changed orders stands, so edits between pages lose nothing.

    Page numbers alone would skip an order whenever one read earlier is edited (it moves
    to the end, and everything after it one place up). So each request asks afresh for
    changes at or after `after`, the newest second delivered, and drops the `seen`
    orders already delivered at exactly that second. `page` moves on only when a page
    brought nothing new (more orders share one second than a page holds, or a server
    ignores the filter).
    """

    after: datetime | None = None
    seen: frozenset[str] = frozenset()
    page: int = 1

    @classmethod
    def start(cls, since: datetime | None) -> Position:
        return cls(_floor(since) if since is not None else None)

    def encode(self) -> str:
        return json.dumps({"after": self.after.isoformat() if self.after else None,
                           "seen": sorted(self.seen), "page": self.page}, separators=(",", ":"))

    @classmethod
    def decode(cls, cursor: str) -> Position:
        """Reads a cursor `encode` wrote.

        Raises:
            ValueError: for anything else.
        """
        try:
            content = json.loads(cursor)
            after = datetime.fromisoformat(content["after"]) if content["after"] else None
            return cls(after, frozenset(map(str, content["seen"])), int(content["page"]))
        except (TypeError, KeyError, ValueError) as exc:
            raise ValueError("not a WooCommerce orders cursor") from exc

    def advance(self, payloads: Iterable[Any]) -> tuple[list[Any], Position]:
        """The payloads not delivered before, and the position past them."""
        fresh = []
        for payload in payloads:
            moment = modified_at(payload)
            if moment is not None and self.after is not None and (
                    moment < self.after or (moment == self.after and _key(payload) in self.seen)):
                continue
            fresh.append(payload)
        newest = newest_update(fresh)
        if newest is None:
            return fresh, Position(self.after, self.seen, self.page + 1)
        at_newest = {_key(p) for p in fresh if modified_at(p) == newest}
        seen = self.seen | at_newest if newest == self.after else at_newest
        return fresh, Position(newest, frozenset(seen))


def _key(payload: Any) -> str:
    return str(payload.get("id")) if isinstance(payload, dict) else ""


# --------------------------------------------------------------------------- catalog


def is_variable(product: Any) -> bool:
    """A product whose SKUs live on its variations."""
    return isinstance(product, dict) and product.get("type") == "variable" and _is_id(product.get("id"))


def parse_product(product: Any, currency: str) -> CatalogItem | None:
    """A simple (or other non-variable) product as a catalog item; None without a SKU or price."""
    if not isinstance(product, dict):
        return None
    name = _text(product.get("name"))
    return _catalog_item(product, currency, name or _text(product.get("sku")), name, product,
                         f"products/{product.get('id')}")


def parse_variation(variation: Any, product: Payload, currency: str) -> CatalogItem | None:
    """One variation of a variable product as a catalog item; None without a SKU or price."""
    if not isinstance(variation, dict):
        return None
    product_title = _text(product.get("name"))
    options = [_text(a.get("option")) for a in variation.get("attributes") or [] if isinstance(a, dict)]
    variant_title = ", ".join(option for option in options if option)
    if variant_title:
        title = f"{product_title} — {variant_title}" if product_title else variant_title
    else:
        title = product_title or _text(variation.get("sku"))
    return _catalog_item(variation, currency, title, product_title, product,
                         f"products/{product.get('id')}/variations/{variation.get('id')}")


def _catalog_item(node: Payload, currency: str, title: str, product_title: str, product: Payload,
                  ref: str) -> CatalogItem | None:
    sku = node.get("sku")
    if not isinstance(sku, str) or not sku.strip():
        return None
    price = None
    # `price` is what the shop charges now (a sale price when on sale); `regular_price` the list price.
    for field in ("price", "regular_price"):
        try:
            price = to_money(node.get(field))
            break
        except MoneyError:
            continue
    if price is None:
        return None
    categories = [c for c in product.get("categories") or [] if isinstance(c, dict)]
    return CatalogItem(
        sku=sku,
        title=title,
        price=price,
        currency=currency,
        product_title=product_title,
        barcode=_text(node.get("global_unique_id")) or None,
        category=(_text(categories[0].get("name")) or None) if categories else None,
        channel_ref=ref,
        updated_at=modified_at(node),
    )


# ------------------------------------------------------------------------- one order


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _meta(node: Payload, key: str) -> Any:
    for entry in node.get("meta_data") or []:
        if isinstance(entry, dict) and entry.get("key") == key:
            return entry.get("value")
    return None


def _read_timestamp(value: Any) -> datetime | None:
    """A `*_gmt` timestamp as UTC; one with an offset is honoured. None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return _utc(datetime.fromisoformat(value))
    except ValueError:
        return None


class _Reader(Reader):
    """`Reader` of WooCommerce's spellings: `*_gmt` times, and an empty string for a missing text.

    Amounts are decimal strings, or JSON numbers some servers send instead.
    """

    parse_time = staticmethod(_read_timestamp)

    def text(self, node: Payload, key: str, where: str = "", required: bool = False) -> str | None:
        """A string field, stripped; WooCommerce's empty string means missing."""
        value = super().text(node, key, where, required)
        return value.strip() or None if value is not None else None


def parse_order(payload: Payload, channel: str = CHANNEL) -> ChannelOrder:
    """Maps one `GET orders` payload to a `ChannelOrder`.

    Currency, line count and quantities are kept as given; judging them is the quality
    suite's job.

    Raises:
        Unreadable: reason "malformed" when the payload cannot be read as an order.
    """
    if not isinstance(payload, dict):
        raise Unreadable("malformed", "payload is not an object")
    raw_id = payload.get("id")
    read = _Reader(str(raw_id) if _is_id(raw_id) else None)
    if not _is_id(raw_id):
        read.fail("id is missing" if raw_id is None else "id is not a positive integer")
    number = read.get(payload, "number", (str, int), required=True)
    if not str(number).strip():
        read.fail("number is empty")
    included = read.flag(payload, "prices_include_tax", default=False)
    created = read.timestamp(payload, "date_created_gmt", required=True)
    ship_to = _address(read, payload)
    shipping_lines = read.get(payload, "shipping_lines", list)
    status = read.get(payload, "status", str, required=True)
    return ChannelOrder(
        channel=channel,
        external_id=str(raw_id),
        number=str(number).strip(),
        currency=read.get(payload, "currency", str) or "",
        placed_at=created,
        updated_at=read.timestamp(payload, "date_modified_gmt") or created,
        lifecycle=_lifecycle(read, status),
        lines=tuple(_lines(read, payload, included)),
        total=read.money(payload, "total", required=True),
        shipping=read.money(payload, "shipping_total")
        + (read.money(payload, "shipping_tax") if included else 0),
        tax=read.money(payload, "total_tax"),
        discounts=read.money(payload, "discount_total")
        + (read.money(payload, "discount_tax") if included else 0),
        taxes_included=included,
        # No shipping line and no address: a virtual order. Either one: goods to send.
        requires_shipping=True if shipping_lines is None else bool(shipping_lines) or ship_to is not None,
        ship_to=ship_to,
        customer=_customer(read, payload),
        risk=_risk(read, payload),
        extra={"status": status},
        payment=parse_payment(payload),
    )


def parse_payment(payload: Payload) -> Payment | None:
    """The gateway (`payment_method`, e.g. "stripe", "ppcp-gateway", "bacs") and its `transaction_id`.

    None when the order names no payment method; lenient, as a payment is no reason to quarantine.
    """
    method = payload.get("payment_method")
    gateway = normalise_gateway(method if isinstance(method, str) else None)
    if gateway is None:
        return None
    reference = payload.get("transaction_id")
    return Payment(gateway, reference.strip() or None if isinstance(reference, str) else None)


def _lifecycle(read: _Reader, status: str) -> Lifecycle:
    lifecycle = STATUS_TO_LIFECYCLE.get(status)
    if lifecycle is None:
        read.fail(f"status {status[:40]!r} is not a WooCommerce core status")
    return lifecycle


def _per_unit(amount: Decimal, quantity: Decimal | None) -> Decimal:
    """`amount` over `quantity`: exact when it divides, else to the 4 places Clerk stores."""
    if not quantity:
        return Decimal(0)  # an unreadable or zero quantity: quarantined anyway
    unit = amount / quantity
    return unit if unit * quantity == amount else unit.quantize(_FOUR_PLACES)


def _lines(read: _Reader, payload: Payload, included: bool) -> list[OrderLine]:
    items = read.get(payload, "line_items", list) or []
    lines = []
    for index, item in enumerate(items):
        where = f"line_items[{index}]."
        if not isinstance(item, dict):
            read.fail(f"line_items[{index}] is not an object")
        subtotal = read.money(item, "subtotal", where, required=True)
        total = read.money(item, "total", where) if item.get("total") is not None else subtotal
        if included:
            subtotal += read.money(item, "subtotal_tax", where)
            total += read.money(item, "total_tax", where)
        quantity = read_quantity(item.get("quantity"))
        lines.append(
            OrderLine(
                sku=read.text(item, "sku", where),
                title=read.get(item, "name", str, where) or "",
                quantity=quantity,
                unit_price=_per_unit(subtotal, quantity),
                discount=subtotal - total,
            )
        )
    return lines


def _address(read: _Reader, payload: Payload) -> Address | None:
    node = read.get(payload, "shipping", dict)
    if node is None:
        return None

    def text(key: str) -> str | None:
        return read.text(node, key, "shipping.")

    address = Address(
        name=" ".join(part for part in (text("first_name"), text("last_name")) if part) or None,
        company=text("company"),
        street1=text("address_1"),
        street2=text("address_2"),
        city=text("city"),
        province=text("state"),
        postal_code=text("postcode"),
        country=text("country"),
        phone=text("phone"),
    )
    return None if address == Address() else address


def _customer(read: _Reader, payload: Payload) -> Customer | None:
    customer_id = read.get(payload, "customer_id", int)
    billing = read.get(payload, "billing", dict) or {}
    customer = Customer(
        external_id=str(customer_id) if customer_id else None,  # 0: a guest
        email=read.text(billing, "email", "billing."),
        phone=read.text(billing, "phone", "billing."),
        first_name=read.text(billing, "first_name", "billing."),
        last_name=read.text(billing, "last_name", "billing."),
    )
    return None if customer == Customer() else customer


def _risk(read: _Reader, payload: Payload) -> Risk:
    read.get(payload, "meta_data", list)
    value = _meta(payload, RISK_META_KEY)
    try:
        return Risk(value.strip().lower()) if isinstance(value, str) else Risk.NONE
    except ValueError:
        return Risk.NONE  # a value no rule of ours wrote: no finding


# ------------------------------------------------------------------ return requests (read only)


def build_refunded_orders_params(since: datetime | None, page: int, per_page: int = MAX_PER_PAGE) -> dict[str, Any]:
    """Query parameters of `GET orders` for orders changed at or after `since` (a refund saves its
    order), oldest change first, in every status."""
    return build_orders_params(since, page, per_page) | {"status": "any"}


def has_refunds(order: Any) -> bool:
    """True when an order payload lists refunds (`refunds`: id, reason, total of each)."""
    return isinstance(order, dict) and bool(order.get("refunds")) and _is_id(order.get("id"))


def parse_refund(order: Payload, refund: Any, since: datetime | None, channel: str = CHANNEL) -> ChannelReturn | None:
    """A refund made in WooCommerce as a `ChannelReturn`; None for Clerk's own (its key in the meta data)
    and for one made before `since`.

    Refund lines carry negative quantities (units coming back); each is read as the units returned.
    The reason is free text, read as a code where it names one, else "other", and kept as the note.
    `refunded` is the amount when `refunded_payment` says the gateway moved the money, else 0.

    Raises:
        Unreadable: "malformed", naming the refund, when it cannot be read.
    """
    raw_id = refund.get("id") if isinstance(refund, dict) else None
    read = _Reader(str(raw_id) if _is_id(raw_id) else None)
    if not isinstance(refund, dict):
        read.fail("refund is not an object")
    if not _is_id(raw_id):
        read.fail("id is not a positive integer")
    read.get(refund, "meta_data", list)
    if _meta(refund, IDEMPOTENCY_META_KEY) is not None:
        return None
    created = read.timestamp(refund, "date_created_gmt", required=True)
    if since is not None and created < _utc(since).replace(microsecond=0):
        return None
    lines: dict[str, int] = {}
    for index, item in enumerate(read.get(refund, "line_items", list) or []):
        where = f"line_items[{index}]."
        if not isinstance(item, dict):
            read.fail(f"line_items[{index}] is not an object")
        sku = read.text(item, "sku", where)
        quantity = item.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity == 0:
            read.fail(f"{where}quantity is not a whole number of units")
        if not sku:
            read.fail(f"{where}sku is missing")
        lines[sku] = lines.get(sku, 0) + abs(quantity)
    amount = abs(read.money(refund, "amount", required=True))
    reason = read.text(refund, "reason")
    return ChannelReturn(
        channel=channel, external_id=str(raw_id), order_external_id=str(order.get("id")),
        order_number=str(order.get("number") or order.get("id")), lines=lines, reason=return_reason(reason),
        requested_at=created, refunded=amount if read.flag(refund, "refunded_payment", False) else Decimal(0),
        note=reason, recorded=True,
    )
