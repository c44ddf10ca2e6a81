"""Channel stock sync's store: available units from the ledger, what each channel was last
told (`channel_stock`), and the conflicts found there that no alert has named yet."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain.stock_sync import Conflict, Pushed
from models.alerts import SentAlert
from models.base import utcnow
from models.orders import Order, OrderLine
from models.stock import ChannelStock, StockMovement


def available_by_sku(session: Session) -> dict[str, int]:
    """Available units of every SKU the ledger has: on hand less reserved, over every location."""
    rows = session.execute(
        select(StockMovement.sku, func.sum(StockMovement.on_hand_delta) - func.sum(StockMovement.reserved_delta))
        .group_by(StockMovement.sku)
    )
    return {sku: int(units or 0) for sku, units in rows}


def sold_since_push(session: Session, channel: str) -> dict[str, int]:
    """SKU -> units of `channel`'s orders (not cancelled) placed after Clerk last pushed that
    SKU's count there: what the channel itself has taken off its count since."""
    rows = session.execute(
        select(OrderLine.sku, func.sum(OrderLine.quantity))
        .join(Order, Order.id == OrderLine.order_id)
        .join(ChannelStock, (ChannelStock.channel == Order.channel) & (ChannelStock.sku == OrderLine.sku))
        .where(Order.channel == channel, Order.status != "cancelled", Order.placed_at > ChannelStock.pushed_at)
        .group_by(OrderLine.sku)
    )
    return {sku: int(units) for sku, units in rows if units}


def pushed(session: Session, channels: Sequence[str]) -> dict[str, dict[str, Pushed]]:
    """Each channel's `channel_stock` rows, by SKU."""
    found: dict[str, dict[str, Pushed]] = {channel: {} for channel in channels}
    rows = session.execute(
        select(ChannelStock.channel, ChannelStock.sku, ChannelStock.pushed_available, ChannelStock.conflict_seen)
        .where(ChannelStock.channel.in_(channels))
    )
    for channel, sku, units, conflict_seen in rows:
        found[channel][sku] = Pushed(units, conflict_seen)
    return found


def record_push(
    session: Session, channel: str, wanted: Mapping[str, int], agreed: Sequence[str], conflicts: Mapping[str, int]
) -> None:
    """Notes one batch's outcome on a channel.

    Args:
        wanted: units per SKU the batch asked for.
        agreed: SKUs the channel now shows as wanted (written, or already so): pushed, any
            conflict on them closed.
        conflicts: SKU -> the count found on the channel instead. The last push stays what it
            was; the conflict's time moves only when it shows another count.
    """
    now = utcnow()
    skus = sorted({*agreed, *conflicts})
    rows = {row.sku: row for row in session.scalars(
        select(ChannelStock).where(ChannelStock.channel == channel, ChannelStock.sku.in_(skus)))}
    for sku in agreed:
        row = rows.get(sku)
        if row is None:
            row = ChannelStock(channel=channel, sku=sku)
            session.add(row)
        row.pushed_available, row.pushed_at = wanted[sku], now
        row.conflict_seen = row.conflict_at = None
    for sku, seen in conflicts.items():
        row = rows[sku]  # a conflict is judged against a last push, so its row is there
        if row.conflict_seen != seen:
            row.conflict_seen, row.conflict_at = seen, now


def untold_conflicts(session: Session, flow: str) -> list[Conflict]:
    """Open conflicts that none of `flow`'s alerts named (their summaries list the keys told)."""
    told: set[str] = set()
    for summary in session.scalars(select(SentAlert.summary).where(SentAlert.flow == flow)):
        told.update((summary or {}).get("conflicts", []))
    rows = session.execute(
        select(ChannelStock.channel, ChannelStock.sku, ChannelStock.conflict_seen, ChannelStock.conflict_at)
        .where(ChannelStock.conflict_seen.is_not(None))
        .order_by(ChannelStock.channel, ChannelStock.sku)
    )
    conflicts = [Conflict(channel, sku, seen, since) for channel, sku, seen, since in rows]
    return [conflict for conflict in conflicts if conflict.key not in told]
