"""Returns buyers asked for, in the Shopify sandbox (read only): an order's `returns` connection.

The store's seeded return requests (`Store.return_requests`) are served as Shopify `Return`s:
odd-numbered ones REQUESTED, even-numbered ones OPEN (approved), those the store marks
refunded with one refund of what their units were paid. `return_status` in an orders search
is answered from them, as Shopify answers it from `Order.returnStatus`. Tests add their own
with `add`, a malformed one by passing lines Shopify would never send.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from itertools import count
from typing import Any

from integrations.sandbox.shopify.render import Renderer, gid, money_bag, paged, timestamp
from integrations.sandbox.store import Line, Order, SeededReturn, Store

RETURN_ID_BASE = 9_700_000
# Clerk's reason -> what a buyer picks in Shopify's return form, and the note they add.
SHOPIFY_REASONS: dict[str, tuple[str, str]] = {
    "damaged": ("DEFECTIVE", "Arrived damaged"),
    "defective": ("DEFECTIVE", "Stopped working after a day"),
    "wrong_item": ("WRONG_ITEM", ""),
    "not_as_described": ("NOT_AS_DESCRIBED", ""),
    "changed_mind": ("UNWANTED", ""),
    "late_delivery": ("OTHER", "Arrived too late for the event"),
    "other": ("OTHER", ""),
}


class ShopifyReturns:
    """The sandbox's returns, by order id, and the resolvers that serve them."""

    def __init__(self, store: Store, renderer: Renderer):
        self.store = store
        self.renderer = renderer
        self.returns: dict[int, list[dict[str, Any]]] = {}
        self._ids = count(RETURN_ID_BASE + 1)
        self._line_ids = count(1)
        for seeded in store.return_requests():
            order = store.order(seeded.order_id)
            if order is not None:
                self.add(order, seeded)
        renderer.order_fields["returns"] = lambda o: lambda _info, first=None, after=None: paged(
            self.returns.get(o.id, []), lambda r: r["id"], self._view, first, after)

    def add(self, order: Order, seeded: SeededReturn, status: str | None = None,
            lines: list[dict[str, Any]] | None = None) -> str:
        """Adds a return of `order` (its gid is returned); `lines` replaces the line views made from
        `seeded` (a test's malformed return)."""
        by_id = {line.id: line for line in order.lines}
        reason, note = SHOPIFY_REASONS.get(seeded.reason, ("OTHER", ""))
        views = lines if lines is not None else [
            self._line_view(order, by_id[line_id], units, reason, note, seeded.note)
            for line_id, units in seeded.lines if line_id in by_id]
        record = {"id": next(self._ids), "order": order, "name": f"#{order.number}-R{seeded.number}",
                  "status": status or ("REQUESTED" if seeded.number % 2 else "OPEN"),
                  "created": seeded.requested_at, "lines": views,
                  "refunds": [seeded.amount] if seeded.refunded else []}
        self.returns.setdefault(order.id, []).append(record)
        return gid("Return", record["id"])

    def _line_view(self, order: Order, line: Line, units: int, reason: str, note: str,
                   customer_note: str | None) -> dict[str, Any]:
        number = next(self._line_ids)
        return {"__typename": "ReturnLineItem", "id": gid("ReturnLineItem", number), "quantity": units,
                "returnReason": reason, "returnReasonNote": note, "customerNote": customer_note,
                "fulfillmentLineItem": {"id": gid("FulfillmentLineItem", number), "quantity": units,
                                        "lineItem": self.renderer.line(line, order)}}

    def _view(self, record: dict[str, Any]) -> dict[str, Any]:
        order: Order = record["order"]
        refunds = [{"id": gid("Refund", record["id"] * 10 + n), "legacyResourceId": str(record["id"] * 10 + n),
                    "note": None, "createdAt": timestamp(record["created"]),
                    "totalRefundedSet": money_bag(amount, order.currency)}
                   for n, amount in enumerate(record["refunds"], start=1)]
        lines = record["lines"]
        return {
            "id": gid("Return", record["id"]), "name": record["name"], "status": record["status"],
            "createdAt": timestamp(record["created"]),
            "totalQuantity": sum(v["quantity"] for v in lines if isinstance(v.get("quantity"), int)),
            "order": self.renderer.order(order),
            "returnLineItems": lambda _info, first=None, after=None: paged(
                lines, lambda v: int(str(v["id"]).rpartition("/")[2] or 0), lambda v: v, first, after),
            "refunds": lambda _info, first=None, after=None: paged(
                refunds, lambda v: int(v["legacyResourceId"]), lambda v: v, first, after),
        }

    def return_status(self, order: Order) -> str:
        """The order's `returnStatus` as its search filter spells it."""
        statuses = {record["status"] for record in self.returns.get(order.id, [])}
        if "REQUESTED" in statuses:
            return "return_requested"
        if "OPEN" in statuses:
            return "in_progress"
        return "returned" if statuses else "no_return"

    def search_fields(self) -> dict[str, Callable[[str], Callable[[Order], bool]]]:
        """Order search fields the returns answer (`return_status:...`)."""
        return {"return_status": lambda value: lambda order: self.return_status(order) == value.lower()}


def seeded(order: Order, number: int, lines: tuple[tuple[int, int], ...], reason: str, at: datetime,
           amount: str = "0.00", refunded: bool = False, note: str | None = None) -> SeededReturn:
    """A `SeededReturn` made by hand (for tests)."""
    return SeededReturn(number, order.id, lines, reason, at, amount, refunded, note)
