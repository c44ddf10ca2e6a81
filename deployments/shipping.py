"""`clerk pack`: what a packer put in the box, checked against the order before its label."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from domain.shipping import check_packing
from models import shipping_store
from models.db import unit_of_work


def read_scans(path: Path) -> list[str]:
    """SKUs from a scans CSV: a `sku` column, one row a unit, or `sku,quantity`."""
    scans: list[str] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if "sku" not in (reader.fieldnames or []):
            raise ValueError(f"{path.name}: needs a sku column")
        for row in reader:
            sku = (row.get("sku") or "").strip()
            if not sku:
                continue
            raw = (row.get("quantity") or "1").strip()
            if not raw.isdigit() or int(raw) < 1:
                raise ValueError(f"{path.name}:{reader.line_num}: quantity {raw!r} is not a positive whole number")
            scans += [sku] * int(raw)
    return scans


def pack(database_url: str, number: str, channel: str | None, scans: list[str], by: str) -> dict[str, Any]:
    """Records the scans for order `number`; the report says whether its label may be bought.

    Raises:
        shipping_store.OrderLookupError: no such order, or the number is on several channels.
    """
    with unit_of_work(database_url) as session:
        order = shipping_store.order_by_number(session, number, channel)
        check = check_packing(order.lines, scans)
        status = shipping_store.record_pack(session, order, scans, check, by)
    return {"order": order.number, "channel": order.channel, "matches": check.matches,
            "missing": check.missing, "extra": check.extra, "status": status}
