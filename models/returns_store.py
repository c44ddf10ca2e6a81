"""Returns' reads and writes: RMAs, the policy's facts about an order, decisions, receipts,
replacement orders and refund rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from domain.orders import Address
from domain.reasons import Hold
from domain.returns import Decision, OrderFacts, Receipt, SoldLine, Verdict
from domain.stock import Movement
from models.alerts import AuditEntry
from models.base import utcnow
from models.catalog import Product, Variant
from models.orders import Order, OrderAddress, OrderHold, OrderLine
from models.purchasing import Approval
from models.returns import Refund, Return, ReturnLine
from models.shipping import Shipment
from models.stock import StockMovement

REFUND_APPROVAL = "refund"
POLICY_REVIEW = "policy_review"
CLERK_CHANNEL = "clerk"  # orders Clerk makes itself: exchange replacements
LIVE = ("declined", "closed")  # returns in these statuses hold no units


class ReturnLookupError(ValueError):
    """No return answers to an RMA number, or it is not in a state for what was asked."""


@dataclass(frozen=True, slots=True)
class ReturnView:
    id: int
    rma: str
    channel: str
    external_id: str | None  # the channel's own id of the request; None when a clerk opened it
    order_id: int
    order_number: str
    order_external_id: str
    status: str
    reason: str
    resolution: str
    requested_at: datetime
    label_paid_by: str | None
    lines: dict[str, int]
    currency: str
    channel_refunded: Decimal
    channel_recorded: bool
    label_cost: Decimal | None
    received: bool
    payment_gateway: str | None
    payment_reference: str | None
    ship_to: Address | None


def order_facts(session: Session, order_id: int, leaving_out: int | None = None) -> OrderFacts:
    """What the policy needs about an order: lines as shipped, with units on other live
    returns (all but `leaving_out`), categories, amounts and dates."""
    order = session.get(Order, order_id)
    assert order is not None
    shipped = order.status == "fulfilled" or order.lifecycle in ("fulfilled", "closed")
    returned: dict[str, int] = defaultdict(int)
    for sku, units in session.execute(
        select(ReturnLine.sku, func.sum(ReturnLine.quantity)).join(Return, Return.id == ReturnLine.return_id)
        .where(Return.order_id == order_id, Return.status.not_in(LIVE), Return.id != (leaving_out or 0))
        .group_by(ReturnLine.sku)
    ):
        returned[sku] = int(units)
    rows = session.execute(
        select(OrderLine.sku, func.sum(OrderLine.quantity), func.max(OrderLine.unit_price), func.sum(OrderLine.discount),
               func.max(Product.category))
        .outerjoin(Variant, Variant.sku == OrderLine.sku).outerjoin(Product, Product.id == Variant.product_id)
        .where(OrderLine.order_id == order_id, OrderLine.sku.is_not(None)).group_by(OrderLine.sku)
    ).all()
    lines = {sku: SoldLine(sku, int(units) if shipped else 0, price, discount or Decimal(0), category, returned[sku])
             for sku, units, price, discount, category in rows}
    shipped_at, delivered_at = session.execute(
        select(func.min(Shipment.shipped_at), func.max(Shipment.delivered_at)).where(Shipment.order_id == order_id)).one()
    if shipped_at is None and shipped:  # fulfilled upstream, not by Clerk: its last change is the best date known
        shipped_at = order.upstream_updated_at
    line_discounts = sum((line.discount for line in lines.values()), Decimal(0))
    return OrderFacts(order.currency, lines, order.shipping, order.tax, order.taxes_included,
                      max(Decimal(0), order.discounts - line_discounts), shipped_at, delivered_at)


def latest_request(session: Session, channel: str) -> datetime | None:
    """Where to read a channel's return requests from: a day before the newest one taken,
    so a request that showed up late upstream is still seen (each is opened once)."""
    newest = session.scalar(select(func.max(Return.requested_at))
                            .where(Return.channel == channel, Return.external_id.is_not(None)))
    return newest - timedelta(days=1) if newest else None


def order_ids(session: Session, channel: str, external_ids: Sequence[str]) -> dict[str, int]:
    """External id -> Clerk's id, for the orders of `channel` Clerk knows."""
    found: dict[str, int] = {}
    unique = sorted(set(external_ids))
    for start in range(0, len(unique), 1000):
        found.update(session.execute(select(Order.external_id, Order.id).where(
            Order.channel == channel, Order.external_id.in_(unique[start:start + 1000]))).all())
    return found


def weights(session: Session, skus: Sequence[str]) -> dict[str, int | None]:
    return dict(session.execute(select(Variant.sku, Variant.weight_grams).where(Variant.sku.in_(skus))).all())


def open_return(session: Session, order_id: int, lines: Mapping[str, int], reason: str, resolution: str,
                requested_at: datetime, actor: str, external_id: str | None = None,
                channel_refunded: Decimal = Decimal(0), channel_recorded: bool = False) -> tuple[str, bool]:
    """Opens a return (once per upstream request); returns its RMA and whether it is new."""
    order = session.get(Order, order_id)
    assert order is not None
    if external_id is not None:
        known = session.scalar(select(Return.rma).where(Return.channel == order.channel, Return.external_id == external_id))
        if known:
            return known, False
    now = utcnow()
    row = Return(rma=f"pending-{order_id}-{now.timestamp()}", channel=order.channel, external_id=external_id,
                 order_id=order_id, status="requested", reason=reason, resolution=resolution, currency=order.currency,
                 channel_refunded=channel_refunded, channel_recorded=channel_recorded, requested_at=requested_at,
                 updated_at=now)
    session.add(row)
    session.flush()
    row.rma = f"RMA-{row.id:06d}"
    session.execute(insert(ReturnLine), [{"return_id": row.id, "sku": sku, "quantity": units} for sku, units in lines.items()])
    session.add(AuditEntry(at=now, actor=actor, action="return.opened", subject=row.rma,
                           detail={"order": order.number, "channel": order.channel, "reason": reason, "lines": dict(lines)}))
    return row.rma, True


def returns_in(session: Session, statuses: Sequence[str], after_id: int = 0, limit: int = 500,
               unsettled: bool = False) -> list[ReturnView]:
    """Returns in the given statuses, by id, a batch at a time; `unsettled`: only those with
    no refund written down yet (one already written is paid and followed, never worked out again)."""
    query = (select(Return, Order.number, Order.external_id, Order.payment_gateway, Order.payment_reference)
             .join(Order, Order.id == Return.order_id)
             .where(Return.status.in_(statuses), Return.id > after_id).order_by(Return.id).limit(limit))
    if unsettled:
        query = query.where(Return.id.not_in(select(Refund.return_id).where(Refund.return_id.is_not(None))))
    found = session.execute(query).all()
    ids = [row.id for row, *_ in found]
    lines: dict[int, dict[str, int]] = defaultdict(dict)
    for return_id, sku, units in session.execute(select(ReturnLine.return_id, ReturnLine.sku, ReturnLine.quantity)
                                                 .where(ReturnLine.return_id.in_(ids))):
        lines[return_id][sku] = lines[return_id].get(sku, 0) + units
    addresses = {a.order_id: a for a in session.scalars(
        select(OrderAddress).where(OrderAddress.order_id.in_([row.order_id for row, *_ in found])))}
    return [ReturnView(row.id, row.rma, row.channel, row.external_id, row.order_id, number, external_id, row.status,
                       row.reason, row.resolution, row.requested_at, row.label_paid_by, lines[row.id], row.currency,
                       row.channel_refunded, row.channel_recorded, row.label_cost, row.received_at is not None,
                       gateway, reference, _address(addresses.get(row.order_id)))
            for row, number, external_id, gateway, reference in found]


def return_by_rma(session: Session, rma: str) -> ReturnView:
    row = session.scalar(select(Return).where(Return.rma == rma))
    if row is None:
        raise ReturnLookupError(f"no return {rma}")
    return next(view for view in returns_in(session, [row.status], row.id - 1, 1))


def _address(row: OrderAddress | None) -> Address | None:
    if row is None:
        return None
    return Address(row.name, row.company, row.street1, row.street2, row.city, row.province, row.postal_code,
                   row.country, row.phone)


def record_decisions(session: Session, decisions: Sequence[tuple[int, Decision]], actor: str) -> list[str]:
    """Stores the policy's decisions; one waiting for a person gets an approval. Returns the
    RMAs now waiting."""
    now = utcnow()
    waiting = []
    for return_id, decision in decisions:
        row = session.get(Return, return_id, with_for_update=True)
        assert row is not None
        row.status, row.rule, row.detail = decision.verdict.value, decision.rule.value, decision.detail or None
        row.label_paid_by, row.refund_quote, row.updated_at = decision.label_paid_by.value, decision.quote.total, now
        if decision.verdict is Verdict.REVIEW:
            kind = REFUND_APPROVAL if decision.rule.value == "refund_above_limit" else POLICY_REVIEW
            _ask(session, kind, row.rma, decision.quote.total, row.currency, actor)
            waiting.append(row.rma)
        session.add(AuditEntry(at=now, actor=actor, action=f"return.{decision.verdict.value}", subject=row.rma,
                               detail={"rule": decision.rule.value, "quote": str(decision.quote.total)}))
    return waiting


def _ask(session: Session, kind: str, subject: str, amount: Decimal, currency: str, actor: str) -> None:
    if session.scalar(select(Approval.id).where(Approval.kind == kind, Approval.subject == subject)) is None:
        session.add(Approval(kind=kind, subject=subject, amount=amount, currency=currency, status="waiting",
                             since=utcnow(), flow_run_id=actor))


def apply_decision(session: Session, approval: Approval) -> None:
    """A person's decision on a return: approved goes on (to its label, or to its refund once
    received), denied ends it (declined before receipt, closed after)."""
    row = session.scalar(select(Return).where(Return.rma == approval.subject.removesuffix(RECEIPT_REVIEW))
                         .with_for_update())
    if row is None or row.status != "awaiting_approval":
        return
    received = row.received_at is not None
    if approval.status == "approved":
        row.status = "received" if received else "approved"
    else:
        row.status = "closed" if received else "declined"
    row.detail, row.updated_at = f"{approval.status} by {approval.decided_by}", utcnow()


RECEIPT_REVIEW = " on receipt"  # the subject suffix of a refund reviewed after goods came back


def record_return_labels(session: Session, labels: Sequence[dict[str, Any]]) -> None:
    """Bought return labels: `{id, carrier, tracking_number, label_cost, label_path}` each."""
    now = utcnow()
    for label in labels:
        session.execute(update(Return).where(Return.id == label["id"])
                        .values(status="label_sent", carrier=label["carrier"], tracking_number=label["tracking_number"],
                                label_cost=label["label_cost"], label_path=label.get("label_path"), updated_at=now))


def receive(session: Session, rma: str, condition: str, receipt: Receipt, actor: str) -> str:
    """Books the goods of a return that came back: on the shelf again, or in and written off.

    Returns:
        The return's new status.

    Raises:
        ReturnLookupError: no such RMA, or not one waiting for goods.
    """
    row = session.scalar(select(Return).where(Return.rma == rma).with_for_update())
    if row is None:
        raise ReturnLookupError(f"no return {rma}")
    if row.status not in ("approved", "label_sent") or row.received_at is not None:
        raise ReturnLookupError(f"{rma} is {row.status}: only an approved return can be received")
    now = utcnow()
    lines = session.execute(select(ReturnLine.sku, ReturnLine.quantity).where(ReturnLine.return_id == row.id)).all()
    movements = [{"sku": sku, "location": "main", "kind": Movement.RETURN.value, "on_hand_delta": units,
                  "reserved_delta": 0, "order_id": row.order_id, "note": rma, "actor": actor, "created_at": now}
                 for sku, units in lines]
    if not receipt.restock:  # it came in, and went straight to the bin: the ledger shows both
        movements += [m | {"kind": Movement.WRITE_OFF.value, "on_hand_delta": -m["on_hand_delta"]} for m in movements]
    session.execute(insert(StockMovement), movements)
    row.condition, row.received_at, row.updated_at, row.rule = condition, now, now, receipt.rule.value
    row.status = "received" if receipt.refund is Verdict.APPROVE else "awaiting_approval"
    if row.status == "awaiting_approval":
        _ask(session, REFUND_APPROVAL, rma + RECEIPT_REVIEW, row.refund_quote or Decimal(0), row.currency, actor)
    session.add(AuditEntry(at=now, actor=actor, action="return.received", subject=rma,
                           detail={"condition": condition, "rule": receipt.rule.value, "restocked": receipt.restock}))
    return row.status


def create_replacement(session: Session, view: ReturnView, actor: str) -> str:
    """The replacement order of an exchange, made once: the same units at no charge, to the
    same address, reserving stock when there is enough (held `insufficient_stock` when not)."""
    known = session.scalar(select(Order.number).where(Order.channel == CLERK_CHANNEL, Order.external_id == view.rma))
    if known:
        return known
    original = session.get(Order, view.order_id)
    assert original is not None
    now = utcnow()
    available = dict(session.execute(
        select(StockMovement.sku, func.sum(StockMovement.on_hand_delta) - func.sum(StockMovement.reserved_delta))
        .where(StockMovement.sku.in_(list(view.lines))).group_by(StockMovement.sku)).all())
    enough = all((available.get(sku) or 0) >= units for sku, units in view.lines.items())
    order = Order(channel=CLERK_CHANNEL, external_id=view.rma, number=f"{view.order_number}-X{view.id}",
                  status="accepted" if enough else "held", lifecycle="open", currency=original.currency,
                  total=Decimal(0), shipping=Decimal(0), tax=Decimal(0), discounts=Decimal(0), taxes_included=False,
                  requires_shipping=True, risk="none", ship_to_country=original.ship_to_country,
                  customer_id=original.customer_id, placed_at=now, upstream_updated_at=now, fingerprint=view.rma,
                  created_at=now, updated_at=now)
    session.add(order)
    session.flush()
    titles = dict(session.execute(select(OrderLine.sku, OrderLine.title).where(OrderLine.order_id == view.order_id)).all())
    session.execute(insert(OrderLine), [
        {"order_id": order.id, "position": n, "sku": sku, "title": titles.get(sku, sku), "quantity": units,
         "unit_price": Decimal(0), "discount": Decimal(0), "requires_shipping": True}
        for n, (sku, units) in enumerate(sorted(view.lines.items()))])
    address = session.get(OrderAddress, view.order_id)
    if address is not None:
        session.add(OrderAddress(order_id=order.id, name=address.name, company=address.company, street1=address.street1,
                                 street2=address.street2, city=address.city, province=address.province,
                                 postal_code=address.postal_code, country=address.country, phone=address.phone))
    if enough:
        session.execute(insert(StockMovement), [
            {"sku": sku, "location": "main", "kind": Movement.RESERVATION.value, "on_hand_delta": 0, "reserved_delta": units,
             "order_id": order.id, "note": view.rma, "actor": actor, "created_at": now}
            for sku, units in view.lines.items()])
    else:
        session.add(OrderHold(order_id=order.id, reason=Hold.INSUFFICIENT_STOCK.value, created_at=now))
    session.execute(update(Return).where(Return.id == view.id)
                    .values(status="exchanged", replacement_order_id=order.id, updated_at=now))
    session.add(AuditEntry(at=now, actor=actor, action="return.exchanged", subject=view.rma,
                           detail={"replacement": order.number, "reserved": enough}))
    return order.number


def close_return(session: Session, return_id: int, status: str, detail: str | None, rule: str | None = None) -> None:
    """Ends a return (declined or closed) with why; `rule` replaces the recorded one when given."""
    values: dict[str, Any] = {"status": status, "detail": detail, "updated_at": utcnow()}
    if rule:
        values["rule"] = rule
    session.execute(update(Return).where(Return.id == return_id).values(**values))


def add_refund(session: Session, view: ReturnView, key: str, gateway: str, amount: Decimal,
               status: str = "pending", reference: str | None = None) -> None:
    """The refund's row, written with its ledger row and before any money moves (once per key)."""
    if session.scalar(select(Refund.id).where(Refund.key == key)) is not None:
        return
    now = utcnow()
    session.add(Refund(key=key, return_id=view.id, order_id=view.order_id, gateway=gateway,
                       payment_reference=view.payment_reference, amount=amount, currency=view.currency, status=status,
                       gateway_reference=reference,
                       channel_ref=view.external_id if gateway == view.channel or view.channel_recorded else None,
                       created_at=now, updated_at=now))


@dataclass(frozen=True, slots=True)
class RefundView:
    key: str
    return_id: int | None
    rma: str | None
    channel: str
    order_external_id: str
    gateway: str
    payment_reference: str | None
    amount: Decimal
    currency: str
    status: str
    gateway_reference: str | None
    lines: dict[str, int]
    reason: str | None


def refunds_where(session: Session, *conditions: Any) -> list[RefundView]:
    rows = session.execute(
        select(Refund, Return.rma, Return.reason, Order.channel, Order.external_id)
        .join(Order, Order.id == Refund.order_id).outerjoin(Return, Return.id == Refund.return_id)
        .where(*conditions).order_by(Refund.id)).all()
    lines: dict[int, dict[str, int]] = defaultdict(dict)
    for return_id, sku, units in session.execute(select(ReturnLine.return_id, ReturnLine.sku, ReturnLine.quantity).where(
            ReturnLine.return_id.in_([r.return_id for r, *_ in rows if r.return_id]))):
        lines[return_id][sku] = lines[return_id].get(sku, 0) + units
    return [RefundView(r.key, r.return_id, rma, channel, external_id, r.gateway, r.payment_reference, r.amount,
                       r.currency, r.status, r.gateway_reference, lines.get(r.return_id or 0, {}), reason)
            for r, rma, reason, channel, external_id in rows]


def unpaid_refunds(session: Session, gateway: str) -> list[RefundView]:
    """Refunds written down but with no answer from the gateway yet (a crash, a lost answer)."""
    return refunds_where(session, Refund.gateway == gateway, Refund.status == "pending",
                         Refund.gateway_reference.is_(None))


def refunds_to_follow(session: Session, gateway: str) -> list[RefundView]:
    return refunds_where(session, Refund.gateway == gateway, Refund.status == "pending",
                         Refund.gateway_reference.is_not(None))


def untold_refunds(session: Session) -> list[RefundView]:
    """Succeeded refunds the order's channel has not been told of."""
    return refunds_where(session, Refund.status == "succeeded", Refund.channel_ref.is_(None))


def record_refund(session: Session, key: str, status: str, reference: str | None, failure: str | None = None) -> None:
    """The gateway's answer; a refund that ends succeeded marks its return refunded."""
    now = utcnow()
    values: dict[str, Any] = {"status": status, "failure_reason": failure, "updated_at": now}
    if reference:
        values["gateway_reference"] = reference
    session.execute(update(Refund).where(Refund.key == key).values(**values))
    return_id = session.scalar(select(Refund.return_id).where(Refund.key == key))
    if return_id is not None and status == "succeeded":
        session.execute(update(Return).where(Return.id == return_id).values(status="refunded", updated_at=now))


def record_channel_told(session: Session, key: str, reference: str) -> None:
    session.execute(update(Refund).where(Refund.key == key).values(channel_ref=reference, updated_at=utcnow()))
