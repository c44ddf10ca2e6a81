"""Purchase orders and approvals in the database: made once, decided once, received in parts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from domain.purchasing import DraftPurchaseOrder, Receipt
from domain.stock import Movement
from models.alerts import AuditEntry
from models.base import utcnow
from models import returns_store
from models.purchasing import Approval, PurchaseOrder, PurchaseOrderLine
from models.stock import RestockFigure, StockMovement

PURCHASE_ORDER = "purchase_order"


@dataclass(frozen=True, slots=True)
class Created:
    """Numbers of the purchase orders a check made, and of those waiting for a person."""

    created: list[str]
    awaiting_approval: list[str]
    already_there: list[str]


def create_purchase_orders(
    session: Session, drafts: Sequence[DraftPurchaseOrder], review_day: date, actor: str, flow_run_id: str | None
) -> Created:
    """Stores each draft whose number is new; one above the threshold waits for approval,
    the rest are approved by the rule, and both decisions go to the audit log."""
    numbers = [draft.number for draft in drafts]
    existing = set(session.scalars(select(PurchaseOrder.number).where(PurchaseOrder.number.in_(numbers)))) if numbers else set()
    created, waiting = [], []
    now = utcnow()
    for draft in drafts:
        if draft.number in existing:
            continue
        status = "awaiting_approval" if draft.needs_approval else "approved"
        po_id = session.execute(insert(PurchaseOrder).values(
            number=draft.number, supplier=draft.supplier, status=status, review_day=review_day,
            currency=draft.currency, total=draft.total, flow_run_id=flow_run_id, created_at=now,
        ).returning(PurchaseOrder.id)).scalar_one()
        session.execute(insert(PurchaseOrderLine), [
            {"purchase_order_id": po_id, "sku": line.sku, "quantity": line.quantity, "unit_cost": line.unit_cost, "received": 0}
            for line in draft.lines
        ])
        if draft.needs_approval:
            session.add(Approval(kind=PURCHASE_ORDER, subject=draft.number, amount=draft.total, currency=draft.currency,
                                 status="waiting", since=now, flow_run_id=flow_run_id))
            waiting.append(draft.number)
        else:
            session.add(AuditEntry(at=now, actor=actor, action="purchase_order.approved", subject=draft.number,
                                   detail={"rule": "total at or below approvals.purchase_order_above", "total": str(draft.total)}))
        created.append(draft.number)
    return Created(created, waiting, sorted(existing))


def awaiting_approval(session: Session) -> list[str]:
    """Numbers of the purchase orders waiting for a person, whichever night made them."""
    return list(session.scalars(select(PurchaseOrder.number).where(PurchaseOrder.status == "awaiting_approval")
                                .order_by(PurchaseOrder.id)))


def unsent(session: Session) -> list[str]:
    """Approved purchase orders not yet sent to their supplier, oldest first."""
    return list(session.scalars(select(PurchaseOrder.number).where(PurchaseOrder.status == "approved").order_by(PurchaseOrder.id)))


@dataclass(frozen=True, slots=True)
class PurchaseOrderView:
    number: str
    supplier: str
    status: str
    currency: str
    total: Decimal
    created_at: datetime
    message_id: str | None
    lines: tuple[tuple[str, int, Decimal, int], ...]  # sku, quantity, unit cost, received


def purchase_order(session: Session, number: str) -> PurchaseOrderView | None:
    po = session.scalar(select(PurchaseOrder).where(PurchaseOrder.number == number))
    if po is None:
        return None
    lines = [tuple(row) for row in session.execute(
        select(PurchaseOrderLine.sku, PurchaseOrderLine.quantity, PurchaseOrderLine.unit_cost, PurchaseOrderLine.received)
        .where(PurchaseOrderLine.purchase_order_id == po.id).order_by(PurchaseOrderLine.sku)
    )]
    return PurchaseOrderView(
        po.number, po.supplier, po.status, po.currency, po.total, po.created_at, po.message_id, tuple(lines))  # type: ignore[arg-type]


def mark_sent(session: Session, number: str, message_id: str) -> None:
    session.execute(update(PurchaseOrder).where(PurchaseOrder.number == number, PurchaseOrder.status == "approved")
                    .values(status="sent", sent_at=utcnow(), message_id=message_id))


def waiting(session: Session) -> list[Approval]:
    return list(session.scalars(select(Approval).where(Approval.status == "waiting").order_by(Approval.since, Approval.id)))


class DecisionError(ValueError):
    """An approval that does not exist or was already decided."""


def approval(session: Session, approval_id: int) -> Approval | None:
    return session.get(Approval, approval_id)


def approvals_for(session: Session, kind: str, subjects: Sequence[str]) -> dict[str, int]:
    """Subject -> approval id, for the given subjects of one kind."""
    if not subjects:
        return {}
    return {subject: approval_id for approval_id, subject in session.execute(
        select(Approval.id, Approval.subject).where(Approval.kind == kind, Approval.subject.in_(subjects)))}


def record_pause(session: Session, approval_id: int, run_id: str) -> None:
    session.execute(update(Approval).where(Approval.id == approval_id).values(pause_run_id=run_id))


def decide(session: Session, approval_id: int, by: str, approve: bool, note: str | None) -> Approval:
    """Records a person's decision once; a purchase order becomes approved or cancelled."""
    approval = session.get(Approval, approval_id, with_for_update=True)
    if approval is None:
        raise DecisionError(f"no approval {approval_id}")
    if approval.status != "waiting":
        raise DecisionError(f"approval {approval_id} was already {approval.status} by {approval.decided_by}")
    now = utcnow()
    approval.status, approval.decided_by, approval.decided_at, approval.note = (
        "approved" if approve else "denied", by, now, note)
    if approval.kind == PURCHASE_ORDER:
        session.execute(update(PurchaseOrder).where(PurchaseOrder.number == approval.subject)
                        .values(status="approved" if approve else "cancelled"))
    else:
        returns_store.apply_decision(session, approval)
    session.add(AuditEntry(at=now, actor=by, action=f"{approval.kind}.{approval.status}", subject=approval.subject,
                           detail={"approval": approval.id, "note": note, "amount": str(approval.amount)}))
    return approval


def book_delivery(session: Session, number: str, receipt: Receipt, actor: str, source: str) -> None:
    """Books a checked delivery: receipt movements, received counts, the PO's new status."""
    po_id = session.scalar(select(PurchaseOrder.id).where(PurchaseOrder.number == number).with_for_update())
    now = utcnow()
    movements: list[dict[str, Any]] = []
    for line in receipt.lines:
        if not line.received_now:
            continue
        session.execute(update(PurchaseOrderLine)
                        .where(PurchaseOrderLine.purchase_order_id == po_id, PurchaseOrderLine.sku == line.sku)
                        .values(received=PurchaseOrderLine.received + line.received_now))
        movements.append({"sku": line.sku, "location": "main", "kind": Movement.RECEIPT.value, "on_hand_delta": line.received_now,
                          "reserved_delta": 0, "purchase_order_id": po_id, "note": f"{number} from {source}",
                          "actor": actor, "created_at": now})
    session.execute(insert(StockMovement), movements)
    session.execute(update(PurchaseOrder).where(PurchaseOrder.id == po_id).values(status=receipt.status))
    session.add(AuditEntry(at=now, actor=actor, action="purchase_order.received", subject=number,
                           detail={"status": receipt.status, "over": receipt.over, "under": receipt.under}))


def store_restock_figures(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Replaces the figures of the last check with this one's."""
    session.execute(delete(RestockFigure))
    for start in range(0, len(rows), 10000):
        session.execute(insert(RestockFigure), list(rows[start:start + 10000]))
