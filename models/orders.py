"""Orders, their lines, ship-to addresses (personal data, apart), holds and quarantine."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index("ix_orders_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(200))
    number: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))  # accepted | held | cancelled | fulfilled
    lifecycle: Mapped[str] = mapped_column(String(20))  # upstream: open | fulfilled | closed | cancelled
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal]
    shipping: Mapped[Decimal]
    tax: Mapped[Decimal]
    discounts: Mapped[Decimal]
    taxes_included: Mapped[bool]
    requires_shipping: Mapped[bool]
    risk: Mapped[str] = mapped_column(String(20))
    ship_to_country: Mapped[str | None] = mapped_column(String(2))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    payment_gateway: Mapped[str | None] = mapped_column(String(40))  # stripe | paypal | manual | ...
    payment_reference: Mapped[str | None] = mapped_column(String(100))  # e.g. Stripe's pi_... or ch_...
    placed_at: Mapped[datetime]
    upstream_updated_at: Mapped[datetime]
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrderLine(Base):
    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    sku: Mapped[str | None] = mapped_column(String(200), index=True)
    title: Mapped[str] = mapped_column(String(500))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal]
    discount: Mapped[Decimal]
    # False: not picked from our shelves (a download, a marketplace's own fulfilment).
    requires_shipping: Mapped[bool] = mapped_column(default=True, server_default=true())


class OrderAddress(Base):
    """The ship-to address: personal data, kept apart from the order."""

    __tablename__ = "order_addresses"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(300))
    company: Mapped[str | None] = mapped_column(String(300))
    street1: Mapped[str | None] = mapped_column(String(300))
    street2: Mapped[str | None] = mapped_column(String(300))
    city: Mapped[str | None] = mapped_column(String(200))
    province: Mapped[str | None] = mapped_column(String(200))
    postal_code: Mapped[str | None] = mapped_column(String(40))
    country: Mapped[str | None] = mapped_column(String(2))
    phone: Mapped[str | None] = mapped_column(String(64))


class OrderHold(Base):
    """One reason an order waits for a person; `alerted_at` marks it told to the clerks."""

    __tablename__ = "order_holds"
    __table_args__ = (UniqueConstraint("order_id", "reason"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)  # e.g. the carrier's words on an address
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    alerted_at: Mapped[datetime | None] = mapped_column(index=True)


class QuarantinedPayload(Base):
    """A payload that could not become an order, kept raw; one row per distinct payload."""

    __tablename__ = "quarantined_payloads"
    __table_args__ = (UniqueConstraint("channel", "payload_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str | None] = mapped_column(String(200), index=True)
    reason: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]]
    payload_hash: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    alerted_at: Mapped[datetime | None] = mapped_column(index=True)
