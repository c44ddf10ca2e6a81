"""Returns (RMAs), their lines, and refunds paid through a gateway."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class Return(Base):
    """One return: asked by the customer upstream (`external_id`) or opened by a clerk.

    `status`: requested | approved | declined | awaiting_approval | label_sent | received |
    refunded | exchanged | closed (the contract's `returns` export).
    """

    __tablename__ = "returns"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rma: Mapped[str] = mapped_column(String(40), unique=True)
    channel: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str | None] = mapped_column(String(200))  # None: opened by a clerk
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    reason: Mapped[str] = mapped_column(String(30))
    resolution: Mapped[str] = mapped_column(String(20))  # refund | exchange | store_credit
    rule: Mapped[str | None] = mapped_column(String(40))  # the policy rule behind the latest decision
    detail: Mapped[str | None] = mapped_column(Text)
    label_paid_by: Mapped[str | None] = mapped_column(String(20))  # shop | customer
    refund_quote: Mapped[Decimal | None]  # what the policy would refund, before any cap
    currency: Mapped[str] = mapped_column(String(3))
    channel_refunded: Mapped[Decimal] = mapped_column(default=Decimal(0))  # money the channel moved itself
    # The channel's own refund record (a WooCommerce refund, a Magento credit memo): it is never told again.
    channel_recorded: Mapped[bool] = mapped_column(default=False)
    carrier: Mapped[str | None] = mapped_column(String(60))
    tracking_number: Mapped[str | None] = mapped_column(String(100))
    label_cost: Mapped[Decimal | None]
    label_path: Mapped[str | None] = mapped_column(String(500))
    condition: Mapped[str | None] = mapped_column(String(20))  # resellable | damaged, once received
    replacement_order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    alerted_at: Mapped[datetime | None]


class ReturnLine(Base):
    __tablename__ = "return_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("returns.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int]


class Refund(Base):
    """Money sent back through a gateway; `key` is its side-effect key and Idempotency-Key."""

    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    return_id: Mapped[int | None] = mapped_column(ForeignKey("returns.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    gateway: Mapped[str] = mapped_column(String(40))
    payment_reference: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20), index=True)  # pending | succeeded | failed
    gateway_reference: Mapped[str | None] = mapped_column(String(100))
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    channel_ref: Mapped[str | None] = mapped_column(String(255))  # the channel's record of it, once told
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
