"""Purchase orders to suppliers, their lines, and what waits for a person's approval."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class PurchaseOrder(Base):
    """One supplier's order. `number` is deterministic per supplier and review day, so a rerun
    of the same night finds the order it already made instead of making a second."""

    __tablename__ = "purchase_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(100), unique=True)
    supplier: Mapped[str] = mapped_column(String(200), index=True)
    # draft | awaiting_approval | approved | sent | partially_received | received | cancelled
    status: Mapped[str] = mapped_column(String(30), index=True)
    review_day: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal]
    message_id: Mapped[str | None] = mapped_column(String(200))
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class PurchaseOrderLine(Base):
    __tablename__ = "purchase_order_lines"
    __table_args__ = (UniqueConstraint("purchase_order_id", "sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_order_id: Mapped[int] = mapped_column(ForeignKey("purchase_orders.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(200), index=True)
    quantity: Mapped[int]
    unit_cost: Mapped[Decimal]
    received: Mapped[int] = mapped_column(default=0)


class Approval(Base):
    """Something a person must decide (a purchase order, a refund, a policy review)."""

    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("kind", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))  # purchase_order | refund | policy_review
    subject: Mapped[str] = mapped_column(String(200))  # the PO or RMA number
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20), index=True)  # waiting | approved | denied
    since: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))  # the run that asked
    pause_run_id: Mapped[str | None] = mapped_column(String(64))  # the run paused for it in the Prefect UI
