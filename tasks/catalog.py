"""Catalog tasks: pull a channel's variants; store them under the master catalog."""

from __future__ import annotations

from datetime import datetime

from prefect import task
from prefect.cache_policies import NO_CACHE

from integrations.protocols import CatalogItem
from integrations.settings import cached_settings
from integrations.wiring import order_source
from models.catalog_store import upsert_variants
from models.db import unit_of_work
from models.intake import set_watermark

RESOURCE = "variants"


@task(name="fetch-channel-catalog", cache_policy=NO_CACHE)
def fetch_channel_catalog(channel: str, since: datetime | None) -> list[CatalogItem]:
    """Variants changed since `since` (every variant when None)."""
    return [item for page in order_source(channel).catalog_pages(since) for item in page]


@task(name="store-channel-catalog", cache_policy=NO_CACHE)
def store_channel_catalog(channel: str, items: list[CatalogItem]) -> dict[str, int]:
    """Upserts under the master catalog, then moves the variants watermark in the same transaction."""
    rows = [
        {"sku": i.sku, "title": i.title, "price": i.price, "currency": i.currency, "product_title": i.product_title,
         "barcode": i.barcode, "category": i.category, "channel_ref": i.channel_ref}
        for i in items
    ]
    stamps = [i.updated_at for i in items if i.updated_at is not None]
    with unit_of_work(cached_settings().database_url) as session:
        counts = upsert_variants(session, rows, channel)
        if stamps:
            set_watermark(session, channel, max(stamps), {}, resource=RESOURCE)
        return counts
