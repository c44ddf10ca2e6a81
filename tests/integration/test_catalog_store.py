"""The catalog by SKU on both databases: the master catalog wins over channels."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from models import Variant
from models.catalog_store import MASTER, upsert_variants
from models.db import unit_of_work


def _variant(url: str, sku: str) -> Variant:
    with unit_of_work(url) as session:
        return session.scalars(select(Variant).where(Variant.sku == sku)).one()


def test_master_wins_and_channels_fill_the_gaps(database_url: str) -> None:
    master = [{"sku": "A-1", "title": "Mug", "price": Decimal("12.50"), "currency": "USD", "supplier": "ACME"}]
    channel = [
        {"sku": "A-1", "title": "Mug (web)", "price": Decimal("9.99"), "currency": "USD", "channel_ref": "gid://shopify/ProductVariant/1"},
        {"sku": "B-2", "title": "Bowl", "price": Decimal("20.00"), "currency": "USD", "channel_ref": "gid://shopify/ProductVariant/2"},
    ]
    with unit_of_work(database_url) as session:
        assert upsert_variants(session, master, MASTER) == {"created": 1, "updated": 0, "kept": 0}
    with unit_of_work(database_url) as session:
        assert upsert_variants(session, channel, "shopify") == {"created": 1, "updated": 0, "kept": 1}
    kept = _variant(database_url, "A-1")
    assert (kept.title, kept.price, kept.source, kept.supplier) == ("Mug", Decimal("12.50"), MASTER, "ACME")
    assert kept.channel_refs == {"shopify": "gid://shopify/ProductVariant/1"}
    assert _variant(database_url, "B-2").source == "shopify"

    with unit_of_work(database_url) as session:  # the same channel rows again: nothing to do
        assert upsert_variants(session, channel, "shopify") == {"created": 0, "updated": 0, "kept": 2}
    with unit_of_work(database_url) as session:  # the master takes over a channel SKU
        upsert_variants(session, [{"sku": "B-2", "title": "Bowl", "price": Decimal("22.00"), "currency": "USD"}], MASTER)
    taken = _variant(database_url, "B-2")
    assert (taken.source, taken.price) == (MASTER, Decimal("22.00"))
