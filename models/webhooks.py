"""Verified webhook deliveries, kept once per delivery id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow
from models.db import unit_of_work


class WebhookEvent(Base):
    """One accepted delivery; its body holds personal data, so it is stored and never logged."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("channel", "delivery_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(40))
    delivery_id: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(100))
    triggered_at: Mapped[datetime | None]  # WooCommerce sends no delivery time
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    body: Mapped[str] = mapped_column(Text)
    processed_at: Mapped[datetime | None]


def record_event(
    url: str, *, channel: str, delivery_id: str, topic: str, triggered_at: datetime | None, body: str
) -> bool:
    """Stores a delivery and commits; False when its (channel, delivery id) is already stored."""
    try:
        with unit_of_work(url) as session:
            session.add(WebhookEvent(
                channel=channel, delivery_id=delivery_id, topic=topic, triggered_at=triggered_at, body=body,
            ))
    except IntegrityError:
        # The unique constraint, not a prior SELECT, decides: two copies racing in at once
        # cannot both be stored.
        return False
    return True
