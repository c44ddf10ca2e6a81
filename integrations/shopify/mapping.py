"""Shopify GraphQL Admin JSON to and from Clerk's types: pure functions, no I/O.

`client.py` builds requests with the `build_*` functions and reads every response with
the `parse_*` ones. Orders arrive in one normalised shape whether they came from a page
of `orders` or a bulk export: the order node with `"lineItems": {"nodes": [...]}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, NoReturn

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
from domain.orders import Address, ChannelOrder, Customer, Lifecycle, OrderLine, Risk
from integrations.protocols import CatalogItem, ExportStatus, Payload, Unreadable, UpstreamError

CHANNEL = "shopify"


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


class _Reader:
    """Typed access to one order's fields; any surprise becomes `Unreadable("malformed")`.

    A field is named by `where` (the path of the object it is in) and its key, joined only
    when something is wrong: building every path up front cost a tenth of the parse.
    Details name the field only, never its value: values may be personal data.
    """

    def __init__(self, external_id: str | None):
        self.external_id = external_id

    def fail(self, detail: str) -> NoReturn:
        raise Unreadable("malformed", detail, self.external_id)

    def get(self, node: Payload, key: str, kind: type, where: str = "", required: bool = False) -> Any:
        value = node.get(key)
        if type(value) is kind:  # the usual case, decided at once
            return value
        if value is None:
            if required:
                self.fail(f"{where}{key} is missing")
            return None
        if not isinstance(value, kind):
            self.fail(f"{where}{key} is not {_KIND_NAMES[kind]}")
        return value

    def text(self, node: Payload, key: str, where: str = "", required: bool = False) -> str | None:
        value = self.get(node, key, str, where, required)
        if required and not value.strip():
            self.fail(f"{where}{key} is empty")
        return value

    def timestamp(self, node: Payload, key: str, where: str = "", required: bool = False) -> datetime | None:
        value = self.get(node, key, str, where, required)
        if value is None:
            return None
        moment = _read_timestamp(value)
        if moment is None:
            self.fail(f"{where}{key} is not a timestamp with a time zone")
        return moment

    def money(self, node: Payload, key: str, where: str = "", required: bool = False) -> Decimal:
        money_set = self.get(node, key, dict, where, required)
        if money_set is None:
            return Decimal(0)
        shop_money = self.get(money_set, "shopMoney", dict, f"{where}{key}.", required=True)
        try:
            return to_money(shop_money.get("amount"))
        except MoneyError:
            self.fail(f"{where}{key}.shopMoney.amount is not an amount")

    def flag(self, node: Payload, key: str, default: bool, where: str = "") -> bool:
        value = self.get(node, key, bool, where)
        return default if value is None else value


_KIND_NAMES: dict[type, str] = {str: "a string", dict: "an object", list: "a list", bool: "a boolean"}

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
    )


def _lifecycle(read: _Reader, payload: Payload) -> Lifecycle:
    if read.timestamp(payload, "cancelledAt") is not None:
        return Lifecycle.CANCELLED
    if read.get(payload, "displayFulfillmentStatus", str) == "FULFILLED":
        return Lifecycle.FULFILLED
    if read.flag(payload, "closed", False):
        return Lifecycle.CLOSED
    return Lifecycle.OPEN


def _quantity(value: Any) -> Decimal | None:
    """A line's quantity as read: a Decimal for any finite number, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    amount = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    return amount if amount.is_finite() else None


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
                quantity=_quantity(node.get("quantity")),
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
