"""Holds and quarantined payloads the clerks have not been told about, and marking them told."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from domain.attention import NeedsAttention
from models.alerts import SentAlert
from models.base import utcnow
from models.orders import Order, OrderHold, QuarantinedPayload


def untold(session: Session) -> list[NeedsAttention]:
    holds = session.execute(
        select(OrderHold.id, Order.channel, Order.number, OrderHold.reason)
        .join(Order, Order.id == OrderHold.order_id)
        .where(OrderHold.alerted_at.is_(None), Order.status == "held")
    )
    items = [NeedsAttention("hold", row_id, channel, number, reason) for row_id, channel, number, reason in holds]
    quarantined = session.execute(
        select(QuarantinedPayload.id, QuarantinedPayload.channel, QuarantinedPayload.external_id, QuarantinedPayload.reason)
        .where(QuarantinedPayload.alerted_at.is_(None))
    )
    items += [
        NeedsAttention("quarantine", row_id, channel, external_id or f"payload {row_id}", reason)
        for row_id, channel, external_id, reason in quarantined
    ]
    return items


def already_sent(session: Session, incident: str) -> bool:
    return session.scalar(select(SentAlert.id).where(SentAlert.incident == incident)) is not None


def mark_told(
    session: Session,
    items: Sequence[NeedsAttention],
    incident: str,
    flow: str,
    flow_run_id: str | None,
    message_ref: str | None,
    summary: dict[str, Any],
) -> None:
    now = utcnow()
    holds = [i.row_id for i in items if i.kind == "hold"]
    quarantined = [i.row_id for i in items if i.kind == "quarantine"]
    for start in range(0, max(len(holds), len(quarantined)), 5000):
        if chunk := holds[start : start + 5000]:
            session.execute(update(OrderHold).where(OrderHold.id.in_(chunk)).values(alerted_at=now))
        if chunk := quarantined[start : start + 5000]:
            session.execute(update(QuarantinedPayload).where(QuarantinedPayload.id.in_(chunk)).values(alerted_at=now))
    if not already_sent(session, incident):
        session.add(SentAlert(incident=incident, flow=flow, flow_run_id=flow_run_id, message_ref=message_ref, summary=summary))
