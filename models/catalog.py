"""The catalog: products and their variants, one row per SKU."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    category: Mapped[str | None] = mapped_column(String(200))
    variants: Mapped[list[Variant]] = relationship(back_populates="product")


class Variant(Base):
    """A sellable SKU. `source` says who set the price: the master catalog wins over channels."""

    __tablename__ = "variants"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    sku: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    price: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    cost: Mapped[Decimal | None]
    weight_grams: Mapped[int | None]
    barcode: Mapped[str | None] = mapped_column(String(100))
    category: Mapped[str | None] = mapped_column(String(200))
    supplier: Mapped[str | None] = mapped_column(String(200))
    lead_time_days: Mapped[int | None]
    moq: Mapped[int | None]
    pack_size: Mapped[int | None]
    source: Mapped[str] = mapped_column(String(40))  # "master" or a channel name
    channel_refs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    product: Mapped[Product] = relationship(back_populates="variants")
