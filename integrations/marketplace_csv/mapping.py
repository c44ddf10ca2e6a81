"""A marketplace's orders export (CSV) read as Clerk's orders: the column mapping and pure readers.

A payload is one order's rows as the file holds them, each with its line number:
`{"order_id": "123-45" | None, "rows": [{"line": 2, "cells": {column: text}}, ...]}`.
Order-level fields are read from the order's first row that has them (a later row may leave
them blank, but not contradict them); every row with a SKU or a quantity is a line.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.money import MoneyError, to_money
from domain.orders import (
    Address,
    ChannelOrder,
    Customer,
    Lifecycle,
    OrderLine,
    Payment,
    Risk,
    expected_total,
    normalise_gateway,
)
from integrations.protocols import Payload, Unreadable

ORDER_FIELDS = (
    "order_number", "placed_at", "updated_at", "status", "currency", "shipping", "tax", "order_discount",
    "order_total", "taxes_included", "risk", "email", "customer_id", "phone", "ship_name", "ship_company",
    "ship_street1", "ship_street2", "ship_city", "ship_region", "ship_postal_code", "ship_country",
    "payment_gateway", "payment_reference",
)
LINE_FIELDS = ("sku", "title", "quantity", "unit_price", "line_total", "line_discount", "line_shipping", "line_tax",
               "requires_shipping")
FIELDS = ("order_id", *ORDER_FIELDS, *LINE_FIELDS)
# Values of these fields may be quoted in a quarantine detail; the others may be personal data.
SHOWN = frozenset({"order_number", "placed_at", "updated_at", "status", "currency", "shipping", "tax",
                   "order_discount", "order_total", "taxes_included", "risk", "ship_country",
                   "quantity", "unit_price", "line_total", "line_discount", "line_shipping", "line_tax",
                   "requires_shipping"})

DEFAULT_STATUS = {
    "open": Lifecycle.OPEN, "pending": Lifecycle.OPEN, "unshipped": Lifecycle.OPEN, "paid": Lifecycle.OPEN,
    "processing": Lifecycle.OPEN,
    "shipped": Lifecycle.FULFILLED, "delivered": Lifecycle.FULFILLED, "completed": Lifecycle.FULFILLED,
    "fulfilled": Lifecycle.FULFILLED,
    "cancelled": Lifecycle.CANCELLED, "canceled": Lifecycle.CANCELLED,
    "refunded": Lifecycle.CLOSED, "closed": Lifecycle.CLOSED,
}
_FLAGS = {"true": True, "yes": True, "y": True, "1": True, "false": False, "no": False, "n": False, "0": False}
_RISKS = {risk.value: risk for risk in Risk}
_SETTINGS = ("delimiter", "encoding", "timezone", "date_format", "decimal_comma", "taxes_included")
_TABLES = ("columns", "status", "requires_shipping")
_SPACES = "\\s\u00a0\u202f"
# Digit groups of three may be set off by the separator that is not the decimal mark, or by spaces.
_NUMBER = {
    decimal_comma: re.compile(
        rf"[+-]?(?:\d{{1,3}}([{group}{_SPACES}])\d{{3}}(?:\1\d{{3}})*|\d*)(?:{mark}\d+)?"
    )
    for decimal_comma, group, mark in ((False, ",", r"\."), (True, r"\.", ","))
}
_UNIT_PRICE_PLACES = Decimal("0.0001")  # as Clerk stores prices

# A field's columns: added up (amounts) or joined (text); each one is the first of its
# alternatives ("order-id|amazon-order-id") that the file has.
Columns = tuple[tuple[str, ...], ...]


class MappingError(ValueError):
    """A mapping that cannot be used; nothing is imported with it."""


@dataclass(frozen=True, slots=True)
class OrderMapping:
    """Which columns hold which order fields, and how the file writes its values."""

    columns: Mapping[str, Columns] = field(default_factory=lambda: {name: ((name,),) for name in FIELDS})
    status: Mapping[str, Lifecycle] = field(default_factory=lambda: dict(DEFAULT_STATUS))
    # Whether a line's `requires_shipping` value means the merchant ships it (Amazon: "Merchant" yes, "Amazon" no).
    requires_shipping: Mapping[str, bool] = field(default_factory=lambda: dict(_FLAGS))
    named: frozenset[str] = frozenset()  # fields a mapping file named: a missing column is worth a warning
    delimiter: str = ","
    encoding: str = "utf-8-sig"
    timezone: str = "UTC"  # for date-times written without an offset
    date_format: str | None = None  # a strptime format; ISO 8601 when None
    decimal_comma: bool = False
    taxes_included: bool = False  # unless a `taxes_included` column says otherwise per order

    def missing(self, header: Iterable[str]) -> list[tuple[str, str]]:
        """(field, column) for each column the mapping file named that the header lacks."""
        present = set(header)
        return [(name, "|".join(choices)) for name in FIELDS if name in self.named
                for choices in self.columns[name] if not present.intersection(choices)]


def _columns(name: str, value: Any) -> Columns:
    specs = [value] if isinstance(value, str) else value
    if not isinstance(specs, list) or not all(isinstance(spec, str) for spec in specs):
        raise MappingError(f"columns.{name} must be a column name or a list of them")
    return tuple(tuple(choice.strip() for choice in spec.split("|")) for spec in specs if spec.strip())


def _word(text: str) -> str:
    return " ".join(text.split()).casefold()


def mapping_from_toml(data: Mapping[str, Any]) -> OrderMapping:
    """An `OrderMapping` from a mapping file's TOML; its `[columns]`, `[status]` and `[requires_shipping]`
    add to the defaults."""
    unknown = sorted(set(data) - {*_SETTINGS, *_TABLES})
    if unknown:
        raise MappingError(f"unknown setting(s) {', '.join(unknown)}; column names go under [columns]")
    columns_table, status_table, shipping_table = (data.get(name, {}) for name in _TABLES)
    if not all(isinstance(table, dict) for table in (columns_table, status_table, shipping_table)):
        raise MappingError("[columns], [status] and [requires_shipping] must be tables")
    if unknown := sorted(set(columns_table) - set(FIELDS)):
        raise MappingError(f"unknown field(s) in [columns]: {', '.join(unknown)}; known: {', '.join(FIELDS)}")
    defaults = OrderMapping()
    columns = dict(defaults.columns) | {name: _columns(name, value) for name, value in columns_table.items()}
    if not columns["order_id"]:
        raise MappingError("columns.order_id must name a column")
    status = dict(defaults.status)
    for word, lifecycle in status_table.items():
        if lifecycle not in {state.value for state in Lifecycle}:
            raise MappingError(f"status {word!r} maps to {lifecycle!r}; use open, fulfilled, closed or cancelled")
        status[_word(word)] = Lifecycle(lifecycle)
    requires_shipping = dict(defaults.requires_shipping)
    for word, ships in shipping_table.items():
        if not isinstance(ships, bool):
            raise MappingError(f"requires_shipping {word!r} maps to {ships!r}; use true (the merchant ships) or false")
        requires_shipping[_word(word)] = ships
    options = {key: data[key] for key in _SETTINGS if key in data}
    mapping = OrderMapping(columns=columns, status=status, requires_shipping=requires_shipping,
                           named=frozenset(columns_table), **options)
    _check_options(mapping)
    return mapping


def _check_options(mapping: OrderMapping) -> None:
    if not isinstance(mapping.delimiter, str) or len(mapping.delimiter) != 1:
        raise MappingError(f"delimiter must be one character, not {mapping.delimiter!r}")
    if not isinstance(mapping.decimal_comma, bool) or not isinstance(mapping.taxes_included, bool):
        raise MappingError("decimal_comma and taxes_included are true or false")
    if mapping.date_format is not None and not isinstance(mapping.date_format, str):
        raise MappingError('date_format must be a strptime format such as "%m/%d/%Y %H:%M"')
    try:
        codecs.lookup(mapping.encoding)
        ZoneInfo(mapping.timezone)
    except (LookupError, TypeError, ValueError, ZoneInfoNotFoundError) as exc:
        raise MappingError(f"encoding {mapping.encoding!r} or timezone {mapping.timezone!r} is unknown") from exc


# ------------------------------------------------------------------------- rows to payloads


def _cells(cells: Mapping[str, str], columns: Columns) -> list[str]:
    """The non-blank values a field's columns hold in one row."""
    values = []
    for choices in columns:
        column = next((choice for choice in choices if choice in cells), None)
        text = (cells.get(column) or "").strip() if column else ""
        if text:
            values.append(text)
    return values


def order_id_of(row: Payload, mapping: OrderMapping) -> str | None:
    """The order id a row names; None when blank (such a row cannot be grouped: it is an order of its own)."""
    return ", ".join(_cells(row["cells"], mapping.columns["order_id"])) or None


# -------------------------------------------------------------------------- one order


class _Reader:
    """One payload's values; anything unreadable becomes `Unreadable("malformed")` naming its line."""

    def __init__(self, payload: Payload, mapping: OrderMapping):
        self.mapping = mapping
        self.external_id: str | None = payload.get("order_id")
        self.rows: list[Payload] = payload["rows"]

    def fail(self, line: int, detail: str) -> NoReturn:
        raise Unreadable("malformed", f"line {line}: {detail}", self.external_id)

    def has_column(self, name: str) -> bool:
        cells = self.rows[0]["cells"]
        return any(choice in cells for choices in self.mapping.columns[name] for choice in choices)

    def text(self, row: Payload, name: str) -> str | None:
        return ", ".join(_cells(row["cells"], self.mapping.columns[name])) or None

    def number(self, row: Payload, name: str, text: str) -> Decimal:
        if _NUMBER[self.mapping.decimal_comma].fullmatch(text) and any(ch.isdigit() for ch in text):
            mark, group = (",", ".") if self.mapping.decimal_comma else (".", ",")
            plain = re.sub(f"[{re.escape(group)}{_SPACES}]", "", text).replace(mark, ".")
            try:
                return to_money(plain)
            except MoneyError:
                pass  # too large to be a sale
        self.fail(row["line"], f"{name} {text!r} is not a number")

    def amount(self, row: Payload, name: str) -> Decimal | None:
        """The sum of the field's columns in one row; None when all are blank."""
        values = _cells(row["cells"], self.mapping.columns[name])
        if not values:
            return None
        return sum((self.number(row, name, text) for text in values), Decimal(0))

    def moment(self, row: Payload, name: str) -> datetime | None:
        text = self.text(row, name)
        if text is None:
            return None
        try:
            if self.mapping.date_format:
                moment = datetime.strptime(text, self.mapping.date_format)
            else:
                moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=ZoneInfo(self.mapping.timezone))
            return moment.astimezone(UTC)
        except (ValueError, OverflowError):
            self.fail(row["line"], f"{name} {text!r} is not a date and time")

    def choice(self, row: Payload, name: str, table: Mapping[str, Any], hint: str) -> Any:
        text = self.text(row, name)
        if text is None:
            return None
        word = _word(text)
        # "Shipped - Delivered to Buyer" reads as its first part when the table lacks the whole.
        found = table.get(word, table.get(word.split(" - ")[0]))
        if found is None:
            self.fail(row["line"], f"{name} {text!r} {hint}")
        return found

    def order_value(self, name: str, read: Callable[[Payload, str], Any] | None = None) -> Any:
        """The field's value on the first row that has one; a different value on a later row is malformed."""
        read = read or self.text
        first: tuple[int, Any] | None = None
        for row in self.rows:
            value = read(row, name)
            if value is None:
                continue
            if first is None:
                first = (row["line"], value)
            elif value != first[1]:
                shown = f" ({str(first[1])!r}, {str(value)!r})" if name in SHOWN else ""
                raise Unreadable("malformed", f"lines {first[0]} and {row['line']}: {name} differs{shown}",
                                 self.external_id)
        return first[1] if first else None

    def order_amount(self, name: str) -> Decimal:
        return self.order_value(name, self.amount) or Decimal(0)

    def order_choice(self, name: str, table: Mapping[str, Any], hint: str) -> Any:
        return self.order_value(name, lambda row, name: self.choice(row, name, table, hint))

    def row_sum(self, name: str) -> Decimal:
        return sum((amount for row in self.rows if (amount := self.amount(row, name)) is not None), Decimal(0))


def parse_order(payload: Payload, mapping: OrderMapping, channel: str) -> ChannelOrder:
    """Maps one order's rows to a `ChannelOrder`.

    Currency, line count and quantities are kept as given (a quantity as a Decimal): judging
    them is the quality suite's job. Without an `order_total` column the total is what the
    lines, discounts, shipping and tax add up to, so `total_mismatch` cannot fire.

    Raises:
        Unreadable: reason "malformed", the detail naming the line ("line 17: quantity 'two' is not a number").
    """
    read = _Reader(payload, mapping)
    first_line = read.rows[0]["line"]
    for row in read.rows:
        if row.get("overflow"):
            read.fail(row["line"], "more cells than the header has columns")
    if read.external_id is None:
        read.fail(first_line, "order_id is empty")
    placed_at = read.order_value("placed_at", read.moment)
    if placed_at is None:
        read.fail(first_line, "placed_at is empty")
    lines = [line for row in read.rows if (line := _line(read, row)) is not None]
    lifecycle = read.order_choice("status", mapping.status, "is not in the mapping's [status] table")
    taxes_included = read.order_choice("taxes_included", _FLAGS, "is not yes or no")
    risk = read.order_choice("risk", _RISKS, "is not none, low, medium, high or pending")
    order = ChannelOrder(
        channel=channel,
        external_id=read.external_id,
        number=read.order_value("order_number") or read.external_id,
        currency=(read.order_value("currency") or "").upper(),
        placed_at=placed_at,
        updated_at=read.order_value("updated_at", read.moment) or placed_at,
        lifecycle=lifecycle or Lifecycle.OPEN,
        lines=tuple(lines),
        total=Decimal(0),
        shipping=read.order_amount("shipping") + read.row_sum("line_shipping"),
        tax=read.order_amount("tax") + read.row_sum("line_tax"),
        # A discount is a reduction whichever sign the export writes it with.
        discounts=abs(read.order_amount("order_discount")) + sum((line.discount for line in lines), Decimal(0)),
        taxes_included=mapping.taxes_included if taxes_included is None else taxes_included,
        # Held for its address only if the merchant ships some of it; an order without lines is physical.
        requires_shipping=not lines or any(line.requires_shipping for line in lines),
        ship_to=_address(read),
        customer=_customer(read),
        risk=risk or Risk.NONE,
        payment=_payment(read),
    )
    if not read.has_column("order_total"):
        return replace(order, total=expected_total(order))
    total = read.order_value("order_total", read.amount)
    if total is None:
        read.fail(first_line, "order_total is empty")
    return replace(order, total=total)


def _payment(read: _Reader) -> Payment | None:
    """The optional `payment_gateway` and `payment_reference` columns (the same on every row of an order)."""
    gateway = normalise_gateway(read.order_value("payment_gateway"))
    if gateway is None:
        return None
    return Payment(gateway, read.order_value("payment_reference"))


def _line(read: _Reader, row: Payload) -> OrderLine | None:
    """The row's line; None for a row with neither SKU nor quantity (order fields only).

    The quantity stays as read, blank as None: whether it is a positive whole number is the suite's call.
    A blank `requires_shipping` reads as yes: a line nobody said is digital is checked for an address.
    """
    sku = read.text(row, "sku")
    text = read.text(row, "quantity")
    quantity = None if text is None else read.number(row, "quantity", text)
    if sku is None and quantity is None:
        return None
    unit_price = read.amount(row, "unit_price")
    if unit_price is None:
        line_total = read.amount(row, "line_total")
        if line_total is None:
            read.fail(row["line"], "unit_price is empty")
        whole = quantity is not None and quantity > 0 and quantity == int(quantity)
        unit_price = (line_total / quantity).quantize(_UNIT_PRICE_PLACES) if whole else line_total
    return OrderLine(
        sku=sku,
        title=read.text(row, "title") or sku or "",
        quantity=quantity,
        unit_price=unit_price,
        discount=abs(read.amount(row, "line_discount") or Decimal(0)),
        requires_shipping=read.choice(row, "requires_shipping", read.mapping.requires_shipping,
                                      "is not in the mapping's [requires_shipping] table") is not False,
    )


def _address(read: _Reader) -> Address | None:
    address = Address(
        name=read.order_value("ship_name"),
        company=read.order_value("ship_company"),
        street1=read.order_value("ship_street1"),
        street2=read.order_value("ship_street2"),
        city=read.order_value("ship_city"),
        province=read.order_value("ship_region"),
        postal_code=read.order_value("ship_postal_code"),
        country=(read.order_value("ship_country") or "").upper() or None,
        phone=read.order_value("phone"),
    )
    return None if address == Address() else address


def _customer(read: _Reader) -> Customer | None:
    customer = Customer(
        external_id=read.order_value("customer_id"),
        email=read.order_value("email"),
        phone=read.order_value("phone"),
    )
    return None if customer == Customer() else customer
