"""Write-backs in the Shopify sandbox: stock, order notes, fulfillments and refunds.

Serves `inventorySetQuantities`, `orderUpdate` (the note), `fulfillmentCreate` and
`refundCreate` over the seeded store, plus what a client reads to make them: a `location`,
a variant's `inventoryItem` (with its `inventoryLevel` there), an order's
`fulfillmentOrders` (and `fulfillmentOrder` by id, with its lines and fulfillments),
`fulfillments` (and `fulfillment` by id), `transactions` and `refunds`. Connections page
with cursors as Shopify's do. Writes are kept beside the store and recorded in `writes`.

As on Shopify, `fulfillmentCreate` takes fulfillment orders of one assigned location only,
and `refundCreate` refunds in the order's presentment currency, which it must name when
that is not the shop's.

`inventorySetQuantities` compares each quantity's `changeFromQuantity` (required, null
skips it) with the count it would replace and refuses the whole mutation when one differs
(CHANGE_FROM_QUANTITY_STALE). It and `refundCreate` require Shopify's `@idempotent(key:)`
directive (since 2026-04): the same key with the same input answers the first result
and writes nothing; with other input, Shopify's IDEMPOTENCY_KEY_PARAMETER_MISMATCH.
`lose_write_responses(n)` cuts the connection after the next `n` writes were applied,
as a lost answer would.

The sandbox's simplifications: an order has one fulfillment order, at the primary location,
until `split_fulfillment_orders` places whole lines on several; stock is kept and returned
at the primary location only; one SALE transaction per order (its total, through the store's gateway for it: `gateway_of`);
a presentment currency (`present_in`) shows on transactions and refunds only; writes do not
move the order's `updatedAt`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from itertools import count
from typing import Any

from graphql import GraphQLError, get_directive_values
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.orders import Lifecycle
from integrations.sandbox.shopify.render import (
    Renderer,
    gid,
    money_bag,
    paged,
    parse_gid,
    timestamp,
)
from integrations.sandbox.store import Line, Order, Store, Variant, payment_gateway, payment_reference

PRIMARY_LOCATION = 1
LOCATION_ID = gid("Location", PRIMARY_LOCATION)
# Shopify's gateway names for the store's payment gateways (`store.payment_gateway`).
GATEWAYS = {"stripe": "stripe", "paypal": "paypal"}


def gateway_of(order: Order) -> str:
    """The gateway that took the order's money, as Shopify names it on its transactions."""
    return GATEWAYS[payment_gateway(order.id)]
# Reasons inventorySetQuantities accepts (Shopify's documented list, in part).
STOCK_REASONS = frozenset({"correction", "cycle_count_available", "damaged", "movement_created", "movement_updated",
                           "movement_received", "movement_canceled", "other", "promotion", "quality_control",
                           "received", "reservation_created", "reservation_deleted", "reservation_updated",
                           "restock", "safety_stock", "shrinkage"})
STOCK_NAMES = ("available", "on_hand")
_IDEMPOTENT = ("inventorySetQuantities", "refundCreate")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _error(message: str, field: list[str], code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"field": field, "message": message}
    if code is not None:
        error["code"] = code
    return error


@dataclass(frozen=True, slots=True)
class FulfillmentOrder:
    """Lines of an order to ship from one location; `number` is its gid's."""

    number: int
    location: int
    line_ids: tuple[int, ...]


class ShopifyWrites:
    """The writes a Shopify sandbox took, and the resolvers that take them."""

    def __init__(self, store: Store, renderer: Renderer):
        self.store = store
        self.renderer = renderer
        self.writes: list[dict[str, Any]] = []
        self.notes: dict[int, str] = {}
        self.available: dict[int, int] = {}  # by variant id, once written
        self.stock_writes: list[tuple[str, int]] = []  # (SKU, units) of every count the API set, in order
        self.fulfilled: Counter[int] = Counter()  # units by line id
        self.refunded_units: Counter[int] = Counter()
        self.refunded_money: dict[int, Decimal] = {}
        self.fulfillments: dict[int, list[dict[str, Any]]] = {}
        self.refunds: dict[int, list[dict[str, Any]]] = {}
        self.locations: dict[int, str] = {PRIMARY_LOCATION: "Sandbox warehouse"}
        self.placements: dict[int, list[FulfillmentOrder]] = {}  # by order id, once split
        self.presentment: dict[int, tuple[str, Decimal]] = {}  # by order id: currency, units per shop unit
        self._placed: dict[int, tuple[Order, FulfillmentOrder]] = {}  # by fulfillment order number
        self._fulfillments_by_id: dict[int, dict[str, Any]] = {}
        self.lost_responses = 0
        self._lose = 0
        self._keys: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        self._ids = count(1)
        self._variants_by_sku = {v.sku: v for v in store.variants}
        self._extend_renderer()

    # -- the Python face -------------------------------------------------------------------------

    def lose_write_responses(self, count: int = 1) -> None:
        """Applies the next `count` writes, then cuts each one's connection before its answer."""
        self._lose = count

    def split_fulfillment_orders(self, order_id: int, placements: Sequence[tuple[int, Sequence[int]]]) -> list[str]:
        """Places an unshipped order's lines on fulfillment orders, one per (location number, line ids),
        as Shopify's order routing does; returns their ids. A location not seen before is added.

        Raises:
            ValueError: unless every line of the order goes on exactly one, before any shipment.
        """
        order = self.store.order(order_id)
        if order is None or self.fulfillments.get(order_id):
            raise ValueError(f"order {order_id} is not there, or has shipped already")
        if sorted(n for _, lines in placements for n in lines) != sorted(line.id for line in order.lines):
            raise ValueError("every line of the order must go on exactly one fulfillment order")
        for earlier in self.placements.pop(order_id, []):
            del self._placed[earlier.number]
        made = []
        for location, line_ids in placements:
            self.locations.setdefault(location, f"Sandbox location {location}")
            placement = FulfillmentOrder(next(self._ids), location, tuple(line_ids))
            self._placed[placement.number] = (order, placement)
            made.append(placement)
        self.placements[order_id] = made
        return [gid("FulfillmentOrder", placement.number) for placement in made]

    def present_in(self, order_id: int, currency: str, rate: Decimal) -> None:
        """Has an order's buyer pay in `currency`, `rate` units of it per unit of the shop's."""
        self.presentment[order_id] = (currency, rate)

    def stock(self, sku: str) -> int:
        """Units available for `sku` at the location: as written, else the store's on hand."""
        variant = self._variants_by_sku[sku]
        return self.available.get(variant.id, self.store.on_hand.get(sku, 0))

    def edit_stock(self, sku: str, units: int) -> None:
        """Sets a count as a merchant does in Shopify's admin (not one of the API's writes)."""
        self.available[self._variants_by_sku[sku].id] = units

    def resolvers(self) -> dict[str, Callable[..., Any]]:
        """Root fields to add to the sandbox's root value."""
        return {"location": self._location, "fulfillmentOrder": self._fulfillment_order_by_id,
                "fulfillment": self._fulfillment_by_id, "inventorySetQuantities": self._set_quantities,
                "orderUpdate": self._order_update, "fulfillmentCreate": self._fulfillment_create,
                "refundCreate": self._refund_create}

    def losing(self, app: ASGIApp) -> ASGIApp:
        """`app`, cutting the answer of a request that wrote while `lose_write_responses` asks it to."""

        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["path"].startswith("/sandbox/"):
                await app(scope, receive, send)
                return
            before = len(self.writes)

            async def maybe_lose(message: Message) -> None:
                # The answer starts once the write is applied: the client hears half of it.
                if message["type"] == "http.response.start" and len(self.writes) > before and self._lose > 0:
                    self._lose -= 1
                    self.lost_responses += 1
                    await send({"type": "http.response.start", "status": 200, "headers": [
                        (b"content-type", b"application/json"), (b"content-length", b"4096")]})
                    await send({"type": "http.response.body", "body": b'{"data": {', "more_body": True})
                    raise ConnectionAbortedError("sandbox dropped the answer to a write it applied")
                await send(message)

            await app(scope, receive, maybe_lose)

        return wrapped

    # -- reads ------------------------------------------------------------------------------------

    def _extend_renderer(self) -> None:
        renderer = self.renderer
        renderer.order_fields |= {
            "note": lambda o: self.notes.get(o.id),
            "presentmentCurrencyCode": lambda o: self._presentment(o)[0],
            "displayFulfillmentStatus": self._fulfillment_status,
            "fulfillmentOrders": lambda o: lambda _info, first=None, after=None, reverse=False, query=None, \
                displayable=False: paged(self._fulfillment_orders(o)[::-1 if reverse else 1], lambda fo: fo.number,
                                         lambda fo: self._fulfillment_order_view(o, fo), first, after),
            "fulfillments": lambda o: lambda _info, first=None, query=None: [
                self._fulfillment_view(f) for f in self.fulfillments.get(o.id, [])][:first],
            "transactions": lambda o: lambda _info, first=None, capturable=None, manuallyResolvable=None:
                self._transactions(o)[:first],
            "refunds": lambda o: lambda _info, first=None: [self._refund_view(r) for r in self.refunds.get(o.id, [])][
                :first],
        }
        renderer.line_fields |= {
            "refundableQuantity": lambda lo: max(0, lo[0].quantity - self.refunded_units[lo[0].id]),
            "unfulfilledQuantity": lambda lo: self._remaining(lo[0], lo[1]),
        }
        renderer.variant_fields |= {"inventoryItem": self._inventory_item}

    def _location(self, _info: Any, id: str | None = None) -> dict[str, Any] | None:
        number = PRIMARY_LOCATION if id is None else parse_gid(id, "Location")
        return self._location_view(number) if number in self.locations else None

    def _location_view(self, number: int) -> dict[str, Any]:
        return {"id": gid("Location", number), "legacyResourceId": str(number), "name": self.locations[number],
                "isActive": True}

    def _inventory_item(self, variant: Variant) -> dict[str, Any]:
        return {"id": gid("InventoryItem", variant.id), "legacyResourceId": str(variant.id), "sku": variant.sku,
                "tracked": True, "inventoryLevel": lambda _info, locationId, includeInactive=False:
                self._inventory_level(variant, locationId)}

    def _inventory_level(self, variant: Variant, location_id: str) -> dict[str, Any] | None:
        """The item's level at a location: only the primary one stocks anything."""
        if parse_gid(location_id, "Location") != PRIMARY_LOCATION:
            return None
        units = self.stock(variant.sku)
        return {"id": f"{gid('InventoryLevel', variant.id)}?inventory_item_id={variant.id}", "isActive": True,
                "location": self._location_view(PRIMARY_LOCATION),
                "quantities": lambda _info, names: [
                    {"id": f"{gid('InventoryQuantity', variant.id)}?name={name}", "name": name, "quantity": units}
                    for name in names if name in STOCK_NAMES]}

    def _remaining(self, line: Line, order: Order) -> int:
        if order.lifecycle is not Lifecycle.OPEN or not line.requires_shipping:
            return 0
        return max(0, line.quantity - self.fulfilled[line.id] - self.refunded_units[line.id])

    def _fulfillment_status(self, order: Order) -> str:
        done = order.lifecycle in (Lifecycle.FULFILLED, Lifecycle.CLOSED) or (
            order.lifecycle is Lifecycle.OPEN and self.fulfillments.get(order.id)
            and all(self._remaining(line, order) == 0 for line in order.lines))
        return "FULFILLED" if done else "UNFULFILLED"

    def _fulfillment_orders(self, order: Order) -> list[FulfillmentOrder]:
        """The order's fulfillment orders: as split, else one of all its lines numbered as the order."""
        return self.placements.get(order.id) or [
            FulfillmentOrder(order.id, PRIMARY_LOCATION, tuple(line.id for line in order.lines))]

    def _find_fulfillment_order(self, value: str) -> tuple[Order, FulfillmentOrder] | None:
        number = parse_gid(value, "FulfillmentOrder")
        if number is None:
            return None
        if number in self._placed:
            return self._placed[number]
        order = self.store.order(number)  # an order not split: its one fulfillment order has its number
        if order is None or order.id in self.placements:
            return None
        return order, self._fulfillment_orders(order)[0]

    @staticmethod
    def _lines_on(order: Order, placement: FulfillmentOrder) -> list[Line]:
        return [line for line in order.lines if line.id in placement.line_ids]

    def _made_from(self, order: Order, placement: FulfillmentOrder) -> list[dict[str, Any]]:
        return [f for f in self.fulfillments.get(order.id, []) if placement.number in f["fulfillment_orders"]]

    def _fulfillment_order_status(self, order: Order, placement: FulfillmentOrder) -> str:
        if order.lifecycle is Lifecycle.CANCELLED:
            return "CANCELLED"
        if any(self._remaining(line, order) for line in self._lines_on(order, placement)):
            return "IN_PROGRESS" if self._made_from(order, placement) else "OPEN"
        return "CLOSED"

    def _fulfillment_order_view(self, order: Order, placement: FulfillmentOrder) -> dict[str, Any]:
        def line_view(line: Line) -> dict[str, Any]:
            return {"id": gid("FulfillmentOrderLineItem", line.id), "sku": line.sku,
                    "remainingQuantity": self._remaining(line, order), "totalQuantity": line.quantity,
                    "lineItem": self.renderer.line(line, order)}

        return {
            "id": gid("FulfillmentOrder", placement.number), "status": self._fulfillment_order_status(order, placement),
            "assignedLocation": {"name": self.locations[placement.location],
                                 "location": self._location_view(placement.location)},
            "lineItems": lambda _info, first=None, after=None, reverse=False: paged(
                self._lines_on(order, placement)[::-1 if reverse else 1], lambda line: line.id, line_view, first,
                after),
            "fulfillments": lambda _info, first=None, after=None, reverse=False: paged(
                self._made_from(order, placement)[::-1 if reverse else 1], lambda f: f["id"], self._fulfillment_view,
                first, after),
        }

    def _fulfillment_order_by_id(self, _info: Any, id: str) -> dict[str, Any] | None:
        found = self._find_fulfillment_order(id)
        return self._fulfillment_order_view(*found) if found else None

    def _fulfillment_view(self, record: dict[str, Any]) -> dict[str, Any]:
        order = record["order"]
        items = list(enumerate(record["lines"]))

        def item_view(item: tuple[int, tuple[Line, int]]) -> dict[str, Any]:
            n, (line, units) = item
            return {"id": gid("FulfillmentLineItem", record["id"] * 100_000 + n), "quantity": units,
                    "lineItem": self.renderer.line(line, order)}

        return {
            "id": gid("Fulfillment", record["id"]), "legacyResourceId": str(record["id"]), "name": record["name"],
            "status": "SUCCESS", "createdAt": timestamp(record["at"]),
            "location": self._location_view(record["location"]),
            "trackingInfo": lambda _info, first=None: record["tracking"][:first],
            "fulfillmentLineItems": lambda _info, first=None, after=None, reverse=False: paged(
                items[::-1 if reverse else 1], lambda item: item[0], item_view, first, after),
        }

    def _fulfillment_by_id(self, _info: Any, id: str) -> dict[str, Any] | None:
        number = parse_gid(id, "Fulfillment")
        record = self._fulfillments_by_id.get(number) if number is not None else None
        return self._fulfillment_view(record) if record else None

    def _presentment(self, order: Order) -> tuple[str, Decimal]:
        return self.presentment.get(order.id, (order.currency, Decimal(1)))

    def _paid(self, order: Order) -> str:
        """The order's total as its buyer paid it, in the presentment currency."""
        _, rate = self._presentment(order)
        return order.total if rate == 1 else f"{Decimal(order.total) * rate:.2f}"

    def _money(self, order: Order, presented: str) -> dict[str, Any]:
        """A MoneyBag of an amount in the order's presentment currency, with the shop's beside it."""
        currency, rate = self._presentment(order)
        shop = presented if rate == 1 else f"{Decimal(presented) / rate:.2f}"
        return money_bag(shop, order.currency, (presented, currency))

    def _transactions(self, order: Order) -> list[dict[str, Any]]:
        gateway = gateway_of(order)
        sale = {"id": gid("OrderTransaction", order.id), "kind": "SALE", "status": "SUCCESS", "gateway": gateway,
                "paymentId": payment_reference(order.id),
                "amountSet": self._money(order, self._paid(order)), "parentTransaction": None}
        refunds = [{"id": gid("OrderTransaction", r["transaction"]), "kind": "REFUND", "status": "SUCCESS",
                    "gateway": gateway, "paymentId": None, "amountSet": self._money(order, f"{r['amount']:.2f}"),
                    "parentTransaction": sale} for r in self.refunds.get(order.id, []) if r["amount"] > 0]
        return [sale, *refunds]

    def _refund_view(self, record: dict[str, Any]) -> dict[str, Any]:
        return {"id": gid("Refund", record["id"]), "legacyResourceId": str(record["id"]), "note": record["note"],
                "createdAt": timestamp(record["at"]),
                "totalRefundedSet": self._money(record["order"], f"{record['amount']:.2f}")}

    # -- idempotency ------------------------------------------------------------------------------

    @staticmethod
    def _key(info: Any) -> str:
        directive = info.schema.get_directive("idempotent")
        values = get_directive_values(directive, info.field_nodes[0], info.variable_values) or {}
        key = values.get("key")
        if not isinstance(key, str) or not key.strip():
            raise GraphQLError(f"The @idempotent directive with a non-blank key is required for {info.field_name}.")
        return key

    def _idempotent(self, info: Any, arguments: dict[str, Any],
                    write: Callable[[], dict[str, Any]], mismatch: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Runs `write` once per key: a repeat answers the first result (a refusal is not kept)."""
        key = self._key(info)
        fingerprint = json.dumps(arguments, sort_keys=True, default=str)
        seen = self._keys.get((info.field_name, key))
        if seen is not None:
            return seen[1] if seen[0] == fingerprint else mismatch()
        result = write()
        if not result["userErrors"]:
            self._keys[(info.field_name, key)] = (fingerprint, result)
        return result

    # -- writes -----------------------------------------------------------------------------------

    def _order_of(self, value: str) -> Order | None:
        number = parse_gid(value, "Order")
        return self.store.order(number) if number is not None else None

    def _record(self, kind: str, **details: Any) -> None:
        self.writes.append({"kind": kind, **details})

    def _set_quantities(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        def refuse(message: str, field: list[str], code: str) -> dict[str, Any]:
            return {"inventoryAdjustmentGroup": None, "userErrors": [_error(message, field, code)]}

        def write() -> dict[str, Any]:
            if input["name"] not in STOCK_NAMES:
                return refuse("The quantity name must be 'available' or 'on_hand'.", ["input", "name"], "INVALID_NAME")
            if input["reason"] not in STOCK_REASONS:
                return refuse("The specified reason is invalid.", ["input", "reason"], "INVALID_REASON")
            changes: dict[int, int] = {}
            for index, quantity in enumerate(input["quantities"]):
                path = ["input", "quantities", str(index)]
                if quantity["locationId"] != LOCATION_ID:
                    return refuse("The specified location could not be found.", [*path, "locationId"],
                                  "INVALID_LOCATION")
                number = parse_gid(quantity["inventoryItemId"], "InventoryItem")
                variant = self.renderer.variants.get(number) if number is not None else None
                if variant is None:
                    return refuse("The specified inventory item could not be found.", [*path, "inventoryItemId"],
                                  "INVALID_INVENTORY_ITEM")
                if "changeFromQuantity" not in quantity:
                    return refuse("changeFromQuantity is required; pass null to skip the check.",
                                  [*path, "changeFromQuantity"], "COMPARE_QUANTITY_REQUIRED")
                expected = quantity["changeFromQuantity"]
                if expected is not None and expected != self.stock(variant.sku):
                    return refuse("The compared quantity is stale.", [*path, "changeFromQuantity"],
                                  "CHANGE_FROM_QUANTITY_STALE")
                if quantity["quantity"] < 0:
                    return refuse("The quantity can't be negative.", [*path, "quantity"],
                                  "INVALID_QUANTITY_NEGATIVE")
                changes[variant.id] = quantity["quantity"]
            self.available.update(changes)
            self.stock_writes += [(self.renderer.variants[v].sku, n) for v, n in changes.items()]
            group = next(self._ids)
            self._record("stock", id=group, levels={self.renderer.variants[v].sku: n for v, n in changes.items()})
            return {"inventoryAdjustmentGroup": {
                "id": gid("InventoryAdjustmentGroup", group), "createdAt": timestamp(_now()),
                "reason": input["reason"], "referenceDocumentUri": input.get("referenceDocumentUri")},
                "userErrors": []}

        return self._idempotent(info, input, write, lambda: refuse(
            "The same idempotency key was used with different parameters.", ["input"],
            "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"))

    def _order_update(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
        order = self._order_of(input["id"])
        if order is None:
            return {"order": None, "userErrors": [_error("Order does not exist", ["id"])]}
        if "note" in input:
            self.notes[order.id] = input["note"] or ""
            self._record("note", order_id=order.id, note=input["note"])
        return {"order": self.renderer.order(order), "userErrors": []}

    def _fulfillment_create(self, _info: Any, fulfillment: dict[str, Any], message: str | None = None
                            ) -> dict[str, Any]:
        def refuse(text: str) -> dict[str, Any]:
            return {"fulfillment": None, "userErrors": [_error(text, ["fulfillment", "lineItemsByFulfillmentOrder"])]}

        groups = fulfillment["lineItemsByFulfillmentOrder"]
        if not groups:
            return refuse("Line items by fulfillment order can't be blank.")
        found = [self._find_fulfillment_order(group["fulfillmentOrderId"]) for group in groups]
        if None in found or len({order.id for order, _ in found}) != 1:
            return refuse("Fulfillment orders must exist and belong to one order.")
        if len({placement.location for _, placement in found}) != 1:
            return refuse("All fulfillment orders must be assigned to a single location.")
        order = found[0][0]
        asked: Counter[int] = Counter()  # units by line id, over every group
        for group, (_, placement) in zip(groups, found, strict=True):
            if self._fulfillment_order_status(order, placement) not in ("OPEN", "IN_PROGRESS"):
                return refuse("Fulfillment order is not in a fulfillable state.")
            lines = {line.id: line for line in self._lines_on(order, placement)}
            items = group.get("fulfillmentOrderLineItems")
            if not items:
                asked.update({line.id: self._remaining(line, order) for line in lines.values()})
                continue
            for item in items:
                line = lines.get(parse_gid(item["id"], "FulfillmentOrderLineItem") or -1)
                if line is None:
                    return refuse("Fulfillment order line item does not exist.")
                asked[line.id] += item["quantity"]
                if item["quantity"] <= 0 or asked[line.id] > self._remaining(line, order):
                    return refuse(f"Invalid quantity {item['quantity']} for line item {line.id}.")
        shipped = [(line, asked[line.id]) for line in order.lines if asked[line.id] > 0]
        if not shipped:
            return refuse("Nothing is left to fulfill.")
        for line, units in shipped:
            self.fulfilled[line.id] += units
        tracking = fulfillment.get("trackingInfo") or {}
        numbers = tracking.get("numbers") or ([tracking["number"]] if tracking.get("number") else [])
        urls = tracking.get("urls") or ([tracking["url"]] if tracking.get("url") else [])
        infos = [{"number": n, "company": tracking.get("company"), "url": urls[i] if i < len(urls) else None}
                 for i, n in enumerate(numbers)]
        number = next(self._ids)
        earlier = self.fulfillments.setdefault(order.id, [])
        record = {"id": number, "order": order, "name": f"#{order.number}-F{len(earlier) + 1}", "at": _now(),
                  "tracking": infos, "lines": shipped, "location": found[0][1].location,
                  "fulfillment_orders": {placement.number for _, placement in found}}
        earlier.append(record)
        self._fulfillments_by_id[number] = record
        self._record("fulfillment", id=number, order_id=order.id, lines={line.sku: n for line, n in shipped},
                     tracking=numbers, location=record["location"])
        return {"fulfillment": self._fulfillment_view(record), "userErrors": []}

    def _refund_create(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        def refuse(text: str, field: list[str]) -> dict[str, Any]:
            return {"refund": None, "order": None, "userErrors": [_error(text, ["input", *field])]}

        def write() -> dict[str, Any]:
            order = self._order_of(input["orderId"])
            if order is None:
                return refuse("Order does not exist.", ["orderId"])
            currency, _ = self._presentment(order)
            if input.get("currency") is None and currency != order.currency:
                return refuse("Currency is required when the order's presentment currency is not the shop's.",
                              ["currency"])
            if input.get("currency") not in (None, currency):
                return refuse(f"Currency must be the order's presentment currency, {currency}.", ["currency"])
            lines = {line.id: line for line in order.lines}
            returned: list[tuple[Line, int, bool]] = []
            for index, item in enumerate(input.get("refundLineItems") or []):
                path = ["refundLineItems", str(index)]
                line = lines.get(parse_gid(item["lineItemId"], "LineItem") or -1)
                if line is None:
                    return refuse("Line item does not exist on the order.", [*path, "lineItemId"])
                if not 0 < item["quantity"] <= line.quantity - self.refunded_units[line.id]:
                    return refuse("Quantity cannot refund more items than were purchased.", [*path, "quantity"])
                restock = item.get("restockType") == "RETURN"
                if restock and item.get("locationId") != LOCATION_ID:
                    return refuse("Location is required to restock a returned item.", [*path, "locationId"])
                returned.append((line, item["quantity"], restock))
            amount = Decimal(0)
            paid = Decimal(self._paid(order))
            for index, transaction in enumerate(input.get("transactions") or []):
                path = ["transactions", str(index)]
                if transaction["kind"] != "REFUND" or transaction.get("parentId") != gid("OrderTransaction", order.id):
                    return refuse("Transaction must be a refund of the order's sale.", [*path, "parentId"])
                if transaction["gateway"] != gateway_of(order) or transaction["orderId"] != gid("Order", order.id):
                    return refuse("Transaction gateway or order does not match its parent.", path)
                try:
                    amount += Decimal(str(transaction["amount"]))
                except InvalidOperation:
                    return refuse("Amount is invalid.", [*path, "amount"])
            if amount < 0 or amount > paid - self.refunded_money.get(order.id, Decimal(0)):
                return refuse("Refund amount exceeds the amount that can be refunded.", ["transactions"])
            if not returned and not amount:
                return refuse("A refund needs line items or transactions.", [])
            for line, units, restock in returned:
                self.refunded_units[line.id] += units
                if restock and line.variant_id in self.renderer.variants:
                    variant = self.renderer.variants[line.variant_id]
                    self.available[variant.id] = self.stock(variant.sku) + units
            self.refunded_money[order.id] = self.refunded_money.get(order.id, Decimal(0)) + amount
            number, transaction_number = next(self._ids), next(self._ids)
            record = {"id": number, "transaction": transaction_number, "order": order, "note": input.get("note"),
                      "at": _now(), "amount": amount}
            self.refunds.setdefault(order.id, []).append(record)
            self._record("refund", id=number, order_id=order.id, amount=amount, currency=currency,
                         lines={line.sku: units for line, units, _ in returned})
            return {"refund": self._refund_view(record), "order": self.renderer.order(order), "userErrors": []}

        return self._idempotent(info, input, write, lambda: refuse(
            "The same idempotency key was used with different parameters.", []))
