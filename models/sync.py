"""Per-channel sync watermarks and backfill progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class SyncWatermark(Base):
    """How far a channel's resource is synced; advanced only after the batch commits."""

    __tablename__ = "sync_watermarks"

    channel: Mapped[str] = mapped_column(String(40), primary_key=True)
    resource: Mapped[str] = mapped_column(String(40), primary_key=True)
    synced_through: Mapped[datetime | None]
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)  # e.g. a backfill in progress
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
