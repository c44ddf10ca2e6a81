"""process-returns: returns decided by the written policy, labelled, received, and settled once.

channels' requests → decide (domain.returns) → approvals for a person → return labels
bought once → received goods settled: refund paid once (Stripe), replacement order for an
exchange, store credit → refunds followed to the end → channels told once → alert.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote

from domain.attention import summarise_groups
from domain.returns import (REFUND_GATEWAY, Decision, OrderFacts, Payer, Resolution, ReturnInputError, ReturnPolicy,
                            ReturnReason, ReturnRequest, Verdict, check_request, decide, policy_from_settings,
                            quote_refund)
from flows.alerting import tell_once, trouble_reported
from flows.approvals import ask_in_the_ui
from flows.ship_orders import warehouse_address
from integrations.settings import cached_settings
from models.returns_store import POLICY_REVIEW, REFUND_APPROVAL, ReturnView
from tasks.returns import (Owed, buy_return_labels, close_returns, create_replacements, follow_refunds, load_returns,
                           pay_refunds, record_return_decisions, record_settled_refunds, take_channel_returns,
                           tell_channels_of_refunds, write_down_refunds)

FLOW = "process-returns"


def _request(view: ReturnView) -> ReturnRequest:
    return ReturnRequest(ReturnReason(view.reason), view.lines, view.requested_at, Resolution(view.resolution))


def _decide(view: ReturnView, facts: OrderFacts, policy: ReturnPolicy) -> Decision | tuple[str, str]:
    """The policy's decision, or (code, detail) for a request the order cannot back."""
    try:
        check_request(_request(view), facts)
    except ReturnInputError as refused:
        return refused.code, refused.detail
    return decide(_request(view), facts, policy)


class _Tally:
    def __init__(self) -> None:
        self.considered = self.labels = self.issued = self.exchanged = 0
        self.verdicts: dict[str, int] = {v.value: 0 for v in Verdict}
        self.amount = Decimal(0)
        self.waiting: list[str] = []
        self.failed: list[str] = []
        self.by_hand: list[str] = []
        self.refused: list[str] = []  # refunds a channel would not record


def _decide_requested(policy: ReturnPolicy, batch_size: int, tally: _Tally) -> None:
    after = 0
    while batch := load_returns(["requested"], after, batch_size):
        after = batch[-1][0].id
        tally.considered += len(batch)
        decisions, refused = [], {}
        for view, facts in batch:
            made = _decide(view, facts, policy)
            if isinstance(made, Decision):
                decisions.append((view.id, made))
                tally.verdicts[made.verdict.value] += 1
            else:  # declined, the input error named as its rule
                refused.setdefault(made[0], []).append((view.id, "declined", made[1]))
                tally.verdicts["declined"] += 1
        for code, closing in refused.items():
            close_returns(closing, code)
        tally.waiting += record_return_decisions(quote(decisions), f"flow:{FLOW}")


def _settle_received(policy: ReturnPolicy, batch_size: int, tally: _Tally, can_pay: bool) -> None:
    """Received goods: refunds written down (when a gateway is set up; else they wait),
    exchanges replaced, store credit recorded."""
    after = 0
    while batch := load_returns(["received"], after, batch_size, unsettled=True):
        after = batch[-1][0].id
        refunds, settled, exchanges, closing = [], [], [], []
        for view, facts in batch:
            if view.resolution == Resolution.EXCHANGE:
                exchanges.append(view)
                continue
            fee = view.label_cost or Decimal(0) if view.label_paid_by == Payer.CUSTOMER else Decimal(0)
            quoted = quote_refund(_request(view), facts, policy, fee).total
            due = quoted - view.channel_refunded
            paid_here = view.resolution == Resolution.REFUND and due > 0 and view.payment_gateway == REFUND_GATEWAY
            if paid_here and not can_pay:
                continue  # settled whole once a gateway is set up, the channel's share with it
            if view.channel_refunded > 0:  # the channel moved this much itself: recorded, never paid again
                settled.append((view, view.channel, view.channel_refunded, view.external_id or view.rma))
            if view.resolution == Resolution.STORE_CREDIT:
                settled.append((view, "store_credit", max(Decimal(0), due), "store_credit"))
            elif due <= 0:
                if view.channel_refunded <= 0:
                    closing.append((view.id, "closed", f"nothing owed: fees take the whole {quoted} {view.currency}"))
            elif view.payment_gateway != REFUND_GATEWAY:
                closing.append((view.id, "closed", f"paid with {view.payment_gateway or 'an unknown gateway'}: "
                                                   f"refund {due} {view.currency} there by hand"))
                tally.by_hand.append(view.rma)
            else:
                refunds.append(Owed(view, quoted))
        if exchanges:
            tally.exchanged += len(create_replacements(quote(exchanges), f"flow:{FLOW}"))
        if settled:
            record_settled_refunds(quote(settled))
        if closing:
            close_returns(closing)
        if refunds:
            unpayable = write_down_refunds(quote(refunds), flow_run.get_id())
            close_returns([(next(o.view.id for o in refunds if o.view.rma == rma), "closed", why)
                           for rma, why in unpayable])


@flow(name=FLOW)
def process_returns(batch_size: int = 200) -> dict[str, Any]:
    """Takes return requests from the channels, decides them by policy, buys return labels,
    and settles received returns: each label and each refund exactly once.

    Args:
        batch_size: returns per batch.

    Returns:
        The run's summary (the contract's `--json` object, without `state`).
    """
    settings = cached_settings()
    config = settings.toml
    policy = policy_from_settings(config.returns, config.approvals.refund_above)
    tally = _Tally()
    logger = get_run_logger()
    with trouble_reported(FLOW):
        taken = take_channel_returns()
        _decide_requested(policy, batch_size, tally)
        forms = ask_in_the_ui(REFUND_APPROVAL, tally.waiting) | ask_in_the_ui(POLICY_REVIEW, tally.waiting)
        if settings.carrier:
            warehouse = warehouse_address(config.ship_from)
            after = 0
            while batch := load_returns(["approved"], after, batch_size):
                after = batch[-1][0].id
                tally.labels += len(buy_return_labels(quote([view for view, _ in batch]), warehouse, flow_run.get_id()))
        _settle_received(policy, batch_size, tally, can_pay=bool(settings.stripe_api_key))
        paid, refused = pay_refunds() if settings.stripe_api_key else ([], [])
        ended = follow_refunds() if settings.stripe_api_key else []
        tally.failed += [refund.rma or refund.key for refund, _ in refused]
        tally.failed += [refund.rma or refund.key for refund, state in ended if state == "failed"]
        told, untellable, tally.refused = tell_channels_of_refunds(flow_run.get_id())
        tally.issued = len(paid)
        tally.amount = sum((refund.amount for refund in paid), Decimal(0))
        alerts_sent = _tell_clerks(tally, forms)
    summary = {
        "flow": FLOW, "returns_considered": tally.considered, "approved": tally.verdicts["approved"],
        "declined": tally.verdicts["declined"], "awaiting_approval": tally.verdicts["awaiting_approval"],
        "labels_bought": tally.labels, "refunds_issued": tally.issued, "refunded_amount": f"{tally.amount:.2f}",
        "exchanges": tally.exchanged, "refunds_failed": len(tally.failed), "refunds_by_hand": len(tally.by_hand),
        "channel_returns_opened": taken.opened, "channel_returns_unmatched": taken.unmatched,
        "channel_returns_unreadable": taken.unreadable,
        "channels_told": told, "channels_not_writable": untellable,
        "channels_refused": len(tally.refused), "alerts_sent": alerts_sent,
    }
    create_table_artifact([{"measure": k, "value": v} for k, v in summary.items() if k != "flow"],
                          key="process-returns-summary", description="Returns decided, labelled and refunded, this run")
    logger.info("process-returns: %s", summary)
    return summary


def _tell_clerks(tally: _Tally, forms: dict[str, str]) -> int:
    """One message for what needs a person, unless the very same was already told."""
    return tell_once(FLOW, summarise_groups(FLOW, {
        "awaiting_approval": (tally.waiting, "returns waiting for a decision (`clerk approvals`)"),
        "refund_failed": (tally.failed, "refunds the gateway refused or failed"),
        "refund_by_hand": (tally.by_hand, "refunds to make by hand (paid through another gateway)"),
        "channel_refused": (tally.refused, "refunds paid that a channel would not record"),
    }), forms)
