"""process-returns end to end: returns decided by policy, return labels bought once, goods
received, refunds paid once at the gateway (counted at the Stripe sandbox) and told to the
channel once; exchanges replaced; bad requests refused with nothing paid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from deployments.cli import main as clerk
from deployments.purchasing import approve, list_approvals
from deployments.returns import create_return, receive_return
from domain.returns import ReturnInputError
from integrations.sandbox.easypost import EasyPostSandbox, create_easypost_app
from integrations.sandbox.faults import Faults
from integrations.sandbox.server import serve_in_thread
from integrations.sandbox.stripe import StripeSandbox, create_stripe_app
from integrations.stripe.mapping import to_minor
from models import Order, OrderLine, Refund, Return, SideEffect, StockMovement
from models.db import unit_of_work
from models.exports import EXPORTS
from tests.flows.conftest import CHANNELS, World, start_world
from tests.integration.test_order_writers import _woo_kind

ROOT = Path(__file__).resolve().parents[2]


class Desk:
    """Three channels after intake (their history fulfilled and paid), EasyPost and Stripe sandboxes."""

    def __init__(self, world: World, carrier: EasyPostSandbox, gateway: StripeSandbox, env: dict[str, str]):
        self.world, self.carrier, self.gateway, self.env = world, carrier, gateway, env
        self.url = world.database_url

    def refunds_told(self, channel: str) -> int:
        app = self.world.apps[channel]
        if channel == "shopify":
            return sum(w["kind"] == "refund" for w in app.write_backs.writes)
        if channel == "magento":
            return sum(w["kind"] == "creditmemo" for w in app.writes)
        return sum(_woo_kind(m, p) == "refund" for m, p, _ in app.writes)

    def returnable(self, gateway: str = "stripe", count: int = 1) -> list[tuple[str, str, str, Decimal]]:
        """(channel, order number, SKU, unit price) of fulfilled orders paid through `gateway`, one line each."""
        with unit_of_work(self.url) as session:
            rows = session.execute(
                select(Order.channel, Order.number, OrderLine.sku, OrderLine.unit_price)
                .join(OrderLine, OrderLine.order_id == Order.id)
                .where(Order.lifecycle == "fulfilled", Order.payment_gateway == gateway, OrderLine.sku.is_not(None),
                       OrderLine.unit_price > 0, OrderLine.requires_shipping.is_(True),
                       Order.id.not_in(select(Return.order_id)))
                .order_by(OrderLine.unit_price, Order.id)).all()
        picked, seen = [], set()
        for channel, number, sku, price in rows:
            if (channel, number) not in seen:
                seen.add((channel, number))
                picked.append((channel, number, sku, price))
        assert len(picked) >= count, f"only {len(picked)} {gateway} orders to return"
        return picked[:count]


def _open_a_desk(stack: ExitStack, database_url: str, tmp_path: Path, use_env: Any, refund_above: str = "1000000",
                 stripe_faults: Faults | None = None) -> Desk:
    world = start_world(stack, database_url, orders=40, channels=CHANNELS)
    config = tmp_path / "clerk.toml"
    config.write_text(f'[shipping]\nlabels_dir = "{tmp_path / "labels"}"\n'
                      f'[approvals]\nrefund_above = "{refund_above}"\n'
                      '[returns]\nwindow_days = 3650\nrestocking_fee_percent = "10"\n')
    carrier = create_easypost_app()
    gateway = create_stripe_app(world.store, faults=stripe_faults)
    env = world.env | {
        "CLERK_CONFIG": str(config), "CLERK_CARRIER": "easypost",
        "CLERK_EASYPOST_API_URL": stack.enter_context(serve_in_thread(carrier)).url,
        "CLERK_EASYPOST_API_KEY": carrier.api_key,
        "CLERK_STRIPE_API_URL": stack.enter_context(serve_in_thread(gateway)).url,
        "CLERK_STRIPE_API_KEY": gateway.api_key,
    }
    use_env(env)
    summary, ok = _run("order-intake")
    assert ok, summary
    taken = _process()  # the returns the channels' own customers asked for
    assert taken["channel_returns_opened"] >= 3 and taken["returns_considered"] == taken["channel_returns_opened"]
    return Desk(world, carrier, gateway, env)


@pytest.fixture
def desk(database_url: str, tmp_path: Path, use_env: Any) -> Iterator[Desk]:
    with ExitStack() as stack:
        yield _open_a_desk(stack, database_url, tmp_path, use_env)


def _run(name: str = "process-returns") -> tuple[dict[str, Any], bool]:
    from deployments.runs import run_flow

    return run_flow(name, {})


def _process() -> dict[str, Any]:
    summary, ok = _run()
    assert ok, summary
    return summary


def _status(url: str, rma: str) -> str:
    with unit_of_work(url) as session:
        return session.scalar(select(Return.status).where(Return.rma == rma))  # type: ignore[return-value]


def _open(desk: Desk, pick: tuple[str, str, str, Decimal], reason: str, resolution: str = "refund") -> str:
    channel, number, sku, _ = pick
    return create_return(desk.url, number, channel, {sku: 1}, reason, resolution, "test")["rma"]


def test_refunds_exchanges_and_approvals_each_happen_once(database_url: str, tmp_path: Path, use_env: Any) -> None:
    with ExitStack() as stack:
        desk = _open_a_desk(stack, database_url, tmp_path, use_env, refund_above="1000000")
        picks = desk.returnable(count=12)  # cheapest first
        cheap, swap, credit, costly, other = picks[0], picks[1], picks[2], picks[3], picks[-1]
        faulty = _open(desk, cheap, "defective")
        whim = _open(desk, other, "changed_mind")
        exchange = _open(desk, swap, "wrong_item", "exchange")
        store_credit = _open(desk, credit, "not_as_described", "store_credit")
        unsure = _open(desk, costly, "other")  # the policy sends reason `other` to a person

        first = _process()
        assert (first["returns_considered"], first["approved"], first["awaiting_approval"], first["declined"]) == (5, 4, 1, 0)
        assert first["labels_bought"] == 4 and first["refunds_issued"] == 0 and first["alerts_sent"] == 1
        assert unsure in [a["subject"] for a in list_approvals(desk.url)]
        assert {rma: _status(desk.url, rma) for rma in (faulty, whim, exchange, store_credit)} == dict.fromkeys(
            (faulty, whim, exchange, store_credit), "label_sent")
        assert all(desk.carrier.labels_bought(f"return-label:{rma}") == 1 for rma in (faulty, whim, exchange, store_credit))

        with pytest.raises(Exception, match="only an approved return"):
            receive_return(desk.url, unsure, "resellable", "dock")
        on_hand = _on_hand(desk.url, cheap[2])
        receive_return(desk.url, faulty, "resellable", "dock")
        assert _on_hand(desk.url, cheap[2]) == on_hand + 1
        assert receive_return(desk.url, whim, "damaged", "dock")["status"] == "awaiting_approval"  # broken by the buyer
        receive_return(desk.url, exchange, "resellable", "dock")
        receive_return(desk.url, store_credit, "resellable", "dock")

        second = _process()
        assert second["refunds_issued"] == 1 and second["exchanges"] == 1
        assert Decimal(second["refunded_amount"]) > 0
        assert desk.gateway.refunds_created() == 1
        with unit_of_work(desk.url) as session:
            replacement = session.scalar(select(Order).where(Order.channel == "clerk", Order.external_id == exchange))
            assert replacement is not None and replacement.status in ("accepted", "held")
            reserved = session.scalar(select(func.sum(StockMovement.reserved_delta))
                                      .where(StockMovement.order_id == replacement.id))
        assert replacement.status == "held" or reserved == 1

        waiting = {a["subject"]: a["id"] for a in list_approvals(desk.url)}
        assert {unsure, f"{whim} on receipt"} <= set(waiting)
        approve(desk.url, waiting[unsure], "ana", True, "fine")
        approve(desk.url, waiting[f"{whim} on receipt"], "ana", True, "goodwill")
        third = _process()
        assert third["refunds_issued"] == 1  # whim's refund, now a person has looked
        assert desk.carrier.labels_bought(f"return-label:{unsure}") == 1
        receive_return(desk.url, unsure, "resellable", "dock")
        for _ in range(6):  # refunds settle at the gateway after a few reads
            last = _process()
        assert last["refunds_issued"] == 0
        assert desk.gateway.refunds_created() == 3
        ours = (faulty, whim, unsure, exchange, store_credit)
        with unit_of_work(desk.url) as session:
            statuses = dict(session.execute(select(Return.rma, Return.status).where(Return.rma.in_(ours))).all())
            refunds = {rma: (refund.status, refund.amount, refund.gateway) for refund, rma in session.execute(
                select(Refund, Return.rma).join(Return, Return.id == Refund.return_id))}
        assert statuses == {faulty: "refunded", whim: "refunded", unsure: "refunded", exchange: "exchanged",
                            store_credit: "refunded"}
        assert {rma: state for rma, (state, _, _) in refunds.items()} == dict.fromkeys(refunds, "succeeded")
        assert refunds[store_credit][2] == "store_credit" and refunds[faulty][2] == "stripe"
        # Our fault: the full line, its tax share and shipping share; the buyer's choice: less 10% and the label.
        assert refunds[faulty][1] >= cheap[3]
        assert refunds[whim][1] < other[3]
        told = sum(desk.refunds_told(channel) for channel in CHANNELS)
        assert told == 3  # the three gateway refunds, each once on its channel; store credit moves no money there

        again = _process()
        assert (again["refunds_issued"], again["labels_bought"], again["channels_told"]) == (0, 0, 0)
        assert desk.gateway.refunds_created() == 3 and sum(desk.refunds_told(c) for c in CHANNELS) == 3
        with unit_of_work(desk.url) as session:
            exported_returns = {row["rma"]: row for row in EXPORTS["returns"](session)}
            exported_refunds = list(EXPORTS["refunds"](session))
        assert exported_returns[unsure]["rule"] == "resellable_on_receipt"
        assert exported_returns[exchange]["lines"] == [{"sku": swap[2], "quantity": 1}]
        assert {row["status"] for row in exported_refunds} == {"succeeded"}
        assert all(row["gateway_reference"] for row in exported_refunds)


def _on_hand(url: str, sku: str) -> int:
    with unit_of_work(url) as session:
        return int(session.scalar(select(func.sum(StockMovement.on_hand_delta)).where(StockMovement.sku == sku)) or 0)


def test_a_large_refund_waits_for_a_person_and_a_denial_declines_it(database_url: str, tmp_path: Path,
                                                                      use_env: Any) -> None:
    with ExitStack() as stack:
        desk = _open_a_desk(stack, database_url, tmp_path, use_env, refund_above="0.50")
        [pick] = desk.returnable()
        rma = _open(desk, pick, "defective")
        summary = _process()
        assert summary["awaiting_approval"] == 1 and summary["labels_bought"] == 0
        [waiting] = [a for a in list_approvals(desk.url) if a["subject"] == rma]
        assert (waiting["kind"], waiting["subject"]) == ("refund", rma)
        assert _process()["alerts_sent"] == 0  # the same wait is not told twice
        approve(desk.url, waiting["id"], "bo", False, "fraud pattern")
        assert _status(desk.url, rma) == "declined"
        assert _process()["labels_bought"] == 0 and desk.gateway.refunds_created() == 0


def test_bad_requests_are_refused_clearly_and_nothing_is_paid(desk: Desk, capsys: pytest.CaptureFixture[str]) -> None:
    [(channel, number, sku, _)] = desk.returnable()
    [(paypal_channel, paypal_number, paypal_sku, _)] = desk.returnable("paypal")
    cases = [
        (["NO-SUCH-ORDER", "--line", f"{sku}:1", "--reason", "damaged"], "no order NO-SUCH-ORDER"),
        ([number, "--channel", channel, "--line", f"{sku}:99", "--reason", "damaged"], "more_than_shipped"),
        ([number, "--channel", channel, "--line", "NOT-ON-IT:1", "--reason", "damaged"], "sku_not_on_order"),
        ([number, "--channel", channel, "--line", f"{sku}:1", "--reason", "too_expensive"], "unknown_reason"),
        ([number, "--channel", channel, "--line", f"{sku}:x", "--reason", "damaged"], "invalid_quantity"),
        ([paypal_number, "--channel", paypal_channel, "--line", f"{paypal_sku}:1", "--reason", "damaged"], "other_gateway"),
    ]
    for args, named in cases:
        assert clerk(["return", "create", *args]) == 2
        assert named in capsys.readouterr().err
    assert clerk(["return", "receive", "RMA-999999", "--condition", "resellable"]) == 2
    assert "no return RMA-999999" in capsys.readouterr().err
    with unit_of_work(desk.url) as session:  # none opened by a clerk
        assert session.scalar(select(func.count(Return.id)).where(Return.external_id.is_(None))) == 0
    # An exchange on the PayPal order is fine: no money moves through a gateway.
    assert clerk(["return", "create", paypal_number, "--channel", paypal_channel, "--line", f"{paypal_sku}:1",
                  "--reason", "wrong_item", "--resolution", "exchange"]) == 0
    assert capsys.readouterr().out.strip().startswith("RMA-")
    summary = _process()
    assert summary["refunds_issued"] == 0 and desk.gateway.refunds_created() == 0
    with pytest.raises(ReturnInputError, match="more_than_shipped"):  # the open return counts against the order
        create_return(desk.url, paypal_number, paypal_channel, {paypal_sku: 99}, "damaged", "exchange", "test")


def test_lost_gateway_answers_and_a_sigkill_part_way_still_pay_each_refund_once(
    database_url: str, tmp_path: Path, use_env: Any
) -> None:
    from prefect.settings import PREFECT_API_URL

    with ExitStack() as stack:
        desk = _open_a_desk(stack, database_url, tmp_path, use_env, stripe_faults=Faults(drop_rate=0.1, error_rate=0.1, seed=3))
        picks = desk.returnable(count=20)
        rmas = [_open(desk, pick, "damaged") for pick in picks]
        assert _process()["approved"] == len(rmas)
        for rma in rmas:
            receive_return(desk.url, rma, "damaged", "dock")
        desk.gateway.lose_refund_responses(0.2)
        desk.gateway.delay_refunds(1000, 0.2)  # slow enough to kill the run part-way
        child = subprocess.Popen(
            [sys.executable, "-m", "deployments.cli", "run", "process-returns", "--json"], cwd=tmp_path,
            env=os.environ | desk.env | {"PYTHONPATH": str(ROOT), "PREFECT_API_URL": PREFECT_API_URL.value() or ""},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 180
        while desk.gateway.refunds_created() < 3:
            assert child.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no refund was paid"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait()
        desk.gateway.delay_refunds(0, 0)
        for _ in range(10):  # the schedule runs it again, until every refund has settled and been told
            summary, ok = _run()
            with unit_of_work(desk.url) as session:
                open_refunds = session.scalar(select(func.count(Refund.id)).where(
                    (Refund.status != "succeeded") | Refund.channel_ref.is_(None)))
            if ok and open_refunds == 0 and summary["refunds_issued"] == 0:
                break
        with unit_of_work(desk.url) as session:
            refunds = session.execute(select(Refund.payment_reference, Refund.amount, Refund.status,
                                             Refund.currency)).all()
            pending = session.scalars(select(SideEffect.key).where(SideEffect.state != "done")).all()
        assert len(refunds) == len(rmas) and {status for _, _, status, _ in refunds} == {"succeeded"}
        assert all(desk.gateway.refunds_created(reference) == 1 for reference, _, _, _ in refunds)
        assert desk.gateway.refunds_created() == len(rmas)
        for reference, amount, _, currency in refunds:  # never more than the payment captured
            assert to_minor(amount, currency) <= desk.gateway.payment_intents[reference].amount
        assert pending == []
        assert sum(desk.refunds_told(channel) for channel in CHANNELS) == len(rmas)
        assert desk.gateway.stats["lost"] >= 1, "some answers were lost"


def test_money_a_channel_refunded_itself_is_recorded_never_paid_again(desk: Desk) -> None:
    with unit_of_work(desk.url) as session:
        asked = session.execute(select(Return.rma, Return.channel, Return.channel_refunded, Order.payment_reference)
                                .join(Order, Order.id == Return.order_id)
                                .where(Return.external_id.is_not(None), Return.status == "label_sent")).all()
    refunded_upstream = [row for row in asked if row.channel_refunded > 0]
    assert refunded_upstream, "the channels hold returns they refunded themselves"
    for row in asked:
        receive_return(desk.url, row.rma, "resellable", "dock")
    for _ in range(4):
        _process()
    with unit_of_work(desk.url) as session:
        by_rma: dict[str, list[tuple[str, Decimal]]] = {}
        for refund, rma in session.execute(select(Refund, Return.rma).join(Return, Return.id == Refund.return_id)):
            by_rma.setdefault(rma, []).append((refund.gateway, refund.amount))
    for rma, channel, upstream, reference in refunded_upstream:
        assert (channel, upstream) in by_rma[rma]
        paid_here = sum((amount for gateway, amount in by_rma[rma] if gateway == "stripe"), Decimal(0))
        assert desk.gateway.refunds_created(reference) == (1 if paid_here else 0)
    # Every refund through Stripe, once; the channel's own record of it stands in for telling it again.
    assert desk.gateway.refunds_created() == sum(1 for rows in by_rma.values() for gateway, _ in rows if gateway == "stripe")


def test_a_refund_the_gateway_fails_is_told_to_the_clerks_once_and_never_paid_again(desk: Desk) -> None:
    [pick] = desk.returnable()
    rma = _open(desk, pick, "defective")
    _process()
    receive_return(desk.url, rma, "resellable", "dock")
    with unit_of_work(desk.url) as session:
        reference = session.scalar(select(Order.payment_reference).join(Return, Return.order_id == Order.id)
                                   .where(Return.rma == rma))
    desk.gateway.fail_refunds(reference)  # the buyer's card is gone: Stripe takes the refund, then fails it
    slack_before = len(desk.world.slack.messages)
    runs = [_process() for _ in range(4)]
    assert sum(run["refunds_issued"] for run in runs) == 1 and sum(run["refunds_failed"] for run in runs) == 1
    assert sum(run["alerts_sent"] for run in runs) == 1
    told = json.dumps([m.to_json() for m in desk.world.slack.messages[slack_before:]])
    assert rma in told and "@" not in told
    with unit_of_work(desk.url) as session:
        refund = session.scalar(select(Refund).join(Return, Return.id == Refund.return_id).where(Return.rma == rma))
    assert refund is not None and (refund.status, refund.channel_ref) == ("failed", None)
    assert "expired_or_canceled_card" in (refund.failure_reason or "")
    assert desk.gateway.refunds_created(reference) == 1 and _status(desk.url, rma) == "received"


def test_without_a_gateway_received_returns_wait_for_their_refund(desk: Desk, use_env: Any) -> None:
    [pick] = desk.returnable()
    rma = _open(desk, pick, "defective")
    _process()
    receive_return(desk.url, rma, "resellable", "dock")
    use_env(desk.env | {"CLERK_STRIPE_API_KEY": ""})
    assert _process()["refunds_issued"] == 0
    assert _status(desk.url, rma) == "received" and desk.gateway.refunds_created() == 0
    use_env(desk.env)  # set up at last: the refund goes
    assert _process()["refunds_issued"] == 1 and desk.gateway.refunds_created() == 1


def test_a_refund_waits_on_a_form_in_the_prefect_ui_and_a_timeout_leaves_it_pending(
    database_url: str, tmp_path: Path, use_env: Any
) -> None:
    import threading

    from prefect import get_client
    from prefect.flow_runs import resume_flow_run

    from flows.approvals import await_approval
    from models import Approval, AuditEntry

    with ExitStack() as stack:
        desk = _open_a_desk(stack, database_url, tmp_path, use_env, refund_above="0.50")
        first, second = desk.returnable(count=2)
        timed_out, decided = _open(desk, first, "defective"), _open(desk, second, "defective")
        _process()
        ids = {a["subject"]: a["id"] for a in list_approvals(desk.url)}

        result = await_approval(ids[timed_out], timeout_hours=2 / 3600, poll_seconds=1)
        assert (result["decision"], result["timed_out"]) == ("waiting", True)
        assert _status(desk.url, timed_out) == "awaiting_approval"  # pending, never approved

        outcome: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: outcome.update(await_approval(ids[decided], poll_seconds=1)), daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while True:
            with unit_of_work(desk.url) as session:
                run_id = session.scalar(select(Approval.pause_run_id).where(Approval.id == ids[decided]))
            if run_id:
                with get_client(sync_client=True) as client:
                    state = client.read_flow_run(run_id).state
                if state is not None and state.is_paused():
                    break
            assert time.monotonic() < deadline, "the run never paused"
            time.sleep(0.2)
        resume_flow_run(run_id, run_input={"approve": True, "by": "mia", "note": "loyal customer"})
        thread.join(timeout=60)
        assert (outcome["decision"], outcome["by"]) == ("approved", "mia")
        assert _status(desk.url, decided) == "approved"
        with unit_of_work(desk.url) as session:
            audit = session.scalars(select(AuditEntry.actor).where(AuditEntry.subject == decided,
                                                                  AuditEntry.action == "refund.approved")).all()
        assert audit == ["mia"]
        assert _process()["labels_bought"] == 1 and desk.carrier.labels_bought(f"return-label:{decided}") == 1
