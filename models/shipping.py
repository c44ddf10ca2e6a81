"""Shipments (one bought label each) and packing checks."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class Shipment(Base):
    """A label bought for an order. `label_key` is the side-effect key the purchase ran under."""

    __tablename__ = "shipments"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    label_key: Mapped[str] = mapped_column(String(255), unique=True)
    carrier: Mapped[str] = mapped_column(String(60))
    service: Mapped[str] = mapped_column(String(100))
    carrier_shipment_id: Mapped[str] = mapped_column(String(100))
    tracking_number: Mapped[str] = mapped_column(String(100), index=True)
    label_cost: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    label_path: Mapped[str | None] = mapped_column(String(500))
    # pre_transit | in_transit | out_for_delivery | delivered | exception | returned_to_sender
    status: Mapped[str] = mapped_column(String(30), index=True)
    zone: Mapped[str | None] = mapped_column(String(20))
    fulfillment_ref: Mapped[str | None] = mapped_column(String(255))
    shipped_at: Mapped[datetime] = mapped_column(default=utcnow)
    promised_by: Mapped[date | None] = mapped_column(Date)
    delivered_at: Mapped[datetime | None]
    tracking_state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PackCheck(Base):
    """What a packer scanned for an order; the latest one decides whether its label may be bought."""

    __tablename__ = "pack_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    scans: Mapped[list[Any]] = mapped_column(default=list)
    matches: Mapped[bool]
    missing: Mapped[dict[str, Any]] = mapped_column(default=dict)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    packed_by: Mapped[str] = mapped_column(String(200))
    packed_at: Mapped[datetime] = mapped_column(default=utcnow)
