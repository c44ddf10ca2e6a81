"""Setting on-hand counts through the stock ledger."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from models.base import utcnow
from models.catalog import Variant
from models.stock import StockMovement


def known_skus(session: Session, skus: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(skus), 5000):
        found.update(session.scalars(select(Variant.sku).where(Variant.sku.in_(skus[start : start + 5000]))))
    return found


def set_on_hand(
    session: Session, counts: Sequence[tuple[str, str, int]], kind: str, note: str, actor: str | None = None
) -> list[tuple[str, str, int, int]]:
    """Writes one ledger entry per (sku, location) whose on-hand count changes.

    Returns:
        (sku, location, on hand before, on hand now) of every count given, changed or not.
    """
    current = {
        (sku, location): int(units or 0)
        for sku, location, units in session.execute(
            select(StockMovement.sku, StockMovement.location, func.sum(StockMovement.on_hand_delta))
            .where(StockMovement.sku.in_(sorted({sku for sku, _, _ in counts})))
            .group_by(StockMovement.sku, StockMovement.location)
        )
    }
    now = utcnow()
    movements = [
        {"sku": sku, "location": location, "kind": str(kind), "on_hand_delta": units - current.get((sku, location), 0),
         "reserved_delta": 0, "note": note, "actor": actor, "created_at": now}
        for sku, location, units in counts
        if units != current.get((sku, location), 0)
    ]
    if movements:
        session.execute(insert(StockMovement), movements)
    return [(sku, location, current.get((sku, location), 0), units) for sku, location, units in counts]
