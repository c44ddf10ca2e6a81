"""Upserting the catalog: the master catalog (`clerk import catalog`) wins over channels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from models.base import utcnow
from models.catalog import Product, Variant

MASTER = "master"
VARIANT_FIELDS = (
    "title", "price", "currency", "cost", "weight_grams", "barcode", "category", "supplier",
    "lead_time_days", "moq", "pack_size",
)


def upsert_variants(session: Session, rows: Sequence[dict[str, Any]], source: str) -> dict[str, int]:
    """Inserts new SKUs and updates known ones; a channel never overwrites a master row.

    Each row has `sku`, `title`, `price`, `currency`, optionally `product_title`,
    `channel_ref` and the other catalog columns. Returns counts: created, updated, kept.
    """
    counts = {"created": 0, "updated": 0, "kept": 0}
    by_sku = {row["sku"]: row for row in rows}
    existing = {
        v.sku: v for v in session.scalars(select(Variant).where(Variant.sku.in_(sorted(by_sku))))
    } if by_sku else {}
    products: dict[str, int] = {}
    for sku, row in by_sku.items():
        values = {name: row[name] for name in VARIANT_FIELDS if name in row}
        variant = existing.get(sku)
        if variant is None:
            title = row.get("product_title") or row["title"]
            if title not in products:
                products[title] = session.execute(
                    insert(Product).values(title=title, category=row.get("category")).returning(Product.id)
                ).scalar_one()
            refs = {source: row["channel_ref"]} if row.get("channel_ref") else {}
            session.execute(insert(Variant).values(
                product_id=products[title], sku=sku, source=source, channel_refs=refs, updated_at=utcnow(), **values
            ))
            counts["created"] += 1
            continue
        refs = dict(variant.channel_refs or {})
        if row.get("channel_ref"):
            refs[source] = row["channel_ref"]
        if variant.source == MASTER and source != MASTER:
            if refs != variant.channel_refs:
                session.execute(update(Variant).where(Variant.id == variant.id).values(channel_refs=refs))
            counts["kept"] += 1
            continue
        changed = {k: v for k, v in values.items() if getattr(variant, k) != v}
        if changed or variant.source != source or refs != variant.channel_refs:
            session.execute(update(Variant).where(Variant.id == variant.id).values(
                source=source, channel_refs=refs, updated_at=utcnow(), **changed
            ))
            counts["updated"] += 1
        else:
            counts["kept"] += 1
    return counts
