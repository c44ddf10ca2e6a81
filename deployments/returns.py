"""`clerk return create` and `clerk return receive`: a clerk's side of returns."""

from __future__ import annotations

from typing import Any

from domain.returns import (REFUND_GATEWAY, Condition, Resolution, ReturnInputError, ReturnRequest, check_request,
                            on_receipt, parse_reason)
from models import returns_store, shipping_store
from models.base import utcnow
from models.db import unit_of_work
from models.orders import Order


def parse_lines(texts: list[str]) -> dict[str, int]:
    """`SKU:QTY` arguments as SKU -> units (a SKU given twice adds up).

    Raises:
        ReturnInputError: `invalid_quantity` for a line that is not `SKU:positive whole number`.
    """
    lines: dict[str, int] = {}
    for text in texts:
        sku, _, units = text.rpartition(":")
        if not sku or not units.strip().isdigit() or int(units) < 1:
            raise ReturnInputError("invalid_quantity", f"{text!r} is not SKU:QTY with a positive whole QTY")
        lines[sku.strip()] = lines.get(sku.strip(), 0) + int(units)
    return lines


def create_return(database_url: str, number: str, channel: str | None, lines: dict[str, int], reason: str,
                  resolution: str, by: str) -> dict[str, Any]:
    """Opens a return for order `number`; process-returns decides it by policy.

    Raises:
        shipping_store.OrderLookupError: no such order, or the number is on several channels.
        ReturnInputError: a reason outside the list, a SKU not on the order, more units than
            shipped, or a refund asked on an order paid through another gateway.
    """
    request = ReturnRequest(parse_reason(reason), lines, utcnow(), Resolution(resolution))
    with unit_of_work(database_url) as session:
        order = shipping_store.order_by_number(session, number, channel)
        check_request(request, returns_store.order_facts(session, order.id))
        gateway = session.get(Order, order.id).payment_gateway  # type: ignore[union-attr]
        if request.resolution is Resolution.REFUND and gateway != REFUND_GATEWAY:
            raise ReturnInputError("other_gateway", f"{order.number} was paid through {gateway or 'an unknown gateway'}; "
                                                    f"Clerk refunds through {REFUND_GATEWAY} only (refund it there, or "
                                                    "ask for an exchange or store credit)")
        rma, _ = returns_store.open_return(session, order.id, lines, request.reason.value, request.resolution.value,
                                           request.requested_at, by)
    return {"rma": rma, "order": order.number, "channel": order.channel, "status": "requested",
            "reason": request.reason.value, "resolution": request.resolution.value, "lines": lines}


def receive_return(database_url: str, rma: str, condition: str, by: str) -> dict[str, Any]:
    """Books the goods of return `rma`: back on the shelf when resellable, written off when damaged.

    Raises:
        returns_store.ReturnLookupError: no such RMA, or one not waiting for goods.
        ValueError: a condition other than resellable or damaged.
    """
    state = Condition(condition)
    with unit_of_work(database_url) as session:
        found = returns_store.return_by_rma(session, rma)
        receipt = on_receipt(parse_reason(found.reason), state)
        status = returns_store.receive(session, rma, state.value, receipt, by)
    return {"rma": rma, "condition": state.value, "restocked": receipt.restock, "rule": receipt.rule.value,
            "status": status}
