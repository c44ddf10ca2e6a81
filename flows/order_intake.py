"""order-intake: pull new and changed orders, check them, store them, reserve stock, alert once.

fetch (channel) → check (quality suite) → decide (domain) → store (one transaction per
batch, watermark last) → alert (one Slack message for what needs a person).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote

from domain.intake import Tally, decide_batch
from domain.orders import PriceTolerance
from domain.reasons import ALL_REASONS
from domain.stock import Claim, allocate
from flows.alerting import run_link, tell_clerks, trouble_reported
from integrations.protocols import OrderExport, Payload
from integrations.settings import Intake, cached_settings
from integrations.wiring import enabled_channels, order_source
from tasks.catalog import RESOURCE as CATALOG
from tasks.catalog import fetch_channel_catalog, store_channel_catalog
from tasks.orders import (
    advance_watermark,
    download_order_export,
    fetch_changed_orders,
    find_orders_waiting_for_stock,
    load_intake_context,
    load_watermark,
    release_orders_for_stock,
    start_order_export,
    store_orders,
    wait_for_order_export,
)
from tasks.quality import check_orders

FLOW = "order-intake"


def process_batch(
    channel: str, payloads: list[Payload], tally: Tally, tolerance: PriceTolerance,
    synced_through: datetime | None, state: dict[str, Any],
) -> None:
    """One batch of a channel's payloads: check, decide, store (with the watermark), tally."""
    checked = check_orders(channel, quote(payloads))
    context = load_intake_context(channel, quote(checked.orders))
    known = {external_id: stored for external_id, (_, stored) in context.known.items()}
    decisions = decide_batch(checked.orders, known, context.catalog, context.available, tolerance)
    store_orders(channel, quote(decisions), quote(checked.rejections), quote(context.known), synced_through, state)
    tally.record(channel, decisions, checked.rejections)


def _incremental(channel: str, since: datetime | None, tally: Tally, settings: Intake, tolerance: PriceTolerance) -> None:
    if since is not None:  # re-read a little: search indexes lag behind the newest writes
        since -= timedelta(seconds=settings.watermark_overlap_seconds)
    cursor = None
    while True:
        page = fetch_changed_orders(channel, since, cursor, settings.batch_size)
        if page.payloads:
            process_batch(channel, page.payloads, tally, tolerance, page.high_water, {})
        if page.cursor is None:
            return
        cursor = page.cursor


@contextmanager
def _batch_without_cyclic_gc() -> Iterator[None]:
    """Runs one backfill batch with CPython's cyclic collector paused, then sweeps what it left.

    A batch makes hundreds of thousands of objects that live until it is stored (payloads,
    orders, rows). The collector, set off every 700 new objects, kept walking them and all
    older ones: ~9 s per 100,000 orders. Paused, everything the batch made stays in the
    youngest generation, and one young collection afterwards finds any cycles among it.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect(0)


def _backfill(channel: str, source: OrderExport, state: dict[str, Any], tally: Tally, settings: Intake, tolerance: PriceTolerance) -> datetime:
    """A store's whole history through the channel's export; resumes a crashed run's export."""
    resume = state.get("backfill", {})
    status = start_order_export(channel, resume.get("job_id"))
    done = int(resume.get("done", 0)) if resume.get("job_id") == status.job_id else 0
    job = {"job_id": status.job_id, "started_at": status.started_at.isoformat()}
    advance_watermark(channel, None, {"backfill": job | {"done": done}})
    status = wait_for_order_export(channel, status.job_id)
    path = download_order_export(channel, status.url)
    progress = create_progress_artifact(0.0, description=f"{channel} backfill: {status.root_count} orders")
    position = 0
    try:
        batches = iter(source.read_export(path, settings.backfill_batch_size))
        while True:
            with _batch_without_cyclic_gc():
                payloads = next(batches, None)
                if payloads is None:
                    break
                start, position = position, position + len(payloads)
                if position > done:
                    fresh = payloads[max(done - start, 0):]
                    process_batch(channel, fresh, tally, tolerance, None, {"backfill": job | {"done": position}})
                    update_progress_artifact(progress, 100.0 * position / max(status.root_count, 1))
                    del fresh
                # The reader holds on to its batch until the next one: free it before the sweep.
                payloads.clear()
    finally:
        os.unlink(path)
    update_progress_artifact(progress, 100.0)
    advance_watermark(channel, status.started_at, {})
    return status.started_at


def _sync_channel(channel: str, tally: Tally, settings: Intake, tolerance: PriceTolerance) -> None:
    catalog_since = load_watermark(channel, CATALOG).synced_through
    store_channel_catalog(channel, quote(fetch_channel_catalog(channel, catalog_since)))
    watermark = load_watermark(channel)
    source = order_source(channel)
    since = watermark.synced_through
    if since is None and isinstance(source, OrderExport):
        since = _backfill(channel, source, watermark.state, tally, settings, tolerance)
    _incremental(channel, since, tally, settings, tolerance)


def _release_stock_holds(tally: Tally) -> int:
    """Orders held only for stock take what arrived or was released since, oldest first."""
    waiting = find_orders_waiting_for_stock()
    claims = [Claim(str(order_id), wanted, {}) for order_id, _, _, _, wanted in waiting.orders]
    granted = allocate(claims, waiting.available)
    released = [(order_id, channel, external_id, wanted) for order_id, channel, external_id, _, wanted in waiting.orders
                if str(order_id) in granted]
    if released:
        release_orders_for_stock(quote([(order_id, wanted) for order_id, _, _, wanted in released]))
        tally.release((channel, external_id) for _, channel, external_id, _ in released)
    return len(released)


def _publish(summary: dict[str, Any]) -> None:
    rows = [{"channel": name} | counts for name, counts in summary["channels"].items()]
    create_table_artifact(rows, key="order-intake-summary", description="Orders by channel, this run")
    reasons = [{"reason": code, "count": count} for code, count in summary["reasons"].items() if count]
    if reasons:
        create_table_artifact(reasons, key="order-intake-reasons", description="Held and quarantined, by reason")


@flow(name=FLOW)
def order_intake(channels: list[str] | None = None) -> dict[str, Any]:
    """Pulls new and changed orders from every enabled channel.

    Args:
        channels: limit the run to these channels (default: every configured one).

    Returns:
        The run's summary (the contract's `--json` object, without `state`).
    """
    settings = cached_settings()
    intake = settings.toml.intake
    tolerance = PriceTolerance(intake.price_tolerance_absolute, intake.price_tolerance_relative)
    names = channels or enabled_channels(settings)
    tally = Tally()
    logger = get_run_logger()
    with trouble_reported(FLOW):
        # Before: orders already waiting get first call on stock that arrived since the last run.
        # After: stock freed by cancellations in this run.
        released = _release_stock_holds(tally)
        for channel in names:
            _sync_channel(channel, tally, intake, tolerance)
        released += _release_stock_holds(tally)
        alerts_sent = tell_clerks(FLOW, flow_run.get_id(), run_link())
    summary = {
        "flow": FLOW,
        **tally.counts(),
        "reasons": tally.reason_counts(ALL_REASONS),
        "released": released,
        "alerts_sent": alerts_sent,
        "channels": {name: tally.counts(name) for name in names},
    }
    _publish(summary)
    logger.info("order-intake: %s", {k: v for k, v in summary.items() if k != "channels"})
    return summary
