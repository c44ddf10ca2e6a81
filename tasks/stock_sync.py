"""Stock sync tasks: one database read, or one batch pushed to a channel and recorded, each."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE

from domain.stock_sync import Conflict, Push, Pushed
from integrations.protocols import OrderWriter, StockReport
from integrations.settings import cached_settings
from integrations.wiring import order_source
from models import stock_sync as store
from models.db import unit_of_work

# A whole catalog's counts: never hash them for a cache key.
sync_task = task(cache_policy=NO_CACHE)


def _db() -> str:
    return cached_settings().database_url


@dataclass(frozen=True, slots=True)
class StockToSync:
    """Available units by SKU, and what each channel was last told, read in one transaction."""

    available: dict[str, int]
    pushed: dict[str, dict[str, Pushed]]
    sold_since: dict[str, dict[str, int]]  # channel -> SKU -> units its orders took since the last push


@sync_task(name="load-stock-to-sync")
def load_stock_to_sync(channels: list[str]) -> StockToSync:
    with unit_of_work(_db()) as session:
        return StockToSync(store.available_by_sku(session), store.pushed(session, channels),
                           {channel: store.sold_since_push(session, channel) for channel in channels})


@sync_task(name="push-stock")
def push_stock(channel: str, batch: list[Push], key: str) -> StockReport:
    """Sets one batch's counts on a channel (the client retries transient failures itself), then
    records what the channel now shows in one unit of work. A batch pushed again after a crash
    between the two finds its counts already set: nothing is written twice."""
    writer = order_source(channel)
    if not isinstance(writer, OrderWriter):
        raise TypeError(f"{channel} cannot take stock counts")
    report = writer.set_stock(batch, key)
    with unit_of_work(_db()) as session:
        store.record_push(session, channel, {push.sku: push.available for push in batch},
                          report.written + report.already, report.conflicts)
    return report


@sync_task(name="find-untold-conflicts")
def find_untold_conflicts(flow: str) -> list[Conflict]:
    with unit_of_work(_db()) as session:
        return store.untold_conflicts(session, flow)
