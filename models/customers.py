"""Customers: one person across channels, their accounts per channel, personal data apart."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class Customer(Base):
    """A person who bought, on any channel; accounts with the same email share one.

    `key` is random and means nothing: a batch inserts its new customers in one statement
    and finds their ids by it (asking the insert for its ids went a row at a time).
    """

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CustomerAccount(Base):
    """A customer's id on one channel (a guest checkout: `guest:` and its email's digest)."""

    __tablename__ = "customer_accounts"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)


class CustomerPII(Base):
    """Kept apart so exports, reports and erasure requests touch one place.

    `email_key` (a digest of the normalised email) is how a second channel's account
    finds the customer; erasing this row unlinks it too.
    """

    __tablename__ = "customer_pii"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    email_key: Mapped[str | None] = mapped_column(String(64), index=True)
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
