"""ship-orders: labels for accepted orders, bought once each, with papers and the channel told.

a batch of orders → weigh and gate (domain) → verify addresses and quote → choose (domain) →
buy once (ledger), all in one task a batch → pick list and packing slips, every
`PAPERS_EVERY` orders shipped → fulfillments written back → alert.
"""

from __future__ import annotations

import gc
import hashlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from domain.orders import Address
from domain.shipping import parcel_weight
from flows.alerting import run_link, tell_clerks, trouble_reported
from integrations.protocols import Alert
from integrations.settings import ShipFrom, cached_settings
from models.shipping_store import ToShip
from tasks.alerts import incident_already_sent, mark_told, send_alert
from tasks.shipping import (
    BatchOutcome,
    find_orders_held_for_weight,
    papers_drawn_apart,
    release_orders_held_for_weight,
    render_shipping_documents,
    ship_batch,
    write_fulfillments,
)

FLOW = "ship-orders"


def warehouse_address(ship_from: ShipFrom) -> Address:
    return Address(name=ship_from.name, street1=ship_from.street, city=ship_from.city, province=ship_from.state,
                   postal_code=ship_from.postal_code, country=ship_from.country, phone=ship_from.phone)


# Papers (one pick list, a packing slip an order) are printed for this many shipped orders at
# a time, not per batch: a pick list is a picking wave, and a PDF's own cost is paid once a
# wave. They are drawn in the background (one worker thread, waiting on the one process that
# draws them: `papers_drawn_apart`) while the next batches are bought, and waited for before
# the run ends. A run killed part-way leaves at most this many bought orders (plus those still
# drawing) without their papers.
PAPERS_EVERY = 1000


class _Tally:
    def __init__(self, run: str, ship_from: Address) -> None:
        self.considered = self.bought = self.stopped = self.unverified = 0
        self.reasons: Counter[str] = Counter()
        self.problems: list[str] = []
        self.documents: list[str] = []
        self._run, self._ship_from = run, list(_lines(ship_from))
        self._unprinted: list[ToShip] = []
        self._printing: list[PrefectFuture[list[str]]] = []

    def add(self, outcome: BatchOutcome) -> None:
        self.considered += outcome.considered
        self.reasons.update(reason for _, reason, _ in outcome.holds)
        self.stopped += outcome.stopped
        self.problems += outcome.problems
        self.bought += outcome.bought
        self.unverified += outcome.unverified
        self._unprinted += outcome.shipped
        if len(self._unprinted) >= PAPERS_EVERY:
            self.print_papers()

    def print_papers(self) -> None:
        """Starts drawing the papers of the orders shipped since the last print."""
        if self._unprinted:
            shipped, self._unprinted = self._unprinted, []
            self._printing.append(render_shipping_documents.submit(quote(shipped), f"{self._run}-{shipped[0].id}",
                                                                    self._ship_from))

    def papers_printed(self) -> None:
        """Prints what is left and waits for every print (a failed one raises)."""
        self.print_papers()
        printing, self._printing = self._printing, []
        for future in printing:
            self.documents += future.result()


@contextmanager
def _old_objects_frozen() -> Iterator[None]:
    """Leaves the objects alive before the buying (modules, settings: a worker's heap of a few
    hundred MB) out of the garbage collector's passes until it ends. Every carrier request
    makes garbage, and each full pass would walk that whole heap again (~0.3 s each)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _lines(address: Address) -> tuple[str, ...]:
    return tuple(part for part in (address.name, address.street1,
                                   f"{address.city}, {address.province} {address.postal_code}", address.country) if part)


@flow(name=FLOW, task_runner=ThreadPoolTaskRunner(max_workers=1))  # papers only are submitted
def ship_orders(batch_size: int | None = None) -> dict[str, Any]:
    """Buys a label for every accepted, unshipped order, once, and tells its channel.

    Args:
        batch_size: orders per batch (default `[shipping] batch_size`, 100).

    Returns:
        The run's summary (the contract's `--json` object, without `state`).
    """
    settings = cached_settings()
    config = settings.toml.shipping
    ship_from = warehouse_address(settings.toml.ship_from)
    run = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    tally = _Tally(run, ship_from)
    logger = get_run_logger()
    with trouble_reported(FLOW):
        # Orders held only because a weight was missing go again once the catalog has it.
        weighable = [order_id for order_id, lines, weights in find_orders_held_for_weight()
                     if parcel_weight(lines, weights).grams is not None]
        if weighable:
            release_orders_held_for_weight(weighable)
        after, run_id = 0, flow_run.get_id()
        with papers_drawn_apart(), _old_objects_frozen():
            try:
                while outcome := ship_batch(after, batch_size or config.batch_size, ship_from, config.promise_days,
                                            run_id):
                    after = outcome.last_id
                    tally.add(outcome)
            finally:  # the labels bought have their papers, also when a batch failed
                tally.papers_printed()
        written, unwritable = write_fulfillments(flow_run.get_id())
        if tally.unverified:
            logger.warning("ship-orders: %d labels bought to addresses the carrier could not verify "
                           "(it offers no address validation)", tally.unverified)
        alerts_sent = tell_clerks(FLOW, flow_run.get_id(), run_link()) + _report_stopped(tally.problems)
    summary = {
        "flow": FLOW, "orders_considered": tally.considered, "labels_bought": tally.bought,
        "held": sum(tally.reasons.values()), "reasons": dict(sorted(tally.reasons.items())),
        "fulfillments_written": written, "fulfillments_not_writable": unwritable,
        "released": len(weighable), "batches_stopped": tally.stopped, "addresses_unverified": tally.unverified,
        "documents": tally.documents, "alerts_sent": alerts_sent,
    }
    create_table_artifact([{"measure": k, "value": v} for k, v in summary.items() if k not in ("flow", "documents")],
                          key="ship-orders-summary", description="Labels, holds and fulfillments, this run")
    logger.info("ship-orders: %s", {k: v for k, v in summary.items() if k != "documents"})
    return summary


def _report_stopped(problems: list[str]) -> int:
    """One more message when a batch stopped before buying: the data upstream needs a look."""
    if not problems:
        return 0
    incident = f"{FLOW}:stopped:" + hashlib.sha256("\n".join(sorted(problems)).encode()).hexdigest()[:24]
    if incident_already_sent(incident):
        return 0
    alert = Alert(incident, f"{FLOW}: a batch stopped before any label was bought", tuple(problems[:10]),
                  {"problems": len(problems)}, run_link(), severity="error")
    reference = send_alert(alert)
    mark_told([], incident, FLOW, flow_run.get_id(), reference, {"problems": len(problems)})
    return 1
