"""What writes create in the Magento sandbox: shipments, credit memos, order comments, stock.

Each write is checked the way Magento checks it (an order that cannot ship, more units
than are left, a refund beyond what was paid) and refused in Magento's error shape. An
applied write saves the order, bumping its `updated_at`, as any save in Magento does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from domain.orders import Lifecycle
from integrations.sandbox.magento.render import (
    Renderer,
    Shipped,
    compact,
    entity_id,
    item_id,
    number,
    state_and_status,
    timestamp,
)
from integrations.sandbox.magento.search import REQUIRED, Refusal
from integrations.sandbox.store import Order, SeededReturn, Store, payment_reference

SOURCE = "default"
_CANNOT_SHIP = "The order does not allow a shipment to be created."
_CANNOT_REFUND = "The order does not allow a creditmemo to be created."
# What a merchant writes on a credit memo for each of Clerk's return reasons.
MAGENTO_REASONS = {"damaged": "Returned: arrived damaged", "defective": "Returned: defective",
                   "wrong_item": "Returned: wrong item shipped", "not_as_described": "Returned: not as described",
                   "changed_mind": "Returned: customer changed their mind",
                   "late_delivery": "Refund for late delivery", "other": "Goodwill refund"}


def _cents(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Refusal('The "%value" value\'s type is invalid. The "%type" type was expected. Verify and try again.',
                      {"value": str(value), "type": "float"})
    try:
        return int((Decimal(repr(value) if isinstance(value, float) else str(value)) * 100)
                   .quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except ArithmeticError:
        raise Refusal(REQUIRED, {"fieldName": name}) from None


def _require(node: Any, *names: str) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise Refusal(REQUIRED, {"fieldName": names[0]})
    for name in names:
        if node.get(name) is None:
            raise Refusal(REQUIRED, {"fieldName": name})
    return node


def _quantities(body: dict[str, Any]) -> dict[int, int]:
    """`items` of a ship or refund request as item id -> units."""
    wanted: dict[int, int] = {}
    for entry in body.get("items") or []:
        entry = _require(entry, "order_item_id", "qty")
        quantity = entry["qty"]
        if isinstance(quantity, bool) or not isinstance(quantity, int | float) or quantity != int(quantity):
            raise Refusal('We found an invalid quantity for item "%1".', {"1": str(entry["order_item_id"])})
        wanted[int(entry["order_item_id"])] = wanted.get(int(entry["order_item_id"]), 0) + int(quantity)
    return wanted


def _comment(body: dict[str, Any], parent: int, at: str) -> list[dict[str, Any]]:
    """The comment a ship or refund request appends to its document (one per document here)."""
    comment = body.get("comment")
    if not body.get("appendComment") or not isinstance(comment, dict):
        return []
    _require(comment, "comment", "is_visible_on_front")
    return [{"entity_id": parent, "parent_id": parent, "comment": comment["comment"],
             "is_customer_notified": 1 if body.get("notify") else 0,
             "is_visible_on_front": comment["is_visible_on_front"], "created_at": at}]


@dataclass
class Documents:
    """The sandbox's sales documents and source items, and every write applied."""

    store: Store
    renderer: Renderer
    shipments: list[dict[str, Any]] = field(default_factory=list)
    creditmemos: list[dict[str, Any]] = field(default_factory=list)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    shipped: Counter[int] = field(default_factory=Counter)
    refunded: Counter[int] = field(default_factory=Counter)
    refunded_money: Counter[int] = field(default_factory=Counter)  # order entity id -> cents
    source_items: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    writes: list[dict[str, Any]] = field(default_factory=list)
    stock_writes: list[tuple[str, int]] = field(default_factory=list)  # (SKU, quantity) the API saved, in order

    def __post_init__(self) -> None:
        for sku, quantity in self.store.on_hand.items():
            self.source_items[(sku, SOURCE)] = {"sku": sku, "source_code": SOURCE, "quantity": float(quantity),
                                                "status": 1 if quantity > 0 else 0}
        for seeded in self.store.return_requests():  # credit memos a merchant made in the admin
            self.seed_creditmemo(seeded)

    def seed_creditmemo(self, seeded: SeededReturn, **changes: Any) -> dict[str, Any]:
        """A credit memo a merchant made in Magento's admin for a seeded return: online (through the
        payment gateway, with its `transaction_id`) when the store says the money went back, else
        offline. Its comment gives the reason in words. `changes` overrides fields (a test's malformed
        one). Writes nothing to `writes` and moves no order: it was there before Clerk looked."""
        order = self.store.order(seeded.order_id)
        assert order is not None, seeded
        money = self.renderer.refundable(order)
        by_id = {line.id: line for line in order.lines}
        at = timestamp(seeded.requested_at) or ""
        memo_id = len(self.creditmemos) + 1
        total = int(Decimal(seeded.amount) * 100)
        units = max(1, sum(count for _, count in seeded.lines))
        memo = compact({
            "entity_id": memo_id, "increment_id": f"{memo_id:09d}", "order_id": entity_id(order), "state": 2,
            "order_currency_code": money.rate.currency, "base_currency_code": self.renderer.base_currency,
            "created_at": at, "updated_at": at, "grand_total": number(total), "subtotal": number(total),
            "shipping_amount": 0, "adjustment_positive": 0, "adjustment_negative": 0,
            "transaction_id": f"re_{payment_reference(order.id)[3:]}" if seeded.refunded else None,
            "items": [{"entity_id": memo_id * 1000 + n, "parent_id": memo_id, "order_item_id": item_id(by_id[line]),
                       "qty": float(count), "sku": by_id[line].sku, "price": number(total * count // units // count),
                       "base_price": number(total * count // units // count), "base_cost": 0,
                       "row_total": number(total * count // units)}
                      for n, (line, count) in enumerate(seeded.lines, start=1) if line in by_id],
            "comments": [{"entity_id": memo_id, "parent_id": memo_id, "comment": MAGENTO_REASONS[seeded.reason],
                          "is_customer_notified": 0, "is_visible_on_front": 0, "created_at": at}],
        }) | changes
        self.creditmemos.append(memo)
        return memo

    @property
    def moved(self) -> Shipped:
        return Shipped(self.shipped, self.refunded)

    def history(self, order: Order) -> list[dict[str, Any]]:
        return self.comments.get(entity_id(order), [])

    def _save(self, order: Order) -> str:
        """Bumps `updated_at` as Magento's order save does; returns the moment, printed.

        The store offers no public way to touch an order, so this uses its own clock
        and index upkeep (`_tick`, `_touch`) under its lock.
        """
        with self.store.lock:
            stamp: datetime = self.store._tick(None)
            self.store._touch(order, stamp)
        return timestamp(stamp) or ""

    # -- shipments ------------------------------------------------------------------------------

    def ship(self, order: Order, body: dict[str, Any]) -> int:
        """Applies `POST /V1/order/{id}/ship`; returns the new shipment's id."""
        state, _ = state_and_status(order)
        if order.lifecycle is not Lifecycle.OPEN or state in ("holded", "payment_review"):
            raise Refusal(_CANNOT_SHIP)
        physical = {item_id(line): line for line in order.lines if line.requires_shipping}
        left = {item: line.quantity - self.shipped[item] for item, line in physical.items()}
        wanted = _quantities(body) or {item: count for item, count in left.items() if count > 0}
        for item, count in wanted.items():
            if item not in left or count <= 0 or count > left[item]:
                raise Refusal("Shipment Document Validation Error(s):\n"
                              "The quantity to ship must not be greater than the unshipped quantity.")
        if not wanted:
            raise Refusal("Shipment Document Validation Error(s):\nYou can't create a shipment without products.")
        tracks = [_require(t, "track_number", "title", "carrier_code") for t in body.get("tracks") or []]
        at = self._save(order)
        shipment_id = len(self.shipments) + 1
        entity = entity_id(order)
        self.shipments.append({
            "entity_id": shipment_id, "increment_id": f"{shipment_id:09d}", "order_id": entity,
            "store_id": 1, "created_at": at, "updated_at": at, "total_qty": float(sum(wanted.values())),
            "items": [{"entity_id": shipment_id * 1000 + n, "parent_id": shipment_id, "order_item_id": item,
                       "qty": float(count), "sku": physical[item].sku, "name": physical[item].title}
                      for n, (item, count) in enumerate(wanted.items(), start=1)],
            "tracks": [{"entity_id": shipment_id * 1000 + n, "parent_id": shipment_id, "order_id": entity,
                        "track_number": t["track_number"], "title": t["title"], "carrier_code": t["carrier_code"],
                        "weight": None, "qty": None, "description": None, "created_at": at, "updated_at": at}
                       for n, t in enumerate(tracks, start=1)],
            "comments": _comment(body, shipment_id, at),
        })
        self.shipped.update(wanted)
        if all(self.shipped[item] >= line.quantity for item, line in physical.items()):
            order.lifecycle = Lifecycle.FULFILLED
        self.writes.append({"kind": "shipment", "order_id": entity, "id": shipment_id, "items": wanted,
                            "tracks": [t["track_number"] for t in tracks]})
        return shipment_id

    # -- credit memos ---------------------------------------------------------------------------

    def refund(self, order: Order, body: dict[str, Any]) -> int:
        """Applies `POST /V1/order/{id}/refund` (offline); returns the new credit memo's id."""
        money = self.renderer.refundable(order)
        entity = entity_id(order)
        if order.lifecycle in (Lifecycle.CANCELLED, Lifecycle.CLOSED) or money.total is None:
            raise Refusal(_CANNOT_REFUND)
        left = {item: quantity - self.refunded[item] for item, (quantity, _) in money.rows.items()}
        wanted = _quantities(body) if body.get("items") else dict(left)
        for item, count in wanted.items():
            if item not in left or count < 0 or count > left[item]:
                raise Refusal('The quantity to creditmemo must not be greater than the unrefunded quantity '
                              'for "%1".', {"1": str(item)})
        arguments = body.get("arguments") if isinstance(body.get("arguments"), dict) else {}
        shipping_paid = money.shipping or 0
        shipping = _cents(arguments.get("shipping_amount", number(shipping_paid)), "shipping_amount")
        positive = _cents(arguments.get("adjustment_positive", 0), "adjustment_positive")
        negative = _cents(arguments.get("adjustment_negative", 0), "adjustment_negative")
        rows = {item: int((Decimal(money.rows[item][1]) * count / money.rows[item][0])
                          .quantize(Decimal(1), rounding=ROUND_HALF_UP))
                for item, count in wanted.items() if count}
        total = sum(rows.values()) + shipping + positive - negative
        available = money.total - self.refunded_money[entity]
        if total > available:
            raise Refusal("The most money available to refund is %1.", {"1": str(number(available))})
        if total <= 0:
            raise Refusal("The credit memo's total must be positive.")
        at = self._save(order)
        memo_id = len(self.creditmemos) + 1
        rate = money.rate.rate

        def base(amount: int) -> float | str:
            return number(int((Decimal(amount) / rate).quantize(Decimal(1), rounding=ROUND_HALF_UP)))

        self.creditmemos.append({
            "entity_id": memo_id, "increment_id": f"{memo_id:09d}", "order_id": entity, "state": 2,
            "order_currency_code": money.rate.currency, "base_currency_code": self.renderer.base_currency,
            "base_to_order_rate": float(rate), "created_at": at, "updated_at": at,
            "grand_total": number(total), "base_grand_total": base(total),
            "subtotal": number(sum(rows.values())), "shipping_amount": number(shipping),
            "adjustment_positive": number(positive), "adjustment_negative": number(negative),
            "items": [{"entity_id": memo_id * 1000 + n, "parent_id": memo_id, "order_item_id": item,
                       "qty": float(wanted[item]), "sku": self._sku(order, item), "price": number(paid // quantity),
                       "base_price": base(paid // quantity), "base_cost": 0, "row_total": number(rows[item])}
                      for n, (item, (quantity, paid)) in enumerate(money.rows.items(), start=1) if wanted.get(item)],
            "comments": _comment(body, memo_id, at),
        })
        self.refunded.update(wanted)
        self.refunded_money[entity] += total
        if all(self.refunded[item] >= quantity for item, (quantity, _) in money.rows.items()):
            order.lifecycle = Lifecycle.CLOSED
        self.writes.append({"kind": "creditmemo", "order_id": entity, "id": memo_id, "items": wanted,
                            "total": number(total)})
        return memo_id

    @staticmethod
    def _sku(order: Order, item: int) -> str | None:
        return next((line.sku for line in order.lines if item_id(line) == item), None)

    # -- comments and stock -----------------------------------------------------------------------

    def add_comment(self, order: Order, body: dict[str, Any]) -> bool:
        """Applies `POST /V1/orders/{id}/comments`."""
        entry = _require(body.get("statusHistory"), "comment", "is_customer_notified", "is_visible_on_front",
                         "parent_id")
        at = self._save(order)
        entity = entity_id(order)
        history = self.comments.setdefault(entity, [])
        history.append(compact({
            "entity_id": sum(map(len, self.comments.values())) + 1, "parent_id": entity,
            "comment": entry["comment"], "is_customer_notified": entry["is_customer_notified"],
            "is_visible_on_front": entry["is_visible_on_front"], "created_at": at, "entity_name": "order",
            "status": entry.get("status")}))
        self.writes.append({"kind": "comment", "order_id": entity, "comment": entry["comment"]})
        return True

    def save_source_items(self, body: dict[str, Any]) -> list[Any]:
        """Applies `POST /V1/inventory/source-items`: absolute quantities per SKU and source."""
        entries = body.get("sourceItems")
        if not isinstance(entries, list):
            raise Refusal(REQUIRED, {"fieldName": "sourceItems"})
        known = {v.sku for v in self.store.variants}
        for entry in entries:
            _require(entry, "sku", "source_code", "quantity", "status")
            if entry["sku"] not in known:
                raise Refusal("Could not save Source Item")
        for entry in entries:
            self.source_items[(entry["sku"], entry["source_code"])] = {
                "sku": entry["sku"], "source_code": entry["source_code"],
                "quantity": float(entry["quantity"]), "status": int(entry["status"])}
            self.stock_writes.append((entry["sku"], entry["quantity"]))
        self.writes.append({"kind": "stock", "count": len(entries)})
        return []

    def quantity(self, sku: str) -> float:
        """The quantity at the default source (0 when the SKU has no source item there)."""
        item = self.source_items.get((sku, SOURCE))
        return item["quantity"] if item else 0.0

    def edit_quantity(self, sku: str, quantity: float) -> None:
        """Sets a quantity as a merchant does in Magento's admin (not one of the API's writes)."""
        self.source_items[(sku, SOURCE)] = {"sku": sku, "source_code": SOURCE, "quantity": float(quantity),
                                            "status": 1 if quantity > 0 else 0}
