"""Order-intake tasks: one channel call or one database unit of work each."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from domain.intake import Decision, Known, Rejection
from domain.orders import CatalogPrice, ChannelOrder
from integrations.protocols import ExportStatus, OrderExport, OrderPage, UpstreamError
from integrations.settings import cached_settings
from integrations.wiring import order_source
from models import intake as store
from models.db import unit_of_work

# Payload batches are large: never hash them for a cache key.
batch_task = task(cache_policy=NO_CACHE)


def _db() -> str:
    return cached_settings().database_url


@dataclass(frozen=True, slots=True)
class Watermark:
    synced_through: datetime | None
    state: dict[str, Any]


@dataclass(frozen=True, slots=True)
class IntakeContext:
    """What deciding a batch needs from the database."""

    known: dict[str, tuple[int, Known]]
    catalog: dict[str, CatalogPrice]
    available: dict[str, int]


@batch_task(name="load-watermark")
def load_watermark(channel: str, resource: str = "orders") -> Watermark:
    with unit_of_work(_db()) as session:
        row = store.watermark(session, channel, resource)
        return Watermark(row.synced_through, dict(row.state or {})) if row else Watermark(None, {})


@batch_task(name="fetch-changed-orders")
def fetch_changed_orders(channel: str, since: datetime | None, cursor: str | None, limit: int) -> OrderPage:
    """A batch of changed orders; the client retries transient failures itself."""
    return order_source(channel).changed_orders(since, cursor, limit)


def _exporter(channel: str) -> OrderExport:
    source = order_source(channel)
    if not isinstance(source, OrderExport):
        raise TypeError(f"{channel} cannot export its order history")
    return source


@batch_task(name="start-order-export")
def start_order_export(channel: str, resume_job: str | None) -> ExportStatus:
    """Starts the channel-side export, or adopts the one a crashed run left behind."""
    exporter = _exporter(channel)
    if resume_job:
        status = exporter.export_status(resume_job)
        if status.state != "failed":
            return status
    return exporter.start_export()


@batch_task(name="wait-for-order-export")
def wait_for_order_export(channel: str, job_id: str, poll_seconds: float = 1.0, timeout_seconds: float = 6 * 3600) -> ExportStatus:
    """Polls until the export completes; Shopify bulk operations take minutes on big stores."""
    exporter = _exporter(channel)
    began = time.monotonic()
    deadline = began + timeout_seconds
    while True:
        status = exporter.export_status(job_id)
        if status.state == "completed":
            return status
        if status.state == "failed":
            raise UpstreamError(f"{channel} export {job_id} failed: {status.error}")
        if time.monotonic() > deadline:
            raise UpstreamError(f"{channel} export {job_id} still running after {timeout_seconds:.0f} s")
        time.sleep(poll_seconds)
        # Wait about a tenth of the time waited so far (at most 15 s): few polls on a long
        # export, yet a finished one is seen within ~10%. Growing the wait by half each time
        # noticed an export done just after a poll up to 50% late.
        poll_seconds = min(max(poll_seconds, 0.1 * (time.monotonic() - began)), 15.0)


@batch_task(name="download-order-export")
def download_order_export(channel: str, url: str) -> Path:
    """Streams the export to a local file (a fresh one per run)."""
    handle, name = tempfile.mkstemp(prefix=f"clerk-{channel}-export-", suffix=".jsonl")
    os.close(handle)
    _exporter(channel).download_export(url, Path(name))
    return Path(name)


@batch_task(name="load-intake-context")
def load_intake_context(channel: str, orders: list[ChannelOrder]) -> IntakeContext:
    skus = {line.sku for order in orders for line in order.lines if line.sku}
    with unit_of_work(_db()) as session:
        return IntakeContext(
            known=store.known_orders(session, channel, [o.external_id for o in orders]),
            catalog=store.catalog_prices(session, skus),
            available=store.available_units(session, skus),
        )


@batch_task(name="store-orders")
def store_orders(
    channel: str,
    decisions: list[Decision],
    rejections: list[Rejection],
    known: dict[str, tuple[int, Known]],
    synced_through: datetime | None,
    sync_state: dict[str, Any],
) -> None:
    """One transaction: orders, holds, reservations, quarantine, and the watermark after them."""
    with unit_of_work(_db()) as session:
        store.store_decisions(session, channel, decisions, known)
        store.store_rejections(session, rejections)
        store.set_watermark(session, channel, synced_through, sync_state)


@batch_task(name="advance-watermark")
def advance_watermark(channel: str, synced_through: datetime | None, state: dict[str, Any]) -> None:
    with unit_of_work(_db()) as session:
        store.set_watermark(session, channel, synced_through, state)


@dataclass(frozen=True, slots=True)
class StockWait:
    """Orders held for stock alone (row id, channel, external id, placed, demand) and the free units."""

    orders: list[tuple[int, str, str, datetime, dict[str, int]]]
    available: dict[str, int]


@batch_task(name="find-orders-waiting-for-stock")
def find_orders_waiting_for_stock() -> StockWait:
    with unit_of_work(_db()) as session:
        return StockWait(*store.waiting_for_stock(session))


@batch_task(name="release-orders-for-stock")
def release_orders_for_stock(granted: list[tuple[int, dict[str, int]]]) -> None:
    with unit_of_work(_db()) as session:
        store.release_for_stock(session, granted)


@batch_task(name="read-quarantine-notes")
def read_quarantine_notes(channel: str, digests: list[str]) -> dict[str, tuple[str, str]]:
    """Payload digest -> (reason, detail) of this channel's quarantined payloads among `digests`."""
    with unit_of_work(_db()) as session:
        return store.quarantine_notes(session, channel, digests)
