"""ship-orders: labels for accepted orders, bought once each, with papers and the channel told.

a batch of orders → weigh and gate (domain) → verify addresses and quote → choose (domain) →
buy once (ledger) → pick list and packing slips → fulfillments written back → alert.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote

from domain.orders import Address
from domain.reasons import Hold
from domain.shipping import Candidate, RateOption, ShipHold, batch_problems, choose_rate, parcel_weight
from flows.alerting import run_link, tell_clerks, trouble_reported
from integrations.protocols import Alert
from integrations.settings import ShipFrom, cached_settings
from models.shipping_store import ToShip
from tasks.alerts import incident_already_sent, mark_told, send_alert
from tasks.shipping import (
    Choice,
    buy_labels,
    find_orders_held_for_weight,
    hold_orders,
    load_orders_to_ship,
    release_orders_held_for_weight,
    render_shipping_documents,
    verify_and_quote,
    write_fulfillments,
)

FLOW = "ship-orders"


def warehouse_address(ship_from: ShipFrom) -> Address:
    return Address(name=ship_from.name, street1=ship_from.street, city=ship_from.city, province=ship_from.state,
                   postal_code=ship_from.postal_code, country=ship_from.country, phone=ship_from.phone)


class _Tally:
    def __init__(self) -> None:
        self.considered = self.bought = self.stopped = self.unverified = 0
        self.reasons: Counter[str] = Counter()
        self.problems: list[str] = []
        self.documents: list[str] = []

    def hold(self, holds: list[tuple[int, str, str | None]]) -> None:
        self.reasons.update(reason for _, reason, _ in holds)


def _ship_batch(batch: list[ToShip], ship_from: Address, promise_days: int, tally: _Tally, run: str) -> None:
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
        tally.stopped += 1
        tally.problems += [problem.detail for problem in problems]
        holds += [(problem.key, problem.reason, problem.detail) for problem in problems]
        hold_orders(quote(holds))
        tally.hold(holds)
        return
    checks, quotes = verify_and_quote(quote(ready), {o.id: weighed[o.id].grams or 0 for o in ready}, ship_from) \
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
    if holds:
        hold_orders(quote(holds))
    tally.hold(holds)
    bought = set(buy_labels(quote(choices), flow_run.get_id())) if choices else set()
    tally.bought += len(bought)
    tally.unverified += len(bought & unverified)
    shipped = [o for o in ready if o.id in bought]
    if shipped:
        tally.documents += render_shipping_documents(quote(shipped), f"{run}-{shipped[0].id}", list(_lines(ship_from)))


def _lines(address: Address) -> tuple[str, ...]:
    return tuple(part for part in (address.name, address.street1,
                                   f"{address.city}, {address.province} {address.postal_code}", address.country) if part)


@flow(name=FLOW)
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
    tally = _Tally()
    run = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    logger = get_run_logger()
    with trouble_reported(FLOW):
        # Orders held only because a weight was missing go again once the catalog has it.
        weighable = [order_id for order_id, lines, weights in find_orders_held_for_weight()
                     if parcel_weight(lines, weights).grams is not None]
        if weighable:
            release_orders_held_for_weight(weighable)
        after = 0
        while batch := load_orders_to_ship(after, batch_size or config.batch_size):
            after = batch[-1].id
            tally.considered += len(batch)
            _ship_batch(batch, ship_from, config.promise_days, tally, run)
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
