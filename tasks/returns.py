"""process-returns tasks: one external call per batch, or one database unit of work, each.

Return labels and refunds are each bought or paid once: the ledger row (`return-label:{rma}`,
`refund:{rma}`) is written before the call, the vendor gets the same key (a carrier
reference, Stripe's Idempotency-Key), and an attempt that finds the row already started
looks for the vendor's record before it calls again.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from decimal import Decimal

from prefect import task
from prefect.cache_policies import NO_CACHE

from domain.orders import Address
from domain.returns import OrderFacts, refundable
from integrations.protocols import (Label, OrderWriter, Parcel, RefundRefused, ReturnSource, Unreadable,
                                    UpstreamError)
from integrations.settings import cached_settings
from integrations.wiring import carrier, enabled_channels, order_source, payment_gateway
from models import returns_store as store
from models.db import unit_of_work
from models.ledger import begin_effect, begin_effects, finish_effect, finish_effects
from models.returns_store import RefundView, ReturnView
from tasks.shipping import LabelFiles

log = logging.getLogger("clerk.returns")
# Batches carry addresses: never hash them for a cache key.
returns_task = task(cache_policy=NO_CACHE)


def _db() -> str:
    return cached_settings().database_url


def refund_key(rma: str) -> str:
    return f"refund:{rma}"


def return_label_key(rma: str) -> str:
    return f"return-label:{rma}"


@dataclass(frozen=True, slots=True)
class Taken:
    opened: int = 0  # new returns from channels
    unmatched: int = 0  # asked for an order Clerk does not know
    unreadable: int = 0  # could not be read (logged by id and reason, never their content)


@returns_task(name="take-channel-returns", retries=2, retry_delay_seconds=10)
def take_channel_returns() -> Taken:
    """Opens a return for every request a channel holds that Clerk has not seen (once each)."""
    opened = unmatched = 0
    unreadable: list[Unreadable] = []
    for channel in enabled_channels(cached_settings()):
        source = order_source(channel)
        if not isinstance(source, ReturnSource):
            continue
        with unit_of_work(_db()) as session:
            since = store.latest_request(session, channel)
        requests = source.return_requests(since, unreadable)
        with unit_of_work(_db()) as session:
            ids = store.order_ids(session, channel, [r.order_external_id for r in requests])
            for request in requests:
                if request.order_external_id not in ids:
                    unmatched += 1
                    log.warning("%s return %s is for order %s, which Clerk does not know", channel,
                                request.external_id, request.order_number)
                    continue
                _, new = store.open_return(session, ids[request.order_external_id], request.lines, request.reason,
                                           "refund", request.requested_at, f"channel:{channel}", request.external_id,
                                           request.refunded, request.recorded)
                opened += new
    return Taken(opened, unmatched, len(unreadable))


@returns_task(name="load-returns")
def load_returns(statuses: list[str], after_id: int, limit: int,
                 unsettled: bool = False) -> list[tuple[ReturnView, OrderFacts]]:
    """A batch of returns in these statuses, each with the policy's facts about its order
    (`unsettled`: see `returns_store.returns_in`)."""
    with unit_of_work(_db()) as session:
        return [(view, store.order_facts(session, view.order_id, leaving_out=view.id))
                for view in store.returns_in(session, statuses, after_id, limit, unsettled)]


@returns_task(name="record-return-decisions")
def record_return_decisions(decisions: list, actor: str) -> list[str]:
    with unit_of_work(_db()) as session:
        return store.record_decisions(session, decisions, actor)


@returns_task(name="close-returns")
def close_returns(closing: list[tuple[int, str, str | None]], rule: str | None = None) -> None:
    with unit_of_work(_db()) as session:
        for return_id, status, detail in closing:
            store.close_return(session, return_id, status, detail, rule)


@returns_task(name="create-replacements")
def create_replacements(exchanges: list[ReturnView], actor: str) -> list[str]:
    """The replacement order of each exchange, once; returns their numbers."""
    with unit_of_work(_db()) as session:
        return [store.create_replacement(session, view, actor) for view in exchanges]


# Safe to retry whole: a label already bought is skipped by its ledger row, and one whose
# answer was lost is found by its reference before any second buy.
@returns_task(name="buy-return-labels", retries=2, retry_delay_seconds=10)
def buy_return_labels(returns: list[ReturnView], warehouse: Address, flow_run_id: str | None) -> list[str]:
    """Buys each return's label once, from the customer to the warehouse; returns the RMAs
    that have their label now. A return whose goods have no weight in the catalog is left
    without one (its RMA is not returned): the clerk can still receive it."""
    with unit_of_work(_db()) as session:
        weights = store.weights(session, sorted({sku for view in returns for sku in view.lines}))
        started = begin_effects(session, [
            (return_label_key(view.rma), "return_label", view.rma,
             hashlib.sha256(repr((view.rma, sorted(view.lines.items()))).encode()).hexdigest()) for view in returns],
            flow_run_id)
    bought: list[dict] = []
    files = LabelFiles(cached_settings().toml.shipping.labels_dir)
    try:
        for view in returns:
            key = return_label_key(view.rma)
            state, attempts = started[key]
            grams = sum((weights.get(sku) or 0) * units for sku, units in view.lines.items())
            if state == "done" or view.ship_to is None or any(not weights.get(sku) for sku in view.lines):
                continue
            label = carrier().find_label(key) if attempts > 1 else None
            if label is None:
                shipment_id, rates = carrier().rates(view.ship_to, warehouse, Parcel(grams), key)
                if not rates:
                    continue
                cheapest = min(rates, key=lambda rate: rate.amount)
                label = carrier().buy_label(shipment_id, cheapest.id, key)
            bought.append(_bought(view, label, files.fetch(label)))
    finally:
        if bought:
            with unit_of_work(_db()) as session:
                store.record_return_labels(session, bought)
                finish_effects(session, [(return_label_key(b["rma"]), b["tracking_number"],
                                          {"carrier": b["carrier"], "cost": str(b["label_cost"])}) for b in bought])
    return [b["rma"] for b in bought] + [view.rma for view in returns if started[return_label_key(view.rma)][0] == "done"]


def _bought(view: ReturnView, label: Label, path: str | None) -> dict:
    return {"id": view.id, "rma": view.rma, "carrier": label.carrier, "tracking_number": label.tracking_number,
            "label_cost": label.cost, "label_path": path}


@dataclass(frozen=True, slots=True)
class Owed:
    """A refund to pay: the return, and what the policy says it is worth before any cap."""

    view: ReturnView
    quoted: Decimal


@returns_task(name="write-down-refunds", retries=2, retry_delay_seconds=10)
def write_down_refunds(owed: list[Owed], flow_run_id: str | None) -> list[tuple[str, str]]:
    """Writes each refund's ledger row and refund row, capped by what the payment still
    holds (asked of the gateway), before any money moves. Returns (RMA, why) for the ones
    that cannot be paid: nothing left on the payment."""
    gateway = payment_gateway()
    unpayable, amounts = [], {}
    for item in owed:
        payment = gateway.payment(item.view.payment_reference or "")
        amount = refundable(item.quoted - item.view.channel_refunded, payment.captured, payment.refunded)
        if amount <= 0:
            unpayable.append((item.view.rma, f"nothing left to refund on {payment.reference}"))
        else:
            amounts[item.view.rma] = amount
    with unit_of_work(_db()) as session:
        for item in owed:
            amount = amounts.get(item.view.rma)
            if amount is None:
                continue
            key = refund_key(item.view.rma)
            request = hashlib.sha256(repr((item.view.payment_reference, str(amount), item.view.currency)).encode()).hexdigest()
            begin_effect(session, key, "refund", item.view.rma, request, flow_run_id)
            store.add_refund(session, item.view, key, gateway.name, amount)
    return unpayable


@returns_task(name="pay-refunds", retries=2, retry_delay_seconds=10)
def pay_refunds() -> tuple[list[RefundView], list[tuple[RefundView, str]]]:
    """Pays every refund written down but not yet answered, with its own key (so a refund
    paid before a crash or a lost answer is found, not paid again). Returns (paid, refused)."""
    gateway = payment_gateway()
    with unit_of_work(_db()) as session:
        unpaid = store.unpaid_refunds(session, gateway.name)
    paid, refused = [], []
    for refund in unpaid:
        try:
            # The client looks for a refund made under this key before it posts.
            done = gateway.refund(refund.payment_reference or "", refund.amount, refund.currency, refund.key,
                                  "requested_by_customer")
        except RefundRefused as exc:
            with unit_of_work(_db()) as session:
                store.record_refund(session, refund.key, "failed", None, f"{exc.code}: {exc.detail}")
            refused.append((refund, exc.code))
            continue
        with unit_of_work(_db()) as session:
            finish_effect(session, refund.key, done.reference, {"amount": str(done.amount), "state": done.state.value})
            store.record_refund(session, refund.key, done.state.value, done.reference, done.failure_reason)
        paid.append(refund)
    return paid, refused


@returns_task(name="follow-refunds", retries=2, retry_delay_seconds=10)
def follow_refunds() -> list[tuple[RefundView, str]]:
    """Asks the gateway how pending refunds went; returns (refund, state) for those that ended."""
    gateway = payment_gateway()
    with unit_of_work(_db()) as session:
        pending = store.refunds_to_follow(session, gateway.name)
    ended = []
    for refund in pending:
        now = gateway.refund_status(refund.gateway_reference or "")
        if now.state.value == "pending":
            continue
        with unit_of_work(_db()) as session:
            store.record_refund(session, refund.key, now.state.value, now.reference, now.failure_reason)
        ended.append((refund, now.state.value))
    return ended


@returns_task(name="tell-channels-of-refunds", retries=2, retry_delay_seconds=10)
def tell_channels_of_refunds(flow_run_id: str | None) -> tuple[int, int, list[str]]:
    """Records each succeeded refund on its order's channel once; returns (told, left for a
    channel Clerk cannot write to, the RMAs a channel refused: a person looks, the next run
    asks again)."""
    with unit_of_work(_db()) as session:
        untold = store.untold_refunds(session)
    writable = set(enabled_channels(cached_settings()))
    told = skipped = 0
    refused = []
    for refund in untold:
        writer = order_source(refund.channel) if refund.channel in writable else None
        if not isinstance(writer, OrderWriter):
            skipped += 1
            continue
        key = f"refund-note:{refund.rma or refund.key}"
        with unit_of_work(_db()) as session:
            begin_effect(session, key, "channel_refund", refund.order_external_id, refund.key, flow_run_id)
        try:
            reference = writer.refund(refund.order_external_id, refund.lines, refund.amount,
                                      f"{refund.rma}: {refund.reason}" if refund.rma else "refund", key)
        except (UpstreamError, ValueError) as exc:  # refused for good; transient trouble was retried inside
            log.warning("%s refused the refund of %s: %s", refund.channel, refund.rma or refund.key, exc)
            refused.append(refund.rma or refund.key)
            continue
        with unit_of_work(_db()) as session:
            finish_effect(session, key, reference, {"channel": refund.channel})
            store.record_channel_told(session, refund.key, reference)
        told += 1
    return told, skipped, refused


@returns_task(name="record-settled-refunds")
def record_settled_refunds(settled: list[tuple[ReturnView, str, Decimal, str]]) -> None:
    """Refunds no gateway of Clerk's pays: store credit, and money a channel moved itself.
    Each `(return, gateway, amount, reference)` is recorded once, as succeeded and told."""
    with unit_of_work(_db()) as session:
        for view, gateway, amount, reference in settled:
            key = f"{refund_key(view.rma)}:{gateway}"
            store.add_refund(session, view, key, gateway, amount, "succeeded", reference)
            store.record_refund(session, key, "succeeded", reference)
            store.record_channel_told(session, key, reference)
