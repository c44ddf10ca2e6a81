"""The stock ledger: every change of on-hand or reserved units is one row; levels are sums."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class StockMovement(Base):
    __tablename__ = "stock_movements"
    __table_args__ = (
        Index("ix_stock_movements_sku_location", "sku", "location"),
        Index("ix_stock_movements_order_id", "order_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(200))
    location: Mapped[str] = mapped_column(String(100), default="main")
    kind: Mapped[str] = mapped_column(String(40))  # a domain.stock.Movement value
    on_hand_delta: Mapped[int] = mapped_column(default=0)
    reserved_delta: Mapped[int] = mapped_column(default=0)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    purchase_order_id: Mapped[int | None] = mapped_column(ForeignKey("purchase_orders.id"), index=True)
    note: Mapped[str | None] = mapped_column(String(500))
    actor: Mapped[str | None] = mapped_column(String(200))  # a person, or "flow:order-intake"
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RestockFigure(Base):
    """Each SKU's figures from the latest restock check, for `clerk export inventory`."""

    __tablename__ = "restock_figures"

    sku: Mapped[str] = mapped_column(String(200), primary_key=True)
    reorder_point: Mapped[int]
    order_up_to: Mapped[int]
    mean_daily_demand: Mapped[float] = mapped_column(Float)
    days_of_cover: Mapped[float | None] = mapped_column(Float)  # None: nothing sells, the cover is endless
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChannelStock(Base):
    """What Clerk last pushed to a channel for a SKU: the next push writes only a change, and
    compares against this value so a change made on the channel is not overwritten blindly."""

    __tablename__ = "channel_stock"

    channel: Mapped[str] = mapped_column(String(40), primary_key=True)
    sku: Mapped[str] = mapped_column(String(200), primary_key=True)
    pushed_available: Mapped[int]
    pushed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when the channel's count was not what Clerk last pushed: a person looks before it is overwritten.
    conflict_seen: Mapped[int | None]
    conflict_at: Mapped[datetime | None]
