"""Write-backs in the Shopify sandbox: stock, order notes, fulfillments and refunds.

Serves `inventorySetQuantities`, `orderUpdate` (the note), `fulfillmentCreate` and
`refundCreate` over the seeded store, plus what a client reads to make them: the primary
`location`, a variant's `inventoryItem`, an order's `fulfillmentOrders`, `fulfillments`,
`transactions` and `refunds`. Writes are kept beside the store and recorded in `writes`.

`inventorySetQuantities` and `refundCreate` require Shopify's `@idempotent(key:)`
directive (since 2026-04): the same key with the same input answers the first result
and writes nothing; with other input, Shopify's IDEMPOTENCY_KEY_PARAMETER_MISMATCH.
`lose_write_responses(n)` cuts the connection after the next `n` writes were applied,
as a lost answer would.

The sandbox's simplifications: one location (the primary), one fulfillment order per
order, one SALE transaction per order (its total, gateway "manual"); writes do not move
the order's `updatedAt`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from itertools import count
from typing import Any

from graphql import GraphQLError, get_directive_values
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.orders import Lifecycle
from integrations.sandbox.shopify.render import (
    Renderer,
    connection,
    encode_cursor,
    gid,
    money_bag,
    parse_gid,
    timestamp,
)
from integrations.sandbox.store import Line, Order, Store, Variant

LOCATION_ID = gid("Location", 1)
GATEWAY = "manual"
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


class ShopifyWrites:
    """The writes a Shopify sandbox took, and the resolvers that take them."""

    def __init__(self, store: Store, renderer: Renderer):
        self.store = store
        self.renderer = renderer
        self.writes: list[dict[str, Any]] = []
        self.notes: dict[int, str] = {}
        self.available: dict[int, int] = {}  # by variant id, once written
        self.fulfilled: Counter[int] = Counter()  # units by line id
        self.refunded_units: Counter[int] = Counter()
        self.refunded_money: dict[int, Decimal] = {}
        self.fulfillments: dict[int, list[dict[str, Any]]] = {}
        self.refunds: dict[int, list[dict[str, Any]]] = {}
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

    def stock(self, sku: str) -> int:
        """Units available for `sku` at the location: as written, else the store's on hand."""
        variant = self._variants_by_sku[sku]
        return self.available.get(variant.id, self.store.on_hand.get(sku, 0))

    def resolvers(self) -> dict[str, Callable[..., Any]]:
        """Root fields to add to the sandbox's root value."""
        return {"location": self._location, "inventorySetQuantities": self._set_quantities,
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
            "displayFulfillmentStatus": self._fulfillment_status,
            "fulfillmentOrders": lambda o: lambda _info, first=None, after=None, reverse=False, query=None, \
                displayable=False: self._fulfillment_orders(o),
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
        if id is not None and id != LOCATION_ID:
            return None
        return {"id": LOCATION_ID, "legacyResourceId": "1", "name": "Sandbox warehouse", "isActive": True}

    @staticmethod
    def _inventory_item(variant: Variant) -> dict[str, Any]:
        return {"id": gid("InventoryItem", variant.id), "legacyResourceId": str(variant.id), "sku": variant.sku,
                "tracked": True}

    def _remaining(self, line: Line, order: Order) -> int:
        if order.lifecycle is not Lifecycle.OPEN or not line.requires_shipping:
            return 0
        return max(0, line.quantity - self.fulfilled[line.id] - self.refunded_units[line.id])

    def _fulfillment_status(self, order: Order) -> str:
        done = order.lifecycle in (Lifecycle.FULFILLED, Lifecycle.CLOSED) or (
            order.lifecycle is Lifecycle.OPEN and self.fulfillments.get(order.id)
            and all(self._remaining(line, order) == 0 for line in order.lines))
        return "FULFILLED" if done else "UNFULFILLED"

    def _fulfillment_order_status(self, order: Order) -> str:
        if order.lifecycle is Lifecycle.CANCELLED:
            return "CANCELLED"
        if any(self._remaining(line, order) for line in order.lines):
            return "IN_PROGRESS" if self.fulfillments.get(order.id) else "OPEN"
        return "CLOSED"

    def _fulfillment_orders(self, order: Order) -> dict[str, Any]:
        def lines(_info: Any, first: int | None = None, after: str | None = None, reverse: bool = False) -> Any:
            chosen = order.lines[: first]
            return connection(
                [{"id": gid("FulfillmentOrderLineItem", line.id), "sku": line.sku,
                  "remainingQuantity": self._remaining(line, order), "totalQuantity": line.quantity,
                  "lineItem": self.renderer.line(line, order)} for line in chosen],
                [encode_cursor(line.id, line.id) for line in chosen], len(order.lines) > len(chosen), False)

        node = {"id": gid("FulfillmentOrder", order.id), "status": self._fulfillment_order_status(order),
                "lineItems": lines}
        return connection([node], [encode_cursor(order.id, order.id)], False, False)

    def _fulfillment_view(self, record: dict[str, Any]) -> dict[str, Any]:
        order = record["order"]
        items = [{"id": gid("FulfillmentLineItem", n), "quantity": units, "lineItem": self.renderer.line(line, order)}
                 for n, (line, units) in enumerate(record["lines"], start=record["id"] * 1000)]
        return {
            "id": gid("Fulfillment", record["id"]), "legacyResourceId": str(record["id"]), "name": record["name"],
            "status": "SUCCESS", "createdAt": timestamp(record["at"]),
            "trackingInfo": lambda _info, first=None: record["tracking"][:first],
            "fulfillmentLineItems": lambda _info, first=None, after=None, reverse=False: connection(
                items[:first], [encode_cursor(n, n) for n in range(len(items[:first]))], len(items) > (first or 0),
                False),
        }

    def _transactions(self, order: Order) -> list[dict[str, Any]]:
        sale = {"id": gid("OrderTransaction", order.id), "kind": "SALE", "status": "SUCCESS", "gateway": GATEWAY,
                "amountSet": money_bag(order.total, order.currency), "parentTransaction": None}
        refunds = [{"id": gid("OrderTransaction", r["transaction"]), "kind": "REFUND", "status": "SUCCESS",
                    "gateway": GATEWAY, "amountSet": money_bag(f"{r['amount']:.2f}", order.currency),
                    "parentTransaction": sale} for r in self.refunds.get(order.id, []) if r["amount"] > 0]
        return [sale, *refunds]

    def _refund_view(self, record: dict[str, Any]) -> dict[str, Any]:
        return {"id": gid("Refund", record["id"]), "legacyResourceId": str(record["id"]), "note": record["note"],
                "createdAt": timestamp(record["at"]),
                "totalRefundedSet": money_bag(f"{record['amount']:.2f}", record["order"].currency)}

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
        def refuse(text: str, field: list[str]) -> dict[str, Any]:
            return {"fulfillment": None, "userErrors": [_error(text, ["fulfillment", *field])]}

        groups = fulfillment["lineItemsByFulfillmentOrder"]
        if not groups:
            return refuse("Line items by fulfillment order can't be blank.", ["lineItemsByFulfillmentOrder"])
        orders = {parse_gid(g["fulfillmentOrderId"], "FulfillmentOrder") for g in groups}
        order = self.store.order(orders.pop()) if len(orders) == 1 and None not in orders else None
        if order is None:
            return refuse("Fulfillment orders must exist and belong to one order.", ["lineItemsByFulfillmentOrder"])
        if self._fulfillment_order_status(order) not in ("OPEN", "IN_PROGRESS"):
            return refuse("Fulfillment order is not in a fulfillable state.", ["lineItemsByFulfillmentOrder"])
        lines = {line.id: line for line in order.lines}
        shipped: list[tuple[Line, int]] = []
        for group in groups:
            asked = group.get("fulfillmentOrderLineItems")
            if not asked:
                left = [(line, self._remaining(line, order)) for line in order.lines]
                shipped += [(line, units) for line, units in left if units]
                continue
            for item in asked:
                line = lines.get(parse_gid(item["id"], "FulfillmentOrderLineItem") or -1)
                if line is None:
                    return refuse("Fulfillment order line item does not exist.", ["lineItemsByFulfillmentOrder"])
                if not 0 < item["quantity"] <= self._remaining(line, order):
                    return refuse(f"Invalid quantity {item['quantity']} for line item {line.id}.",
                                  ["lineItemsByFulfillmentOrder"])
                shipped.append((line, item["quantity"]))
        if not shipped:
            return refuse("Nothing is left to fulfill.", ["lineItemsByFulfillmentOrder"])
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
                  "tracking": infos, "lines": shipped}
        earlier.append(record)
        self._record("fulfillment", id=number, order_id=order.id, lines={line.sku: n for line, n in shipped},
                     tracking=numbers)
        return {"fulfillment": self._fulfillment_view(record), "userErrors": []}

    def _refund_create(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        def refuse(text: str, field: list[str]) -> dict[str, Any]:
            return {"refund": None, "order": None, "userErrors": [_error(text, ["input", *field])]}

        def write() -> dict[str, Any]:
            order = self._order_of(input["orderId"])
            if order is None:
                return refuse("Order does not exist.", ["orderId"])
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
            paid = Decimal(order.total)
            for index, transaction in enumerate(input.get("transactions") or []):
                path = ["transactions", str(index)]
                if transaction["kind"] != "REFUND" or transaction.get("parentId") != gid("OrderTransaction", order.id):
                    return refuse("Transaction must be a refund of the order's sale.", [*path, "parentId"])
                if transaction["gateway"] != GATEWAY or transaction["orderId"] != gid("Order", order.id):
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
            self._record("refund", id=number, order_id=order.id, amount=amount,
                         lines={line.sku: units for line, units, _ in returned})
            return {"refund": self._refund_view(record), "order": self.renderer.order(order), "userErrors": []}

        return self._idempotent(info, input, write, lambda: refuse(
            "The same idempotency key was used with different parameters.", []))
