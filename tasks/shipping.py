"""ship-orders tasks: a batch's carrier calls, or one database unit of work, each.

Buying is exactly once per order: the ledger row `label:{order id}:1` is written before the
carrier is called, the carrier gets that key (and has it as the shipment's reference),
and an attempt that finds the row already started asks the carrier for the label first.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from domain.orders import Address
from domain.shipping import BoughtLabel, ShipHold, lane
from integrations.protocols import AddressCheck, Label, OrderWriter, Parcel, Rate, Tracking
from integrations.settings import cached_settings
from integrations.wiring import carrier, enabled_channels, order_source
from models import shipping_store as store
from models.db import unit_of_work
from models.ledger import begin_effect, finish_effect
from models.shipping_store import ToShip

log = logging.getLogger("clerk.shipping")
# Batches carry addresses and lines: never hash them for a cache key.
ship_task = task(cache_policy=NO_CACHE)


def _db() -> str:
    return cached_settings().database_url


def label_key(order_id: int) -> str:
    return f"label:{order_id}:1"


@ship_task(name="load-orders-to-ship")
def load_orders_to_ship(after_id: int, limit: int) -> list[ToShip]:
    with unit_of_work(_db()) as session:
        return store.orders_to_ship(session, after_id, limit)


@ship_task(name="hold-orders")
def hold_orders(holds: list[tuple[int, str, str | None]]) -> None:
    with unit_of_work(_db()) as session:
        store.hold_for_shipping(session, holds)


@ship_task(name="find-orders-held-for-weight")
def find_orders_held_for_weight() -> list[tuple[int, dict[str, int], dict[str, int | None]]]:
    with unit_of_work(_db()) as session:
        return store.held_for_weight(session)


@ship_task(name="release-orders-held-for-weight")
def release_orders_held_for_weight(order_ids: list[int]) -> None:
    with unit_of_work(_db()) as session:
        store.release_holds(session, order_ids, ShipHold.MISSING_WEIGHT.value)


@ship_task(name="verify-addresses", retries=2, retry_delay_seconds=10)
def verify_addresses(orders: list[ToShip]) -> dict[int, AddressCheck]:
    """The carrier's verdict on each order's ship-to address (the client retries transient failures)."""
    blank = Address()
    return {order.id: carrier().verify_address(order.ship_to or blank) for order in orders}


@ship_task(name="quote-rates", retries=2, retry_delay_seconds=10)
def quote_rates(orders: list[ToShip], grams: dict[int, int], ship_from: Address) -> dict[int, tuple[str, list[Rate]]]:
    """A shipment per order, created with its label key as the reference, and the rates quoted."""
    blank = Address()
    return {order.id: carrier().rates(ship_from, order.ship_to or blank, Parcel(grams[order.id]), label_key(order.id))
            for order in orders}


@dataclass(frozen=True, slots=True)
class Choice:
    order: ToShip
    shipment_id: str
    rate_id: str
    promised_by: date | None


# Safe to retry whole: an order whose label went is skipped by its ledger row, and one whose
# answer was lost (or whose record a crash cut off) is found by its reference before any second buy.
@ship_task(name="buy-labels", retries=2, retry_delay_seconds=10)
def buy_labels(choices: list[Choice], flow_run_id: str | None) -> list[int]:
    """Buys each chosen label once and records it; returns the orders that have their label now.

    Three steps, so a batch costs two transactions rather than several an order: every
    order's ledger row is written before anything is bought; the labels are bought (or
    found, for a row an earlier attempt started) and their files fetched; then all are
    recorded together, also when the buying stopped part-way.
    """
    started: dict[int, tuple[str, int]] = {}
    with unit_of_work(_db()) as session:
        for choice in choices:
            order = choice.order
            request = hashlib.sha256(repr((order.id, sorted(order.lines.items()))).encode()).hexdigest()
            effect = begin_effect(session, label_key(order.id), "label", order.number, request, flow_run_id)
            started[order.id] = (effect.state, effect.attempts)
    bought: list[tuple[Choice, Label, str | None]] = []
    try:
        for choice in choices:
            state, attempts = started[choice.order.id]
            if state == "done":
                continue
            key = label_key(choice.order.id)
            label = carrier().find_label(key) if attempts > 1 else None
            if label is None:
                label = carrier().buy_label(choice.shipment_id, choice.rate_id, key)
            bought.append((choice, label, _fetch_label_file(label)))
    finally:
        _record(bought)
    return [choice.order.id for choice in choices if started[choice.order.id][0] == "done"] + \
        [choice.order.id for choice, _, _ in bought]


def _record(bought: list[tuple[Choice, Label, str | None]]) -> None:
    if not bought:
        return
    with unit_of_work(_db()) as session:
        for choice, label, path in bought:
            order, key = choice.order, label_key(choice.order.id)
            kept = BoughtLabel(label.shipment_id, label.tracking_number, label.carrier, label.service, label.cost,
                               label.currency)
            zone = lane(order.ship_to.country if order.ship_to else None, order.ship_to.postal_code if order.ship_to else None)
            shipment_id = store.record_label(session, order, key, kept, choice.promised_by, zone)
            if path:
                store.set_label_path(session, shipment_id, path)
            finish_effect(session, key, label.tracking_number, {"carrier": label.carrier, "service": label.service,
                                                               "cost": str(label.cost), "currency": label.currency})


def _fetch_label_file(label: Label) -> str | None:
    """Stores the printable label; a download that fails leaves the label bought and recorded."""
    folder = cached_settings().toml.shipping.labels_dir
    try:
        content = carrier().download_label(label.label_url)
    except Exception as exc:  # noqa: BLE001 - the label is bought; the file can be fetched again
        log.warning("label file for %s not downloaded (%s)", label.tracking_number, type(exc).__name__)
        return None
    suffix = ".pdf" if content.startswith(b"%PDF") else ".png" if content.startswith(b"\x89PNG") else ".bin"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_safe(f'{label.carrier}-{label.tracking_number}')}{suffix}"
    path.write_bytes(content)
    return str(path)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


@ship_task(name="write-fulfillments", retries=2, retry_delay_seconds=10)
def write_fulfillments(flow_run_id: str | None) -> tuple[int, int]:
    """Tells each order's channel its tracking once; returns (written, left for a channel Clerk
    cannot write to, e.g. a marketplace file)."""
    with unit_of_work(_db()) as session:
        pending = store.unwritten_fulfillments(session)
    writable = set(enabled_channels(cached_settings()))
    written = skipped = 0
    for shipment in pending:
        writer = order_source(shipment.channel) if shipment.channel in writable else None
        if not isinstance(writer, OrderWriter):
            skipped += 1
            continue
        key = f"fulfil:{shipment.order_id}:1"
        with unit_of_work(_db()) as session:
            begin_effect(session, key, "fulfillment", shipment.external_id, shipment.tracking_number, flow_run_id)
        reference = writer.fulfill(shipment.external_id, shipment.lines, Tracking(shipment.tracking_number, shipment.carrier), key)
        with unit_of_work(_db()) as session:
            finish_effect(session, key, reference, {"channel": shipment.channel})
            store.record_fulfillment(session, shipment.shipment_id, reference)
        written += 1
    return written, skipped


@ship_task(name="render-shipping-documents")
def render_shipping_documents(orders: list[ToShip], run: str, ship_from: list[str]) -> list[str]:
    """The run's pick list and packing slips, as PDF files; returns their paths."""
    from integrations.documents.packing import PackingSlip, SlipLine, render_packing_slips, render_pick_list

    slips = [PackingSlip(order.number, order.channel, _address_lines(order.ship_to),
                         [SlipLine(sku, order.titles.get(sku, sku), units) for sku, units in sorted(order.lines.items())])
             for order in orders]
    folder = Path(cached_settings().toml.shipping.documents_dir) / _safe(run)
    folder.mkdir(parents=True, exist_ok=True)
    pick, packing = folder / "pick-list.pdf", folder / "packing-slips.pdf"
    pick.write_bytes(render_pick_list(slips, run))
    packing.write_bytes(render_packing_slips(slips, ship_from))
    return [str(pick), str(packing)]


def _address_lines(address: Address | None) -> list[str]:
    if address is None:
        return []
    city = " ".join(part for part in (address.city, address.province, address.postal_code) if part)
    return [part for part in (address.name, address.company, address.street1, address.street2, city, address.country) if part]
