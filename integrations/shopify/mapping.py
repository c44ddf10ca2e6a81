"""Shopify GraphQL Admin JSON to and from Clerk's types: pure functions, no I/O.

`client.py` builds requests with the `build_*` functions and reads every response with
the `parse_*` ones. Orders arrive in one normalised shape whether they came from a page
of `orders` or a bulk export: the order node with `"lineItems": {"nodes": [...]}`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from graphql import parse as parse_document
from graphql.language import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
)

from domain.money import MoneyError, to_money
from domain.orders import Address, ChannelOrder, Customer, Lifecycle, OrderLine, Payment, Risk, normalise_gateway
from integrations.protocols import (
    CatalogItem,
    ChannelReturn,
    ExportStatus,
    Payload,
    Tracking,
    Unreadable,
    UpstreamError,
)
from integrations.reading import Reader, read_quantity, return_reason

CHANNEL = "shopify"
T = TypeVar("T")


class ShapeError(ValueError):
    """A response that is valid JSON but not the shape the query asked for."""


# ---------------------------------------------------------------------------- requests


def build_graphql_request(document: str, variables: Mapping[str, Any] | None = None) -> Payload:
    """The JSON body of one GraphQL Admin request."""
    return {"query": document, "variables": dict(variables or {})}


def build_updated_since_query(since: datetime | None) -> str:
    """Shopify search syntax for records updated at or after `since` ("" for every record).

    Seconds are floored, so an order updated within the same second is never missed.
    """
    if since is None:
        return ""
    moment = since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
    return f"updated_at:>='{moment.strftime('%Y-%m-%dT%H:%M:%SZ')}'"


def build_orders_variables(since: datetime | None, cursor: str | None, first: int) -> Payload:
    """Variables for ORDERS_PAGE."""
    return {"first": first, "after": cursor, "query": build_updated_since_query(since)}


def is_api_version(version: str) -> bool:
    """True for a name Shopify gives API versions: `YYYY-01|04|07|10` or `unstable`."""
    return version == "unstable" or re.fullmatch(r"\d{4}-(01|04|07|10)", version) is not None


# ------------------------------------------------------------------- query cost (static)

_MUTATION_COST = 10  # Shopify's documented cost of a mutation's root field


@lru_cache(maxsize=64)
def _parsed(document: str) -> Any:
    return parse_document(document)


def requested_cost(document: str, variables: Mapping[str, Any] | None = None) -> int:
    """The requested cost of a document as Shopify calculates it, from the document alone.

    Objects cost 1, scalars 0, a mutation's root field 10, and a connection (a field with
    `first` or `last`) 2 + size x the cost of one node; `pageInfo` is counted once.
    Unions and interfaces are summed rather than maxed, which only overestimates.
    """
    tree = _parsed(document)
    fragments = {d.name.value: d for d in tree.definitions if isinstance(d, FragmentDefinitionNode)}
    total = 0
    for definition in tree.definitions:
        if isinstance(definition, OperationDefinitionNode):
            root = _MUTATION_COST if definition.operation == OperationType.MUTATION else None
            total += _selection_cost(definition.selection_set, variables or {}, fragments, root)
    return total


def _selection_cost(
    selection_set: SelectionSetNode | None,
    variables: Mapping[str, Any],
    fragments: Mapping[str, FragmentDefinitionNode],
    field_cost: int | None = None,
) -> int:
    if selection_set is None:
        return 0
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            total += _field_cost(selection, variables, fragments, field_cost)
        elif isinstance(selection, InlineFragmentNode):
            total += _selection_cost(selection.selection_set, variables, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments[selection.name.value]
            total += _selection_cost(fragment.selection_set, variables, fragments)
    return total


def _field_cost(
    field: FieldNode,
    variables: Mapping[str, Any],
    fragments: Mapping[str, FragmentDefinitionNode],
    object_cost: int | None,
) -> int:
    if field.selection_set is None:
        return 0
    size = _page_size(field, variables)
    if size is None:
        own = 1 if object_cost is None else object_cost
        return own + _selection_cost(field.selection_set, variables, fragments)
    node_cost = once = 0
    for selection in field.selection_set.selections:
        if not isinstance(selection, FieldNode):
            continue
        if selection.name.value == "pageInfo":
            once += _field_cost(selection, variables, fragments, None)
        elif selection.name.value == "edges":
            for inner in (selection.selection_set.selections if selection.selection_set else ()):
                if isinstance(inner, FieldNode):
                    node_cost += _field_cost(inner, variables, fragments, None)
        else:
            node_cost += _field_cost(selection, variables, fragments, None)
    return 2 + size * node_cost + once


def _page_size(field: FieldNode, variables: Mapping[str, Any]) -> int | None:
    for argument in field.arguments or ():
        if argument.name.value not in ("first", "last"):
            continue
        value = argument.value
        if isinstance(value, IntValueNode):
            return int(value.value)
        if isinstance(value, VariableNode):
            given = variables.get(value.name.value)
            if isinstance(given, int) and not isinstance(given, bool):
                return given
    return None


# ------------------------------------------------------------------- response envelope


@dataclass(frozen=True, slots=True)
class ThrottleStatus:
    """The cost bucket as Shopify reported it."""

    maximum: float
    available: float
    restore_rate: float


@dataclass(frozen=True, slots=True)
class QueryCost:
    """`extensions.cost` of one response."""

    requested: float | None
    actual: float | None
    throttle: ThrottleStatus | None


@dataclass(frozen=True, slots=True)
class GraphQLError:
    """One entry of `errors`: its message and `extensions.code` when given."""

    message: str
    code: str | None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def parse_query_cost(body: Any) -> QueryCost | None:
    """`extensions.cost` of a response body, or None when it carries none."""
    extensions = body.get("extensions") if isinstance(body, dict) else None
    cost = extensions.get("cost") if isinstance(extensions, dict) else None
    if not isinstance(cost, dict):
        return None
    raw = cost.get("throttleStatus")
    throttle = None
    if isinstance(raw, dict):
        maximum = _number(raw.get("maximumAvailable"))
        available = _number(raw.get("currentlyAvailable"))
        rate = _number(raw.get("restoreRate"))
        if maximum is not None and available is not None and rate is not None and rate > 0:
            throttle = ThrottleStatus(maximum, available, rate)
    return QueryCost(_number(cost.get("requestedQueryCost")), _number(cost.get("actualQueryCost")), throttle)


def parse_errors(body: Any) -> list[GraphQLError]:
    """Top-level GraphQL `errors` (Shopify sometimes sends a bare string there)."""
    if not isinstance(body, dict):
        return []
    raw = body.get("errors")
    if raw is None:
        return []
    if isinstance(raw, str):
        return [GraphQLError(raw, None)]
    if not isinstance(raw, list):
        return [GraphQLError(str(raw), None)]
    errors = []
    for entry in raw:
        if isinstance(entry, dict):
            extensions = entry.get("extensions")
            code = extensions.get("code") if isinstance(extensions, dict) else None
            message = str(entry.get("message", ""))
            errors.append(GraphQLError(message, code if isinstance(code, str) else None))
        else:
            errors.append(GraphQLError(str(entry), None))
    return errors


def is_throttled(errors: Iterable[GraphQLError]) -> bool:
    """True when Shopify refused the query for want of cost points."""
    return any(e.code == "THROTTLED" or e.message.strip().lower() == "throttled" for e in errors)


def parse_data(body: Any) -> Payload:
    """`data` of a successful response."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise ShapeError("response has no data")
    return data


# ----------------------------------------------------------------------- orders pages


@dataclass(frozen=True, slots=True)
class OrdersPage:
    """One page of ORDERS_PAGE, orders normalised.

    `unfinished` pairs the index (in `orders`) of each order with more lines than the
    page carried with the cursor to continue its lines from.
    """

    orders: list[Payload]
    unfinished: list[tuple[int, str]]
    end_cursor: str | None
    has_next: bool


@dataclass(frozen=True, slots=True)
class LinesPage:
    """One page of ORDER_LINES_PAGE."""

    lines: list[Any]
    end_cursor: str | None
    has_next: bool


def _connection(container: Any, key: str) -> tuple[list[Any], str | None, bool]:
    connection = container.get(key) if isinstance(container, dict) else None
    if not isinstance(connection, dict):
        raise ShapeError(f"{key} is missing")
    nodes = connection.get("nodes")
    info = connection.get("pageInfo")
    if not isinstance(nodes, list) or not isinstance(info, dict):
        raise ShapeError(f"{key} is not a connection")
    has_next = info.get("hasNextPage") is True
    cursor = info.get("endCursor")
    if has_next and not isinstance(cursor, str):
        raise ShapeError(f"{key} has a next page but no cursor")
    return nodes, cursor if isinstance(cursor, str) else None, has_next


def parse_orders_page(data: Payload) -> OrdersPage:
    """Reads ORDERS_PAGE data; an order whose own fields are odd passes as is for `parse_order`.

    Raises:
        ShapeError: when the page itself is not there.
    """
    nodes, cursor, has_next = _connection(data, "orders")
    orders: list[Payload] = []
    unfinished: list[tuple[int, str]] = []
    for node in nodes:
        lines = node.get("lineItems") if isinstance(node, dict) else None
        if isinstance(lines, dict) and isinstance(lines.get("nodes"), list):
            info = lines.get("pageInfo")
            more = isinstance(info, dict) and info.get("hasNextPage") is True
            after = info.get("endCursor") if isinstance(info, dict) else None
            node = {**node, "lineItems": {"nodes": list(lines["nodes"])}}
            if more and isinstance(after, str) and isinstance(node.get("id"), str):
                unfinished.append((len(orders), after))
        orders.append(node)
    return OrdersPage(orders, unfinished, cursor, has_next)


def parse_order_lines_page(data: Payload) -> LinesPage | None:
    """Reads ORDER_LINES_PAGE data; None when the order is gone (deleted meanwhile).

    Raises:
        ShapeError: when the order's lines are not there.
    """
    order = data.get("order")
    if order is None:
        return None
    if not isinstance(order, dict):
        raise ShapeError("order is not an object")
    lines, cursor, has_next = _connection(order, "lineItems")
    return LinesPage(lines, cursor, has_next)


def newest_update(payloads: Iterable[Any]) -> datetime | None:
    """The latest readable `updatedAt` among payloads (unreadable ones are skipped)."""
    newest = None
    for payload in payloads:
        value = payload.get("updatedAt") if isinstance(payload, dict) else None
        moment = _read_timestamp(value)
        if moment is not None and (newest is None or moment > newest):
            newest = moment
    return newest


# ------------------------------------------------------------------- bulk operations

_BULK_STATES = {"CREATED": "running", "RUNNING": "running", "COMPLETED": "completed"}


def _bulk_status(node: Any) -> ExportStatus:
    if not isinstance(node, dict) or not isinstance(node.get("id"), str):
        raise ShapeError("bulk operation is missing")
    started = _read_timestamp(node.get("createdAt"))
    if started is None:
        raise ShapeError("bulk operation has no createdAt")
    status = node.get("status")
    state = _BULK_STATES.get(status, "failed") if isinstance(status, str) else "failed"
    error = None
    if state == "failed":
        code = node.get("errorCode")
        error = code if isinstance(code, str) else str(status).lower()
    url = node.get("url")
    count = node.get("rootObjectCount")
    try:
        # UnsignedInt64 arrives as a string.
        root_count = int(count) if count is not None and not isinstance(count, bool) else 0
    except (TypeError, ValueError):
        root_count = 0
    return ExportStatus(
        job_id=node["id"],
        state=state,
        started_at=started,
        url=url if isinstance(url, str) and url else None,
        root_count=root_count,
        error=error,
    )


@dataclass(frozen=True, slots=True)
class BulkRefusal:
    """`userErrors` of bulkOperationRunQuery; `busy` when another operation holds the slot."""

    messages: list[str]
    busy: bool


_BUSY_CODES = frozenset({"OPERATION_IN_PROGRESS", "LIMIT_REACHED"})


def parse_bulk_run(data: Payload) -> ExportStatus | BulkRefusal:
    """Reads BULK_RUN data: the new operation, or why Shopify would not start one."""
    payload = data.get("bulkOperationRunQuery")
    if not isinstance(payload, dict):
        raise ShapeError("bulkOperationRunQuery is missing")
    user_errors = payload.get("userErrors") or []
    if not isinstance(user_errors, list):
        raise ShapeError("userErrors is not a list")
    if user_errors:
        entries = [e for e in user_errors if isinstance(e, dict)]
        return BulkRefusal(
            messages=[str(e.get("message", "")) for e in entries] or ["refused"],
            busy=any(e.get("code") in _BUSY_CODES for e in entries),
        )
    return _bulk_status(payload.get("bulkOperation"))


def parse_bulk_status(data: Payload) -> ExportStatus:
    """Reads BULK_STATUS data.

    Raises:
        UpstreamError: when Shopify knows no such operation (asking again will not help).
    """
    if data.get("bulkOperation") is None:
        raise UpstreamError("Shopify has no bulk operation with that id")
    return _bulk_status(data["bulkOperation"])


def _squash(text: str) -> str:
    return " ".join(text.split())


def parse_current_bulk(data: Payload, query: str) -> ExportStatus | None:
    """The operation CURRENT_BULK found, if it is still running and exports `query`."""
    node = data.get("currentBulkOperation")
    if not isinstance(node, dict) or node.get("status") not in _BULK_STATES:
        return None
    text = node.get("query")
    if not isinstance(text, str) or _squash(text) != _squash(query):
        return None
    status = _bulk_status(node)
    return status if status.state == "running" else None


# --------------------------------------------------------------------------- catalog


def parse_shop_currency(data: Payload) -> str:
    """The shop's currency from SHOP_PING data."""
    shop = data.get("shop")
    currency = shop.get("currencyCode") if isinstance(shop, dict) else None
    if not isinstance(currency, str) or not currency:
        raise ShapeError("shop has no currencyCode")
    return currency


@dataclass(frozen=True, slots=True)
class VariantsPage:
    """One page of VARIANTS_PAGE as catalog items (variants without a SKU left out)."""

    items: list[CatalogItem]
    end_cursor: str | None
    has_next: bool


_DEFAULT_VARIANT_TITLE = "Default Title"  # Shopify's title for a product's only variant


def parse_variants_page(data: Payload, currency: str) -> VariantsPage:
    """Reads VARIANTS_PAGE data; variants without a SKU or a readable price are skipped."""
    nodes, cursor, has_next = _connection(data, "productVariants")
    items = []
    for node in nodes:
        if not isinstance(node, dict):
            continue
        sku = node.get("sku")
        if not isinstance(sku, str) or not sku.strip():
            continue
        try:
            price = to_money(node.get("price"))
        except MoneyError:
            continue
        product = node.get("product") if isinstance(node.get("product"), dict) else {}
        product_title = _text(product.get("title"))
        variant_title = _text(node.get("title"))
        if variant_title and variant_title != _DEFAULT_VARIANT_TITLE:
            title = f"{product_title} — {variant_title}" if product_title else variant_title
        else:
            title = product_title or sku
        items.append(
            CatalogItem(
                sku=sku,
                title=title,
                price=price,
                currency=currency,
                product_title=product_title,
                barcode=_text(node.get("barcode")) or None,
                category=_text(product.get("productType")) or None,
                channel_ref=node.get("id") if isinstance(node.get("id"), str) else None,
                updated_at=_read_timestamp(node.get("updatedAt")),
            )
        )
    return VariantsPage(items, cursor, has_next)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


# ------------------------------------------------------------------------- one order


def _read_timestamp(value: Any) -> datetime | None:
    """An ISO 8601 timestamp with an offset, as UTC; None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
        return moment.astimezone(UTC) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


class _Reader(Reader):
    """`Reader` of Shopify's spellings: ISO 8601 times with an offset, amounts in MoneyBags."""

    time_form = "a timestamp with a time zone"
    parse_time = staticmethod(_read_timestamp)

    def money(self, node: Payload, key: str, where: str = "", required: bool = False) -> Decimal:
        """The shop-currency amount of a MoneyBag field; 0 when absent."""
        money_set = self.get(node, key, dict, where, required)
        if money_set is None:
            return Decimal(0)
        shop_money = self.get(money_set, "shopMoney", dict, f"{where}{key}.", required=True)
        try:
            return to_money(shop_money.get("amount"))
        except MoneyError:
            self.fail(f"{where}{key}.shopMoney.amount is not an amount")

# PENDING (not assessed yet) ranks above LOW: it is no reassurance, yet no finding either.
_RISK_RANK = {"NONE": 0, "LOW": 1, "PENDING": 2, "MEDIUM": 3, "HIGH": 4}


def parse_order(payload: Payload, channel: str = CHANNEL) -> ChannelOrder:
    """Maps one normalised order payload to a `ChannelOrder`.

    Currency, line count and quantities are kept as given; judging them is the quality
    suite's job.

    Raises:
        Unreadable: reason "malformed" when the payload cannot be read as an order.
    """
    if not isinstance(payload, dict):
        raise Unreadable("malformed", "payload is not an object")
    raw_id = payload.get("id")
    read = _Reader(raw_id if isinstance(raw_id, str) and raw_id.strip() else None)
    external_id = read.text(payload, "id", required=True)
    created = read.timestamp(payload, "createdAt", required=True)
    processed = read.timestamp(payload, "processedAt")
    currency = read.get(payload, "currencyCode", str) or ""
    return ChannelOrder(
        channel=channel,
        external_id=external_id,
        number=read.text(payload, "name", required=True),
        currency=currency,
        placed_at=processed or created,
        updated_at=read.timestamp(payload, "updatedAt", required=True),
        lifecycle=_lifecycle(read, payload),
        lines=tuple(_lines(read, payload)),
        total=read.money(payload, "totalPriceSet", required=True),
        shipping=read.money(payload, "totalShippingPriceSet"),
        tax=read.money(payload, "totalTaxSet"),
        discounts=read.money(payload, "totalDiscountsSet"),
        taxes_included=read.flag(payload, "taxesIncluded", False),
        requires_shipping=read.flag(payload, "requiresShipping", True),
        ship_to=_address(read, payload),
        customer=_customer(read, payload),
        risk=_risk(read, payload),
        payment=parse_payment(payload.get("transactions")),
    )


def parse_payment(transactions: Any) -> Payment | None:
    """The payment behind an order: its first successful SALE or CAPTURE, by gateway and `paymentId`.

    Lenient: an order whose transactions are odd is still an order, only its payment unknown.
    """
    if not isinstance(transactions, list):
        return None
    for node in transactions:
        if isinstance(node, dict) and node.get("status") == "SUCCESS" and node.get("kind") in _PAID:
            gateway = normalise_gateway(node.get("gateway") if isinstance(node.get("gateway"), str) else None)
            if gateway is None:
                continue
            reference = node.get("paymentId")
            return Payment(gateway, reference.strip() or None if isinstance(reference, str) else None)
    return None


def _lifecycle(read: _Reader, payload: Payload) -> Lifecycle:
    if read.timestamp(payload, "cancelledAt") is not None:
        return Lifecycle.CANCELLED
    if read.get(payload, "displayFulfillmentStatus", str) == "FULFILLED":
        return Lifecycle.FULFILLED
    if read.flag(payload, "closed", False):
        return Lifecycle.CLOSED
    return Lifecycle.OPEN


def _lines(read: _Reader, payload: Payload) -> list[OrderLine]:
    connection = read.get(payload, "lineItems", dict)
    if connection is None:
        return []
    nodes = read.get(connection, "nodes", list, "lineItems.") or []
    lines = []
    for index, node in enumerate(nodes):
        where = f"lineItems[{index}]."
        if not isinstance(node, dict):
            read.fail(f"lineItems[{index}] is not an object")
        sku = read.get(node, "sku", str, where)
        lines.append(
            OrderLine(
                sku=sku or None,
                title=read.get(node, "title", str, where) or "",
                quantity=read_quantity(node.get("quantity")),
                unit_price=read.money(node, "originalUnitPriceSet", where, required=True),
                discount=read.money(node, "totalDiscountSet", where),
                requires_shipping=read.flag(node, "requiresShipping", True, where),
            )
        )
    return lines


def _address(read: _Reader, payload: Payload) -> Address | None:
    node = read.get(payload, "shippingAddress", dict)
    if node is None:
        return None

    def text(key: str) -> str | None:
        return read.text(node, key, "shippingAddress.")

    full_name = " ".join(part for part in (text("firstName"), text("lastName")) if part)
    return Address(
        name=text("name") or full_name or None,
        company=text("company"),
        street1=text("address1"),
        street2=text("address2"),
        city=text("city"),
        province=text("provinceCode") or text("province"),
        postal_code=text("zip"),
        country=text("countryCodeV2"),
        phone=text("phone"),
    )


def _customer(read: _Reader, payload: Payload) -> Customer | None:
    order_email = read.text(payload, "email")
    order_phone = read.text(payload, "phone")
    node = read.get(payload, "customer", dict)
    if node is None:
        if order_email is None and order_phone is None:
            return None
        return Customer(email=order_email, phone=order_phone)
    email_node = read.get(node, "defaultEmailAddress", dict, "customer.") or {}
    phone_node = read.get(node, "defaultPhoneNumber", dict, "customer.") or {}
    email = read.text(email_node, "emailAddress", "customer.defaultEmailAddress.")
    phone = read.text(phone_node, "phoneNumber", "customer.defaultPhoneNumber.")
    return Customer(
        external_id=read.text(node, "id", "customer."),
        email=email or order_email,
        phone=phone or order_phone,
        first_name=read.text(node, "firstName", "customer."),
        last_name=read.text(node, "lastName", "customer."),
    )


def _risk(read: _Reader, payload: Payload) -> Risk:
    node = read.get(payload, "risk", dict)
    if node is None:
        return Risk.NONE
    if read.get(node, "recommendation", str, "risk.") == "CANCEL":
        return Risk.HIGH
    best = "NONE"
    for index, assessment in enumerate(read.get(node, "assessments", list, "risk.") or []):
        if not isinstance(assessment, dict):
            read.fail(f"risk.assessments[{index}] is not an object")
        level = read.get(assessment, "riskLevel", str, f"risk.assessments[{index}].")
        if level in _RISK_RANK and _RISK_RANK[level] > _RISK_RANK[best]:
            best = level
    return Risk(best.lower())


# ------------------------------------------------------------------------- write-backs

NOTE_REF = "Clerk ref: "
STOCK_QUANTITY_NAME = "available"
STOCK_REASON = "correction"
_RETRY_CODES = frozenset({"IDEMPOTENCY_CONCURRENT_REQUEST"})
_STALE = "CHANGE_FROM_QUANTITY_STALE"
_OPEN_FULFILLMENT_ORDERS = frozenset({"OPEN", "IN_PROGRESS"})
_ACTIVE_FULFILLMENTS = frozenset({"SUCCESS", "OPEN", "PENDING"})
_PAID = frozenset({"SALE", "CAPTURE"})


class WriteInFlight(ShapeError):
    """Shopify is still running an earlier request with the same idempotency key: ask again."""


def _write_payload(data: Payload, field: str) -> Payload:
    """A mutation's payload, its `userErrors` raised: UpstreamError, or WriteInFlight to retry."""
    payload = data.get(field)
    if not isinstance(payload, dict):
        raise ShapeError(f"{field} answered nothing")
    errors = payload.get("userErrors")
    if not isinstance(errors, list):
        raise ShapeError(f"{field} has no userErrors")
    readable = [e for e in errors if isinstance(e, dict)]
    if any(e.get("code") in _RETRY_CODES for e in readable):
        raise WriteInFlight(f"{field} is still running under the same key")
    if errors:
        messages = "; ".join(
            f"{'.'.join(map(str, e.get('field') or [])) or field}: {str(e.get('message', ''))[:200]}"
            + (f" ({e['code']})" if e.get("code") else "") for e in readable[:3])
        raise UpstreamError(f"Shopify refused {field}: {messages or errors!r}")
    return payload


def _gid_of(node: Any, what: str) -> str:
    value = node.get("id") if isinstance(node, dict) else None
    if not isinstance(value, str) or not value:
        raise ShapeError(f"{what} has no id")
    return value


def _node(data: Payload, field: str) -> Payload:
    """A root field asked for by id; one Shopify does not have is a refusal, not a retry."""
    node = data.get(field)
    if node is None:
        raise UpstreamError(f"Shopify has no such {field}")
    if not isinstance(node, dict):
        raise ShapeError(f"{field} is not an object")
    return node


def parse_primary_location(data: Payload) -> str:
    """The shop's primary location's id, from PRIMARY_LOCATION."""
    return _gid_of(data.get("location"), "location")


def build_sku_query(sku: str) -> str:
    """Search syntax for variants with exactly this SKU (quoted; Shopify may match more)."""
    escaped = sku.replace("\\", "\\\\").replace('"', '\\"')
    return f'sku:"{escaped}"'


def build_skus_query(skus: Iterable[str]) -> str:
    """Search syntax for variants with any of these SKUs."""
    return " OR ".join(build_sku_query(sku) for sku in skus)


@dataclass(frozen=True, slots=True)
class StockedItem:
    """A variant's inventory item and the units `available` at the location (None: not stocked there)."""

    item_id: str
    available: int | None


def _stocked(node: Any) -> StockedItem:
    item = node.get("inventoryItem") if isinstance(node, dict) else None
    level = item.get("inventoryLevel") if isinstance(item, dict) else None
    if level is None:
        return StockedItem(_gid_of(item, "inventoryItem"), None)
    quantities = level.get("quantities") if isinstance(level, dict) else None
    if not isinstance(quantities, list):
        raise ShapeError("inventoryLevel has no quantities")
    units = next((q.get("quantity") for q in quantities
                  if isinstance(q, dict) and q.get("name") == STOCK_QUANTITY_NAME), None)
    if isinstance(units, bool) or not isinstance(units, int):
        raise ShapeError("inventoryLevel has no available quantity")
    return StockedItem(_gid_of(item, "inventoryItem"), units)


def parse_stock_page(data: Payload, skus: Collection[str]) -> Chunk[tuple[str, StockedItem]]:
    """A page of STOCK_BY_SKU: (SKU, its stock) of the variants whose SKU is exactly one of `skus`."""
    nodes, cursor, has_next = _connection(data, "productVariants")
    found = [(node["sku"], _stocked(node)) for node in nodes if isinstance(node, dict) and node.get("sku") in skus]
    return Chunk(found, cursor, has_next)


@dataclass(frozen=True, slots=True)
class StockQuantity:
    """One quantity of SET_STOCK: `units` for an inventory item, set only while it shows `change_from`."""

    item_id: str
    units: int
    change_from: int | None  # None: the item keeps no count at the location, nothing to compare


def stock_write_key(key: str, quantities: Sequence[StockQuantity]) -> str:
    """The idempotency key of one SET_STOCK: `key` and a digest of exactly what it sets.

    The same mutation sent again has the same key; a different one never does.
    """
    content = json.dumps(sorted((q.item_id, q.units, q.change_from) for q in quantities))
    return f"{key}:{hashlib.sha256(content.encode()).hexdigest()[:20]}"


def build_set_stock_input(quantities: Sequence[StockQuantity], location_id: str, key: str) -> Payload:
    """`input` of SET_STOCK: absolute `available` units per inventory item at one location.

    `changeFromQuantity` must be sent (since 2026-04); each is the count the item was read
    at, so a count changed on Shopify meanwhile is refused, not overwritten.
    `referenceDocumentUri` names Clerk's key for the audit trail.
    """
    return {
        "name": STOCK_QUANTITY_NAME,
        "reason": STOCK_REASON,
        "referenceDocumentUri": f"gid://clerk/StockSync/{quote(key, safe='')}",
        "quantities": [
            {"inventoryItemId": q.item_id, "locationId": location_id, "quantity": q.units,
             "changeFromQuantity": q.change_from}
            for q in quantities
        ],
    }


def parse_set_stock(data: Payload) -> bool:
    """True when SET_STOCK was applied, False when Shopify refused it whole because a count
    moved since it was read (CHANGE_FROM_QUANTITY_STALE); any other refusal is raised."""
    payload = data.get("inventorySetQuantities")
    errors = payload.get("userErrors") if isinstance(payload, dict) else None
    if errors and all(isinstance(e, dict) and e.get("code") == _STALE for e in errors):
        return False
    _write_payload(data, "inventorySetQuantities")
    return True


def _note_marker(key: str) -> re.Pattern[str]:
    return re.compile(re.escape(NOTE_REF + key) + r"(?![\w.:-])")


def parse_order_note(data: Payload) -> str:
    """The order's note ("" when it has none), from ORDER_NOTE."""
    note = _node(data, "order").get("note")
    if note is not None and not isinstance(note, str):
        raise ShapeError("order note is not text")
    return note or ""


def note_with(existing: str, note: str, key: str) -> str | None:
    """The order note with a line for `note` carrying `key` appended; None when a line carries it already.

    Shopify's order note is one text that `orderUpdate` overwrites, so Clerk appends a line
    of its own and keeps what staff wrote.
    """
    if _note_marker(key).search(existing):
        return None
    line = f"{' '.join(note.split())} ({NOTE_REF}{key})"
    return f"{existing.rstrip()}\n{line}" if existing.strip() else line


def parse_update_note(data: Payload) -> str:
    """The updated order's id, from UPDATE_NOTE."""
    return _gid_of(_write_payload(data, "orderUpdate").get("order"), "order")


@dataclass(frozen=True, slots=True)
class Chunk(Generic[T]):
    """One page of a connection: its items, and the cursor to read on from."""

    items: list[T]
    end_cursor: str | None
    has_next: bool


def _chunk(container: Any, key: str, read: Callable[[Any], T]) -> Chunk[T]:
    nodes, cursor, has_next = _connection(container, key)
    return Chunk([read(node) for node in nodes], cursor, has_next)


@dataclass(frozen=True, slots=True)
class FulfillmentOrderLine:
    """A line of a fulfillment order and the units of it still to ship."""

    fulfillment_order_id: str
    id: str
    sku: str | None
    remaining: int


@dataclass(slots=True)
class FulfillmentOrder:
    """One of an order's fulfillment orders: the location it ships from, its lines and the ids
    of the fulfillments made from it. `lines_after` and `fulfillments_after` are where its
    connections go on (None once read whole)."""

    id: str
    location_id: str
    open: bool
    lines: list[FulfillmentOrderLine]
    fulfillment_ids: list[str]
    lines_after: str | None = None
    fulfillments_after: str | None = None


@dataclass(frozen=True, slots=True)
class Fulfillment:
    """A shipment Shopify holds for an order: from one location, its tracking numbers and units by SKU."""

    id: str
    location_id: str
    active: bool
    numbers: frozenset[str]
    units: dict[str, int]


@dataclass(frozen=True, slots=True)
class LocationShipment:
    """A shipment's part at one location: the ids of its fulfillments made there earlier, or
    the `lineItemsByFulfillmentOrder` to fulfil there (never both)."""

    location_id: str
    made: list[str]
    to_ship: list[Payload]


def _fulfillment_order_line(fulfillment_order_id: str) -> Callable[[Any], FulfillmentOrderLine]:
    def read(line: Any) -> FulfillmentOrderLine:
        if not isinstance(line, dict) or not isinstance(line.get("remainingQuantity"), int):
            raise ShapeError("a fulfillment order line has no remainingQuantity")
        sku = line.get("sku") or (line.get("lineItem") or {}).get("sku")
        return FulfillmentOrderLine(fulfillment_order_id, _gid_of(line, "line"), sku if isinstance(sku, str) else None,
                                    line["remainingQuantity"])

    return read


def _fulfillment_id(node: Any) -> str:
    return _gid_of(node, "fulfillment")


def _fulfillment_order(node: Any) -> FulfillmentOrder:
    if not isinstance(node, dict):
        raise ShapeError("a fulfillment order is not an object")
    order_id = _gid_of(node, "fulfillmentOrder")
    assigned = node.get("assignedLocation")
    location = assigned.get("location") if isinstance(assigned, dict) else None
    # A deleted location leaves none: its fulfillment orders group under "".
    location_id = location.get("id") if isinstance(location, dict) else None
    lines = _chunk(node, "lineItems", _fulfillment_order_line(order_id))
    fulfillments = _chunk(node, "fulfillments", _fulfillment_id)
    return FulfillmentOrder(
        order_id, location_id if isinstance(location_id, str) else "", node.get("status") in _OPEN_FULFILLMENT_ORDERS,
        lines.items, fulfillments.items, lines.end_cursor if lines.has_next else None,
        fulfillments.end_cursor if fulfillments.has_next else None)


def parse_fulfillment_orders(data: Payload) -> Chunk[FulfillmentOrder]:
    """A page of the order's fulfillment orders, from ORDER_FULFILLMENT_ORDERS."""
    return _chunk(_node(data, "order"), "fulfillmentOrders", _fulfillment_order)


def parse_fulfillment_order_lines(data: Payload) -> Chunk[FulfillmentOrderLine]:
    """A page of a fulfillment order's lines, from FULFILLMENT_ORDER_LINES."""
    node = _node(data, "fulfillmentOrder")
    return _chunk(node, "lineItems", _fulfillment_order_line(_gid_of(node, "fulfillmentOrder")))


def parse_fulfillment_ids(data: Payload) -> Chunk[str]:
    """A page of the ids of a fulfillment order's fulfillments, from FULFILLMENT_ORDER_FULFILLMENTS."""
    return _chunk(_node(data, "fulfillmentOrder"), "fulfillments", _fulfillment_id)


def parse_fulfillment(data: Payload, location_id: str) -> Chunk[Fulfillment]:
    """A page of FULFILLMENT_LINES as the fulfillment with that page's units (see `whole_fulfillment`)."""
    node = _node(data, "fulfillment")
    numbers = frozenset(t["number"] for t in node.get("trackingInfo") or []
                        if isinstance(t, dict) and isinstance(t.get("number"), str))
    items, cursor, has_next = _connection(node, "fulfillmentLineItems")
    units: dict[str, int] = {}
    for item in items:
        sku = (item.get("lineItem") or {}).get("sku") if isinstance(item, dict) else None
        if isinstance(sku, str) and isinstance(item.get("quantity"), int):
            units[sku] = units.get(sku, 0) + item["quantity"]
    fulfillment = Fulfillment(_fulfillment_id(node), location_id, node.get("status") in _ACTIVE_FULFILLMENTS,
                              numbers, units)
    return Chunk([fulfillment], cursor, has_next)


def whole_fulfillment(pages: Sequence[Fulfillment]) -> Fulfillment:
    """A fulfillment read a page of lines at a time, with the units of every page."""
    units: Counter[str] = Counter()
    for page in pages:
        units.update(page.units)
    return replace(pages[0], units=dict(units))


def _location_order(location_id: str) -> tuple[int, str]:
    """Locations in id order: by number, as Shopify counts them, not as text sorts "10" before "9"."""
    tail = location_id.rpartition("/")[2]
    return (int(tail) if tail.isdigit() else -1, location_id)


def _units_by_location(lines: Mapping[str, list[FulfillmentOrderLine]]) -> dict[str, Counter[str]]:
    available: dict[str, Counter[str]] = {}
    for location_id, at in lines.items():
        units = available.setdefault(location_id, Counter())
        for line in at:
            if line.sku is not None:
                units[line.sku] += line.remaining
    return available


def _split_by_location(available: Mapping[str, Mapping[str, int]],
                       lines: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Units of `lines` (SKU -> units) per location: each SKU's taken from the locations in id
    order, as far as they have it. A location's part depends on no location after it."""
    split: dict[str, dict[str, int]] = {}
    locations = sorted(available, key=_location_order)
    for sku, units in lines.items():
        left = units
        for location_id in locations:
            take = min(left, available[location_id].get(sku, 0))
            if take > 0:
                split.setdefault(location_id, {})[sku] = take
                left -= take
    return split


def _untracked_made(fulfillments: Sequence[Fulfillment], available: Mapping[str, Counter[str]],
                    lines: Mapping[str, int]) -> dict[str, list[Fulfillment]]:
    """Untracked fulfillments of this shipment: at each location, in id order, one carrying exactly
    the units the shipment takes there once its units (and those of the locations before) are
    counted as still open."""
    made: dict[str, list[Fulfillment]] = {}
    restored = {location_id: Counter(units) for location_id, units in available.items()}
    candidates = [f for f in fulfillments if not f.numbers and f.units and f.units.keys() <= lines.keys()]
    for location_id in sorted({f.location_id for f in candidates}, key=_location_order):
        for candidate in (f for f in candidates if f.location_id == location_id):
            trial = {**restored, location_id: restored.get(location_id, Counter()) + Counter(candidate.units)}
            if _split_by_location(trial, lines).get(location_id) == candidate.units:
                made[location_id], restored = [candidate], trial
                break
    return made


def plan_shipment(orders: Sequence[FulfillmentOrder], fulfillments: Sequence[Fulfillment],
                  lines: Mapping[str, int], tracking: Tracking | None) -> list[LocationShipment]:
    """The shipment of `lines` (SKU -> units; empty: everything left), a part per location in id order.

    fulfillmentCreate takes fulfillment orders of one location only, so a shipment from several
    locations is several fulfillments; each SKU's units come from the locations in id order.
    fulfillmentCreate keeps no key either, so a part made earlier (by an attempt whose answer was
    lost, or a run cut short) is recognised by what it is: by the tracking number when the
    shipment has one, else by carrying exactly the units of `lines` it takes from its location.
    A location with such a part is not shipped from again.

    Raises:
        ValueError: when a SKU has fewer units left to ship than asked for, or nothing is left.
    """
    for sku, units in lines.items():
        if units <= 0:
            raise ValueError(f"cannot ship {units} of {sku!r}")
    open_lines: dict[str, list[FulfillmentOrderLine]] = {}
    for order in orders:
        if order.open:
            open_lines.setdefault(order.location_id, []).extend(line for line in order.lines if line.remaining > 0)
    active = [f for f in fulfillments if f.active]
    made: dict[str, list[Fulfillment]] = {}
    if tracking is not None:
        for fulfillment in active:
            if tracking.number in fulfillment.numbers:
                made.setdefault(fulfillment.location_id, []).append(fulfillment)
    elif lines:
        made = _untracked_made(active, _units_by_location(open_lines), lines)
    unmade = {location_id: at for location_id, at in open_lines.items() if at and location_id not in made}
    if lines:
        shipped: Counter[str] = Counter()
        for fulfillment in (f for at in made.values() for f in at):
            shipped.update(fulfillment.units)
        rest = {sku: units - shipped[sku] for sku, units in lines.items() if units > shipped[sku]}
        split = _split_by_location(_units_by_location(unmade), rest)
        for sku, units in rest.items():
            placed = sum(portion.get(sku, 0) for portion in split.values())
            if placed < units:
                raise ValueError(f"cannot ship {units} of {sku!r}: {placed} left to ship on the order")
        to_ship = {location_id: plan_fulfillment(unmade[location_id], portion)
                   for location_id, portion in split.items()}
    else:
        to_ship = {location_id: plan_fulfillment(at, {}) for location_id, at in unmade.items()}
        if not to_ship and not made:
            raise ValueError("nothing is left to ship on the order")
    return [LocationShipment(location_id, [f.id for f in made.get(location_id, [])], to_ship.get(location_id, []))
            for location_id in sorted(made.keys() | to_ship.keys(), key=_location_order)]


def plan_fulfillment(open_lines: Iterable[FulfillmentOrderLine], lines: Mapping[str, int]) -> list[Payload]:
    """`lineItemsByFulfillmentOrder` shipping `lines` (SKU -> units; empty: everything left).

    Units of a SKU are taken from its open lines in order.

    Raises:
        ValueError: when a SKU has no open line, or fewer units left than asked for.
    """
    open_lines = [line for line in open_lines if line.remaining > 0]
    if not lines:
        orders = list(dict.fromkeys(line.fulfillment_order_id for line in open_lines))
        if not orders:
            raise ValueError("nothing is left to ship on the order")
        return [{"fulfillmentOrderId": order} for order in orders]
    picked: dict[str, list[Payload]] = {}
    for sku, units in lines.items():
        left = units
        for line in (line for line in open_lines if line.sku == sku):
            take = min(left, line.remaining)
            if take > 0:
                picked.setdefault(line.fulfillment_order_id, []).append({"id": line.id, "quantity": take})
                left -= take
        if units <= 0 or left > 0:
            raise ValueError(f"cannot ship {units} of {sku!r}: {units - left} left to ship on the order")
    return [{"fulfillmentOrderId": order, "fulfillmentOrderLineItems": items} for order, items in picked.items()]


def build_fulfillment_input(plan: list[Payload], tracking: Tracking | None) -> Payload:
    """`fulfillment` of CREATE_FULFILLMENT; the buyer is not notified by Shopify (Clerk's flows decide)."""
    fulfillment: Payload = {"lineItemsByFulfillmentOrder": plan, "notifyCustomer": False}
    if tracking is not None:
        info: Payload = {"number": tracking.number, "company": tracking.carrier}
        if tracking.url:
            info["url"] = tracking.url
        fulfillment["trackingInfo"] = info
    return fulfillment


def parse_create_fulfillment(data: Payload) -> str:
    """The new fulfillment's id, from CREATE_FULFILLMENT."""
    return _gid_of(_write_payload(data, "fulfillmentCreate").get("fulfillment"), "fulfillment")


@dataclass(frozen=True, slots=True)
class Refundable:
    """What a refund of an order is built from: line ids and units sold by SKU, and payments in
    the order's presentment currency (the buyer's, which Shopify refunds in).

    Deliberately what was sold and paid, not what is left: a repeat of a refund must send the
    very input of the first, or Shopify's idempotency check refuses it as a different request
    (IDEMPOTENCY_KEY_PARAMETER_MISMATCH). Shopify itself refuses refunding more than is left.
    """

    order_id: str
    currency: str
    lines: dict[str, tuple[str, int]]
    payments: list[tuple[str, str, Decimal]]  # transaction id, gateway, amount paid


def parse_refundable(data: Payload) -> Refundable:
    """The order's presentment currency, lines and successful payments, from ORDER_REFUNDABLE."""
    order = _node(data, "order")
    currency = order.get("presentmentCurrencyCode")
    nodes = (order.get("lineItems") or {}).get("nodes")
    transactions = order.get("transactions")
    if not isinstance(currency, str) or not isinstance(nodes, list) or not isinstance(transactions, list):
        raise ShapeError("order has no presentmentCurrencyCode, lineItems or transactions")
    lines: dict[str, tuple[str, int]] = {}
    for node in nodes:
        if isinstance(node, dict) and isinstance(node.get("sku"), str) and node["sku"] not in lines:
            lines[node["sku"]] = (_gid_of(node, "line"), int(node.get("quantity") or 0))
    payments = []
    for node in transactions:
        if not isinstance(node, dict) or node.get("status") != "SUCCESS":
            continue
        try:
            value = to_money(node["amountSet"]["presentmentMoney"]["amount"])
        except (KeyError, TypeError, MoneyError) as exc:
            raise ShapeError("a transaction has no amount") from exc
        if node.get("kind") in _PAID and value > 0:
            payments.append((_gid_of(node, "transaction"), str(node.get("gateway") or ""), value))
    return Refundable(_gid_of(order, "order"), currency, lines, payments)


def build_refund_input(refundable: Refundable, lines: Mapping[str, int], amount: Decimal, reason: str) -> Payload:
    """`input` of CREATE_REFUND: the units are refunded without a restock upstream (Clerk's
    stock ledger books returns), `amount` (in the presentment currency, which the input names:
    Shopify requires it when the shop's currency differs) is taken from the payments in order.

    Raises:
        ValueError: for a SKU not on the order, more units than were sold, or more money than
            was paid.
    """
    refund_lines = []
    for sku, units in lines.items():
        line_id, left = refundable.lines.get(sku, ("", 0))
        if not line_id:
            raise ValueError(f"SKU {sku!r} is not on the order")
        if not 0 < units <= left:
            raise ValueError(f"cannot refund {units} of {sku!r}: {left} sold")
        refund_lines.append({"lineItemId": line_id, "quantity": units, "restockType": "NO_RESTOCK"})
    transactions = []
    left_to_refund = amount
    for transaction_id, gateway, available in refundable.payments:
        if left_to_refund <= 0:
            break
        take = min(available, left_to_refund)
        transactions.append({"orderId": refundable.order_id, "parentId": transaction_id, "gateway": gateway,
                             "kind": "REFUND", "amount": str(take)})
        left_to_refund -= take
    if amount < 0 or left_to_refund > 0:
        raise ValueError(f"cannot refund {amount}: the order's payments total {amount - left_to_refund}")
    return {"orderId": refundable.order_id, "currency": refundable.currency, "note": reason or None,
            "notify": False, "refundLineItems": refund_lines, "transactions": transactions}


def parse_create_refund(data: Payload) -> str:
    """The new refund's id, from CREATE_REFUND."""
    return _gid_of(_write_payload(data, "refundCreate").get("refund"), "refund")


# ------------------------------------------------------------------ return requests (read only)

# Shopify's `ReturnReason` -> Clerk's return reason. DEFECTIVE is shown to buyers as "Damaged or
# defective": its note, when it says damaged, makes it "damaged". OTHER and UNKNOWN are read from
# the note (see `integrations.reading.return_reason`); the rest are the buyer's choice.
RETURN_REASONS: dict[str, str] = {
    "DEFECTIVE": "defective",
    "WRONG_ITEM": "wrong_item",
    "NOT_AS_DESCRIBED": "not_as_described",
    "SIZE_TOO_SMALL": "changed_mind",
    "SIZE_TOO_LARGE": "changed_mind",
    "UNWANTED": "changed_mind",
    "STYLE": "changed_mind",
    "COLOR": "changed_mind",
    "OTHER": "other",
    "UNKNOWN": "other",
}
OPEN_RETURN_STATUSES = frozenset({"REQUESTED", "OPEN"})  # asked for, or accepted and under way
RETURN_ORDER_STATUSES = ("return_requested", "in_progress")  # `return_status` of orders holding them


def return_reason_of(reason: Any, note: Any) -> str:
    """Clerk's code for one return line's `returnReason` and `returnReasonNote`."""
    code = RETURN_REASONS.get(reason, "other") if isinstance(reason, str) else "other"
    from_note = return_reason(note if isinstance(note, str) else None)
    if code == "other" or (code == "defective" and from_note == "damaged"):
        return from_note
    return code


def build_returns_variables(since: datetime | None, status: str, after: str | None, first: int) -> Payload:
    """Variables of RETURNS_PAGE: orders whose `return_status` is `status`, changed at or after `since`."""
    query = " ".join(part for part in (build_updated_since_query(since), f"return_status:{status}") if part)
    return {"first": first, "after": after, "query": query}


def parse_returns_page(data: Payload) -> Chunk[Payload]:
    """The orders of a RETURNS_PAGE page, each with its `returns` as Shopify gave them."""
    nodes, cursor, has_next = _connection(data, "orders")
    return Chunk([node for node in nodes if isinstance(node, dict)], cursor, has_next)


def parse_returns(order: Payload, since: datetime | None, channel: str = CHANNEL,
                  unreadable: list[Unreadable] | None = None) -> list[ChannelReturn]:
    """The open returns (REQUESTED or OPEN) of one RETURNS_PAGE order, asked for at or after `since`.

    A return that cannot be read is left out; its `Unreadable` goes to `unreadable` when given,
    else it is raised.
    """
    connection = order.get("returns")
    nodes = connection.get("nodes") if isinstance(connection, dict) else None
    found = []
    for node in nodes if isinstance(nodes, list) else []:
        try:
            parsed = parse_return(order, node, channel)
        except Unreadable as exc:
            if unreadable is None:
                raise
            unreadable.append(exc)
            continue
        if parsed is not None and (since is None or parsed.requested_at >= since):
            found.append(parsed)
    return found


def parse_return(order: Payload, node: Any, channel: str = CHANNEL) -> ChannelReturn | None:
    """One return of an order as a `ChannelReturn`; None when it is not open (declined, closed, ...).

    Lines are summed by SKU; the reason is the first line's. The buyer's notes are kept as the
    note (never logged). `refunded` sums the refunds Shopify already made for the return.

    Raises:
        Unreadable: "malformed", naming the return, when it cannot be read (no SKU on a line, a
            quantity that is not a positive whole number, more lines than the page held).
    """
    raw_id = node.get("id") if isinstance(node, dict) else None
    read = _Reader(raw_id if isinstance(raw_id, str) and raw_id else None)
    if not isinstance(node, dict):
        read.fail("return is not an object")
    return_id = read.text(node, "id", required=True)
    if read.get(node, "status", str, required=True) not in OPEN_RETURN_STATUSES:
        return None
    order_id = read.text(order, "id", "order.", required=True)
    number = read.text(order, "name", "order.", required=True)
    requested = read.timestamp(node, "createdAt", required=True)
    connection = read.get(node, "returnLineItems", dict, required=True)
    info = connection.get("pageInfo")
    if isinstance(info, dict) and info.get("hasNextPage") is True:
        read.fail("returnLineItems has more lines than one page holds")
    lines: dict[str, int] = {}
    reasons: list[str] = []
    notes: list[str] = []
    for index, item in enumerate(read.get(connection, "nodes", list, "returnLineItems.", required=True)):
        where = f"returnLineItems[{index}]."
        if not isinstance(item, dict):
            read.fail(f"returnLineItems[{index}] is not an object")
        quantity = item.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            read.fail(f"{where}quantity is not a positive whole number")
        fulfillment_line = read.get(item, "fulfillmentLineItem", dict, where) or {}
        line_item = read.get(fulfillment_line, "lineItem", dict, f"{where}fulfillmentLineItem.") or {}
        sku = read.text(line_item, "sku", f"{where}fulfillmentLineItem.lineItem.")
        if not sku or not sku.strip():
            read.fail(f"{where}fulfillmentLineItem.lineItem.sku is missing")
        lines[sku] = lines.get(sku, 0) + quantity
        reasons.append(return_reason_of(item.get("returnReason"), item.get("returnReasonNote")))
        notes += [text.strip() for text in (item.get("returnReasonNote"), item.get("customerNote"))
                  if isinstance(text, str) and text.strip()]
    if not lines:
        read.fail("returnLineItems is empty")
    refunded = Decimal(0)
    refunds = read.get(node, "refunds", dict) or {}
    for index, refund in enumerate(read.get(refunds, "nodes", list, "refunds.") or []):
        if not isinstance(refund, dict):
            read.fail(f"refunds[{index}] is not an object")
        refunded += read.money(refund, "totalRefundedSet", f"refunds[{index}].")
    return ChannelReturn(
        channel=channel, external_id=return_id, order_external_id=order_id, order_number=number,
        lines=lines, reason=reasons[0], requested_at=requested, refunded=refunded,
        note="\n".join(dict.fromkeys(notes)) or None,
    )
