"""The side-effect ledger: one row per external effect, written before the call."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, utcnow


class SideEffect(Base):
    """`key` is deterministic (`label:{order}:{n}`, `refund:{rma}`); the vendor gets it too."""

    __tablename__ = "side_effects"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20), default="pending")  # pending | done | failed
    request_hash: Mapped[str] = mapped_column(String(64))
    vendor_ref: Mapped[str | None] = mapped_column(String(255))
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(default=0)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]


def begin_effect(session: Session, key: str, kind: str, subject: str, request_hash: str, flow_run_id: str | None) -> SideEffect:
    """The effect's row, written before the call (or found, from an earlier attempt),
    with one more attempt counted. A row for the same key but another request is a bug
    in the caller's key, and raises rather than doing something else under that key.

    Raises:
        ValueError: when `key` was first written for a different request.
    """
    row = session.scalar(select(SideEffect).where(SideEffect.key == key).with_for_update())
    if row is None:
        row = SideEffect(key=key, kind=kind, subject=subject, state="pending", request_hash=request_hash,
                         attempts=0, flow_run_id=flow_run_id, created_at=utcnow(), result={})
        session.add(row)
    elif row.request_hash != request_hash:
        raise ValueError(f"side effect {key} was first asked with another request")
    row.attempts += 1
    session.flush()
    return row


def finish_effect(session: Session, key: str, vendor_ref: str, result: dict[str, Any]) -> None:
    session.execute(update(SideEffect).where(SideEffect.key == key)
                    .values(state="done", vendor_ref=vendor_ref, result=result, done_at=utcnow()))
