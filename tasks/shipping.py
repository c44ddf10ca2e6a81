"""ship-orders tasks: one task a batch (load, gate, verify and quote, choose, buy, record),
plus the run's papers and fulfillments.

Buying is exactly once per order: the ledger row `label:{order id}:1` is written before the
carrier is called, the carrier gets that key (and has it as the shipment's reference),
and an attempt that finds the row already started asks the carrier for the label first.
A batch the gate stops (bad data upstream) spends nothing: the gate comes before any carrier call.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE

from domain.orders import Address
from domain.reasons import Hold
from domain.shipping import (
    BoughtLabel,
    Candidate,
    RateOption,
    ShipHold,
    batch_problems,
    choose_rate,
    lane,
    parcel_weight,
)
from integrations.protocols import AddressCheck, Label, OrderWriter, Parcel, Rate, Tracking
from integrations.settings import cached_settings
from integrations.wiring import carrier, enabled_channels, order_source
from models import shipping_store as store
from models.db import unit_of_work
from models.ledger import begin_effect, begin_effects, finish_effect, finish_effects
from models.shipping_store import ToShip

T = TypeVar("T")
log = logging.getLogger("clerk.shipping")
# Batches carry addresses and lines: never hash them for a cache key.
ship_task = task(cache_policy=NO_CACHE)


def _db() -> str:
    return cached_settings().database_url


def label_key(order_id: int) -> str:
    return f"label:{order_id}:1"


@ship_task(name="find-orders-held-for-weight")
def find_orders_held_for_weight() -> list[tuple[int, dict[str, int], dict[str, int | None]]]:
    with unit_of_work(_db()) as session:
        return store.held_for_weight(session)


@ship_task(name="release-orders-held-for-weight")
def release_orders_held_for_weight(order_ids: list[int]) -> None:
    with unit_of_work(_db()) as session:
        store.release_holds(session, order_ids, ShipHold.MISSING_WEIGHT.value)


# A step's retries inside the batch's task (what `retries=2, retry_delay_seconds=10` were on
# the step's own task): the carrier client retries transient failures itself; this covers longer ones.
STEP_RETRIES = 2
STEP_RETRY_DELAY = 10.0


def _again(step: Callable[[], T], what: str) -> T:
    for attempt in range(STEP_RETRIES + 1):
        try:
            return step()
        except Exception as exc:
            if attempt == STEP_RETRIES:
                raise
            log.warning("%s failed (%s); trying again in %.0f s", what, type(exc).__name__, STEP_RETRY_DELAY)
            time.sleep(STEP_RETRY_DELAY)
    raise AssertionError("unreachable")


@dataclass
class BatchOutcome:
    """What one batch did: the flow adds it to the run's tally."""

    last_id: int  # the batch's last order: the next batch starts after it
    considered: int
    holds: list[tuple[int, str, str | None]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why the gate stopped the batch (nothing bought)
    bought: int = 0
    unverified: int = 0  # of those bought, to addresses the carrier could not check
    shipped: list[ToShip] = field(default_factory=list)  # their papers are still to print

    @property
    def stopped(self) -> bool:
        return bool(self.problems)


@ship_task(name="ship-batch")
def ship_batch(after_id: int, limit: int, ship_from: Address, promise_days: int, flow_run_id: str | None
               ) -> BatchOutcome | None:
    """The next `limit` orders to ship after `after_id`, each bought its label once; None when none is left.

    One task a batch (a task run costs more than a hundred orders' own work). In order: the
    batch is weighed and gated, and a batch with bad data stops before any carrier call (its
    orders named are held, the rest wait for the next run); addresses are verified and shipments
    quoted; the holds are written; then the chosen labels are bought through the ledger and
    recorded (`buy_labels`). The carrier steps are retried within the task, and each is safe to repeat.
    """
    with unit_of_work(_db()) as session:
        batch = store.orders_to_ship(session, after_id, limit)
    if not batch:
        return None
    outcome = BatchOutcome(last_id=batch[-1].id, considered=len(batch))
    today = datetime.now(UTC).date()
    weighed = {order.id: parcel_weight(order.lines, order.weights) for order in batch}
    holds = [(o.id, ShipHold.MISSING_WEIGHT.value, "no weight in the catalog for " + ", ".join(weighed[o.id].missing))
             for o in batch if weighed[o.id].grams is None]
    ready = [o for o in batch if weighed[o.id].grams is not None]
    problems = batch_problems([
        Candidate(o.id, f"{o.channel} {o.number}", weighed[o.id].grams, o.ship_to.street1 if o.ship_to else None,
                  o.ship_to.country if o.ship_to else None)
        for o in ready])
    if problems:  # bad data upstream: nothing of this batch is bought; the orders named wait
        outcome.problems = [problem.detail for problem in problems]
        holds += [(problem.key, problem.reason, problem.detail) for problem in problems]
        _hold(holds)
        outcome.holds = holds
        return outcome
    grams = {o.id: weighed[o.id].grams or 0 for o in ready}
    checks, quotes = _again(lambda: verify_and_quote(ready, grams, ship_from), "verify-and-quote") \
        if ready else ({}, {})
    holds += [(o.id, Hold.INCOMPLETE_ADDRESS.value, checks[o.id].message) for o in ready if not checks[o.id].ok]
    ready = [o for o in ready if checks[o.id].ok]
    # A carrier without address validation (Karrio's generic carrier) checked nothing: the
    # order's own checks (intake's incomplete_address, the gate's empty address) stand alone,
    # and the label's ledger row says it went unverified.
    unverified = {o.id for o in ready if not checks[o.id].checked}
    choices = []
    for order in ready:
        shipment_id, rates = quotes[order.id]
        promised_by = (order.placed_at + timedelta(days=promise_days)).date()
        chosen = choose_rate([RateOption(r.id, r.carrier, r.service, r.amount, r.delivery_days) for r in rates],
                             today, promised_by)
        if chosen is None:
            holds.append((order.id, ShipHold.NO_RATE.value, "the carrier quoted no service"))
        else:
            choices.append(Choice(order, shipment_id, chosen.id, promised_by, order.id not in unverified))
    _hold(holds)
    outcome.holds = holds
    bought = set(_again(lambda: buy_labels(choices, flow_run_id), "buy-labels")) if choices else set()
    outcome.bought = len(bought)
    outcome.unverified = len(bought & unverified)
    outcome.shipped = [o for o in ready if o.id in bought]
    return outcome


def _hold(holds: list[tuple[int, str, str | None]]) -> None:
    if holds:
        with unit_of_work(_db()) as session:
            store.hold_for_shipping(session, holds)


def verify_and_quote(orders: list[ToShip], grams: dict[int, int], ship_from: Address
                     ) -> tuple[dict[int, AddressCheck], dict[int, tuple[str, list[Rate]]]]:
    """The carrier's verdict on each order's ship-to address, then, for each address it did
    not refuse, a shipment created with the order's label key as the reference and its rates.

    Carrier reads only (the client retries transient failures): repeating it costs nothing
    (a shipment created twice and never bought costs nothing).
    """
    blank = Address()
    checks = {order.id: carrier().verify_address(order.ship_to or blank) for order in orders}
    quotes = {order.id: carrier().rates(ship_from, order.ship_to or blank, Parcel(grams[order.id]), label_key(order.id))
              for order in orders if checks[order.id].ok}
    return checks, quotes


@dataclass(frozen=True, slots=True)
class Choice:
    order: ToShip
    shipment_id: str
    rate_id: str
    promised_by: date | None
    address_checked: bool = True  # False: the carrier has no address validation; bought unverified


# Safe to repeat whole: an order whose label went is skipped by its ledger row, and one whose
# answer was lost (or whose record a crash cut off) is found by its reference before any second buy.
def buy_labels(choices: list[Choice], flow_run_id: str | None) -> list[int]:
    """Buys each chosen label once and records it; returns the orders that have their label now.

    Three steps, so a batch costs two transactions (of a few statements each, whatever its
    size) rather than several an order: every order's ledger row is written before anything
    is bought; the labels are bought (or found, for a row an earlier attempt started) and
    their files fetched; then all are recorded together, also when the buying stopped part-way.
    """
    with unit_of_work(_db()) as session:
        started = begin_effects(session, [
            (label_key(c.order.id), "label", c.order.number,
             hashlib.sha256(repr((c.order.id, sorted(c.order.lines.items()))).encode()).hexdigest())
            for c in choices], flow_run_id)
    bought: list[tuple[Choice, Label, Future[str | None] | None]] = []
    files = LabelFiles(cached_settings().toml.shipping.labels_dir)
    try:
        for choice in choices:
            key = label_key(choice.order.id)
            state, attempts = started[key]
            if state == "done":
                continue
            files.check_writable()
            label = carrier().find_label(key) if attempts > 1 else None
            if label is None:
                label = carrier().buy_label(choice.shipment_id, choice.rate_id, key)
            bought.append((choice, label, files.fetch_and_store_later(label)))
    finally:
        # The files are written while the next labels are bought; a label is recorded once its
        # file is on disk (or without a path, when its file could not be written).
        written = files.finished()
        _record([(choice, label, written(saving)) for choice, label, saving in bought])
    return [c.order.id for c in choices if started[label_key(c.order.id)][0] == "done"] + \
        [choice.order.id for choice, _, _ in bought]


def _record(bought: list[tuple[Choice, Label, str | None]]) -> None:
    if not bought:
        return
    records, done = [], []
    for choice, label, path in bought:
        order, key = choice.order, label_key(choice.order.id)
        kept = BoughtLabel(label.shipment_id, label.tracking_number, label.carrier, label.service, label.cost,
                           label.currency)
        zone = lane(order.ship_to.country if order.ship_to else None, order.ship_to.postal_code if order.ship_to else None)
        records.append(store.LabelRecord(order, key, kept, choice.promised_by, zone, path))
        result = {"carrier": label.carrier, "service": label.service, "cost": str(label.cost), "currency": label.currency}
        if not choice.address_checked:
            result["address_verified"] = False  # bought to an address the carrier could not check
        done.append((key, label.tracking_number, result))
    with unit_of_work(_db()) as session:
        store.record_labels(session, records)
        finish_effects(session, done)


class LabelFiles:
    """Stores printable labels under one folder (made once, on the first file)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._made = False
        self._writer: ThreadPoolExecutor | None = None
        self._unwritable: BaseException | None = None  # the first file that could not be written

    def fetch(self, label: Label) -> str | None:
        """Downloads and stores the label; a download that fails leaves the label bought and recorded."""
        content = self._download(label)
        if content is None:
            return None
        path = self._path(label, content)
        path.write_bytes(content)
        return str(path)

    def fetch_and_store_later(self, label: Label) -> Future[str | None] | None:
        """Downloads the label now and writes its file on a thread of its own (creating a file
        costs ~0.3 ms of the disk's time an order, the buying loop need not wait for it); the
        future gives the file's path. None when the download failed (the label stays bought).
        Call `finished` before using the paths."""
        content = self._download(label)
        if content is None:
            return None
        path = self._path(label, content)
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="label-files")
        saving = self._writer.submit(_write_file, path, content)
        saving.add_done_callback(self._note_failure)
        return saving

    def check_writable(self) -> None:
        """Raises the error of a file that could not be written (a full disk): buying stops
        before the next label, as it did when each file was waited for."""
        if self._unwritable is not None:
            raise self._unwritable

    def _note_failure(self, saving: Future[str | None]) -> None:
        failed = saving.exception()
        if failed is not None and self._unwritable is None:
            self._unwritable = failed

    def finished(self) -> Callable[[Future[str | None] | None], str | None]:
        """Waits for every file being written; returns how to read a future's path (None for
        a file that could not be written: its label is recorded without one, and logged)."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None

        def path(saving: Future[str | None] | None) -> str | None:
            if saving is None:
                return None
            failed = saving.exception()
            if failed is not None:
                log.error("label file not written (%s); the label is recorded without it", type(failed).__name__)
                return None
            return saving.result()

        return path

    def _download(self, label: Label) -> bytes | None:
        try:
            return carrier().download_label(label.label_url)
        except Exception as exc:  # noqa: BLE001 - the label is bought; the file can be fetched again
            log.warning("label file for %s not downloaded (%s)", label.tracking_number, type(exc).__name__)
            return None

    def _path(self, label: Label, content: bytes) -> Path:
        if not self._made:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._made = True
        return self.folder / f"{_safe(f'{label.carrier}-{label.tracking_number}')}{label_suffix(content)}"


def _write_file(path: Path, content: bytes) -> str:
    path.write_bytes(content)
    return str(path)


def label_suffix(content: bytes) -> str:
    """The file extension a label's content calls for: .pdf, .png, .zpl (Zebra's `^XA`), else .bin."""
    if content.startswith(b"%PDF"):
        return ".pdf"
    if content.startswith(b"\x89PNG"):
        return ".png"
    if content.lstrip()[:3] == b"^XA":
        return ".zpl"
    return ".bin"


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


# Papers drawn while `papers_drawn_apart` is open are drawn in a process of their own.
_drawing: ProcessPoolExecutor | None = None


@contextmanager
def papers_drawn_apart() -> Iterator[None]:
    """Draws the papers of the block in one process of their own (started on the first
    papers, stopped when the block ends, after what it drew).

    Drawing is pure Python (reportlab, ~0.25 s of CPU for 1,000 orders): on a thread it holds
    the GIL the buying loop waits for after every carrier request, and so adds its whole time
    to the run's; in a process it runs beside the loop, on another core. Outside this block
    papers are drawn in the calling thread.
    """
    global _drawing
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    _drawing = pool
    try:
        yield
    finally:
        _drawing = None
        pool.shutdown(wait=True)


@ship_task(name="render-shipping-documents")
def render_shipping_documents(orders: list[ToShip], run: str, ship_from: list[str]) -> list[str]:
    """The run's pick list and packing slips, as PDF files; returns their paths."""
    from integrations.documents.packing import PackingSlip, SlipLine, write_papers

    slips = [PackingSlip(order.number, order.channel, _address_lines(order.ship_to),
                         [SlipLine(sku, order.titles.get(sku, sku), units) for sku, units in sorted(order.lines.items())])
             for order in orders]
    folder = Path(cached_settings().toml.shipping.documents_dir) / _safe(run)
    folder.mkdir(parents=True, exist_ok=True)
    pick, packing = str(folder / "pick-list.pdf"), str(folder / "packing-slips.pdf")
    drawing = _drawing
    if drawing is None:
        write_papers(slips, run, ship_from, pick, packing)
    else:
        drawing.submit(write_papers, slips, run, ship_from, pick, packing).result()
    return [pick, packing]


def _address_lines(address: Address | None) -> list[str]:
    if address is None:
        return []
    city = " ".join(part for part in (address.city, address.province, address.postal_code) if part)
    return [part for part in (address.name, address.company, address.street1, address.street2, city, address.country) if part]
