"""restock-check end to end: purchase orders made once, mailed once, approved by a person, received."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from deployments.cli import main
from deployments.runs import run_flow
from integrations.sandbox.server import serve_in_thread
from integrations.sandbox.slack import create_slack_app
from integrations.sandbox.smtp import SmtpSandbox
from models import AuditEntry, Order, OrderLine, PurchaseOrder, StockMovement
from models.catalog_store import MASTER, upsert_variants
from models.db import unit_of_work
from models.exports import EXPORTS
from models.stock_store import set_on_hand
from tests.flows.state import rows_in

ROOT = Path(__file__).resolve().parents[2]
NIGHT = date(2026, 11, 26)
CONFIG = """
[approvals]
purchase_order_above = "5000.00"

[suppliers.ACME]
email = "orders@acme.example"
lead_time_days = 7

[suppliers.BULKCO]
email = "sales@bulkco.example"
lead_time_days = 14
currency = "EUR"
"""
# sku: (supplier, cost, pack, units sold a day for 60 days, on hand)
CATALOG = {
    "MUG-1": ("ACME", "2.00", 6, 5, 10),  # ROP 35, up to 70: orders 60 (10 packs)
    "TEE-1": ("ACME", "4.00", 1, 1, 500),  # plenty
    "BIG-1": ("BULKCO", "100.00", 1, 10, 0),  # ROP 140, up to 210: 21,000 EUR waits for approval
    "LOOSE-1": (None, "1.00", 1, 2, 1),  # short, but nobody to buy from
}


def _seed(url: str) -> None:
    rows = [{"sku": sku, "title": sku.title(), "price": Decimal("9.99"), "currency": "USD", "supplier": supplier,
             "cost": Decimal(cost), "pack_size": pack} for sku, (supplier, cost, pack, _, _) in CATALOG.items()]
    with unit_of_work(url) as session:
        upsert_variants(session, rows, MASTER)
        set_on_hand(session, [(sku, "main", on_hand) for sku, (*_, on_hand) in CATALOG.items()], "adjustment", "seed")
        for day in range(1, 61):
            placed = datetime.combine(NIGHT - timedelta(days=day), datetime.min.time(), UTC) + timedelta(hours=15)
            for sku, (_, _, _, daily, _) in CATALOG.items():
                order = Order(channel="shopify", external_id=f"{sku}-{day}", number=f"#{sku}-{day}", status="fulfilled",
                              lifecycle="fulfilled", currency="USD", total=Decimal(0), shipping=Decimal(0), tax=Decimal(0),
                              discounts=Decimal(0), taxes_included=False, requires_shipping=True, risk="low",
                              placed_at=placed, upstream_updated_at=placed, fingerprint="-")
                session.add(order)
                session.flush()
                session.add(OrderLine(order_id=order.id, position=0, sku=sku, title=sku, quantity=daily,
                                      unit_price=Decimal("9.99"), discount=Decimal(0)))


class Office:
    """Clerk's settings for a restock night: a database, clerk.toml, mail and Slack sandboxes."""

    def __init__(self, url: str, tmp: Path, stack: ExitStack):
        self.url = url
        self.mail = stack.enter_context(SmtpSandbox())
        self.slack = create_slack_app(token="xoxb-test")
        slack = stack.enter_context(serve_in_thread(self.slack))
        config = tmp / "clerk.toml"
        config.write_text(CONFIG)
        self.env = {"CLERK_DATABASE_URL": url, "CLERK_CONFIG": str(config), "CLERK_SMTP_URL": self.mail.url,
                    "CLERK_SMTP_FROM": "buyer@clerk.example", "CLERK_SLACK_API_URL": f"{slack.url}/api/",
                    "CLERK_SLACK_BOT_TOKEN": "xoxb-test", "CLERK_SLACK_CHANNEL": "#clerk-alerts"}


@pytest.fixture
def office(database_url: str, tmp_path: Path, use_env) -> Iterator[Office]:  # type: ignore[no-untyped-def]
    _seed(database_url)
    with ExitStack() as stack:
        built = Office(database_url, tmp_path, stack)
        use_env(built.env)
        yield built


def _check() -> dict[str, Any]:
    summary, ok = run_flow("restock-check", {"review_day": NIGHT.isoformat(), "history_days": 90})
    assert ok, summary
    return summary


def _export(url: str, entity: str) -> list[dict[str, Any]]:
    with unit_of_work(url) as session:
        return list(EXPORTS[entity](session))


def test_a_night_orders_what_falls_short_once_and_a_rerun_adds_nothing(office: Office) -> None:
    first = _check()
    assert {k: first[k] for k in ("skus_checked", "below_reorder_point", "purchase_orders_created", "awaiting_approval",
                                  "purchase_orders_sent", "stockouts", "at_risk", "no_supplier", "alerts_sent")} == {
        "skus_checked": 4, "below_reorder_point": 3, "purchase_orders_created": 2, "awaiting_approval": 1,
        "purchase_orders_sent": 1, "stockouts": 1, "at_risk": 2, "no_supplier": 1, "alerts_sent": 1}
    acme, bulk = sorted(_export(office.url, "purchase-orders"), key=lambda po: po["number"])
    assert (acme["number"], acme["status"], acme["total"], acme["currency"]) == ("PO-20261126-ACME", "sent", "120.00", "USD")
    assert acme["lines"] == [{"sku": "MUG-1", "quantity": 60, "unit_cost": "2.00", "received": 0}]
    assert (bulk["number"], bulk["status"], bulk["total"], bulk["currency"]) == (
        "PO-20261126-BULKCO", "awaiting_approval", "21000.00", "EUR")
    [mail] = office.mail.messages
    assert mail.rcpt_to == ("orders@acme.example",)
    [pdf] = [part for part in mail.message.iter_attachments() if part.get_filename() == "PO-20261126-ACME.pdf"]
    assert pdf.get_content().startswith(b"%PDF")
    [alert] = office.slack.messages
    posted = json.dumps(alert.to_json())
    assert "PO-20261126-BULKCO" in posted and "LOOSE-1" in posted and "MUG-1" in posted
    inventory = {row["sku"]: row for row in _export(office.url, "inventory")}
    assert (inventory["MUG-1"]["reorder_point"], inventory["MUG-1"]["incoming"], inventory["MUG-1"]["days_of_cover"]) == (35, 60, 2.0)
    assert inventory["TEE-1"]["incoming"] == 0 and inventory["BIG-1"]["incoming"] == 210

    again = _check()
    assert (again["purchase_orders_created"], again["purchase_orders_sent"], again["alerts_sent"]) == (0, 0, 0)
    assert again["below_reorder_point"] == 1  # LOOSE-1 only: open orders count as incoming
    assert len(office.mail.messages) == 1 and len(office.slack.messages) == 1
    assert len(_export(office.url, "purchase-orders")) == 2


def test_a_clerk_approves_the_large_order_it_is_mailed_once_and_deliveries_are_booked(
    office: Office, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _check()
    capsys.readouterr()
    assert main(["approvals", "--json"]) == 0
    [waiting] = json.loads(capsys.readouterr().out)
    assert {k: waiting[k] for k in ("kind", "subject", "amount")} == {
        "kind": "purchase_order", "subject": "PO-20261126-BULKCO", "amount": "21000.00"}
    assert main(["approve", str(waiting["id"]), "--by", "dana", "--note", "season stock"]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "approved"
    assert office.mail.times_received("<po-20261126-bulkco@clerk>") == 1
    assert main(["approve", str(waiting["id"]), "--by", "sam", "--deny"]) == 2
    assert "already approved by dana" in capsys.readouterr().err
    with unit_of_work(office.url) as session:
        actors = {(actor, action) for actor, action in session.execute(select(AuditEntry.actor, AuditEntry.action))}
    assert ("dana", "purchase_order.approved") in actors and ("flow:restock-check", "purchase_order.approved") in actors
    assert _check()["purchase_orders_sent"] == 0  # the approved order went already
    assert main(["approvals", "--json"]) == 0 and json.loads(capsys.readouterr().out) == []

    delivery = tmp_path / "delivery.csv"
    delivery.write_text("sku,quantity\nMUG-1,40\n")
    assert main(["receive", "PO-20261126-ACME", str(delivery), "--by", "lee"]) == 0
    assert json.loads(capsys.readouterr().out)["under"] == {"MUG-1": 20}
    delivery.write_text("sku,quantity\nMUG-1,25\n")
    assert main(["receive", "PO-20261126-ACME", str(delivery)]) == 0
    report = capsys.readouterr()
    assert json.loads(report.out)["status"] == "received" and "over-delivered: MUG-1 +5" in report.err
    with unit_of_work(office.url) as session:
        received = session.scalar(select(func.sum(StockMovement.on_hand_delta)).where(StockMovement.kind == "receipt"))
    assert received == 65


@pytest.mark.parametrize(("rows", "number", "message"), [
    ("sku,quantity\nNOPE-1,3\n", "PO-20261126-ACME", "line 2: 'NOPE-1' is not on PO-20261126-ACME"),
    ("sku,quantity\nMUG-1,-4\n", "PO-20261126-ACME", "must be a positive whole number"),
    ("sku,quantity\nMUG-1,two\n", "PO-20261126-ACME", "line 2: quantity 'two' is not a whole number"),
    ("sku,quantity\nMUG-1,4\n", "PO-19990101-NOBODY", "no purchase order PO-19990101-NOBODY"),
    ("sku,quantity\nBIG-1,4\n", "PO-20261126-BULKCO", "is awaiting_approval"),
])
def test_a_delivery_that_cannot_be_booked_books_nothing(
    office: Office, tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: str, number: str, message: str
) -> None:
    _check()
    capsys.readouterr()
    delivery = tmp_path / "delivery.csv"
    delivery.write_text(rows)
    assert main(["receive", number, str(delivery)]) == 2
    err = capsys.readouterr().err
    assert message in err and "nothing booked" in err
    with unit_of_work(office.url) as session:
        assert session.scalar(select(func.count()).select_from(StockMovement).where(StockMovement.kind == "receipt")) == 0
    assert {po["status"] for po in _export(office.url, "purchase-orders")} == {"sent", "awaiting_approval"}


def test_mail_refused_for_a_while_is_retried_and_sent_once(office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.restock_check as restock_flow

    monkeypatch.setattr(restock_flow, "send_purchase_order",
                        restock_flow.send_purchase_order.with_options(retry_delay_seconds=0))
    office.mail.refuse_next(2)  # 421 twice; the third attempt goes through
    assert _check()["purchase_orders_sent"] == 1
    assert office.mail.times_received("<po-20261126-acme@clerk>") == 1


def test_mail_down_all_night_leaves_the_order_approved_and_the_next_run_sends_it(
    office: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.restock_check as restock_flow

    monkeypatch.setattr(restock_flow, "send_purchase_order",
                        restock_flow.send_purchase_order.with_options(retry_delay_seconds=0))
    office.mail.refuse_next(10)
    first = _check()
    assert (first["purchase_orders_created"], first["purchase_orders_sent"], first["purchase_orders_unsent"]) == (2, 0, 1)
    assert office.mail.messages == []
    office.mail.refuse_next(0)
    second = _check()
    assert (second["purchase_orders_created"], second["purchase_orders_sent"]) == (0, 1)
    assert office.mail.times_received("<po-20261126-acme@clerk>") == 1


def _silent_server(stack: ExitStack) -> str:
    """A port that accepts connections and never answers: a mail send there hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stack.callback(listener.close)
    return f"smtp://127.0.0.1:{listener.getsockname()[1]}"


def test_sigkill_between_creating_and_mailing_then_rerun_mails_the_order_once(office: Office, tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    with ExitStack() as stack:
        env = os.environ | office.env | {"CLERK_SMTP_URL": _silent_server(stack), "PYTHONPATH": str(ROOT),
                                          "PREFECT_API_URL": PREFECT_API_URL.value() or ""}
        child = subprocess.Popen(
            [sys.executable, "-m", "deployments.cli", "run", "restock-check", "--param", f"review_day={NIGHT}",
             "--param", "history_days=90", "--json"],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while rows_in(office.url, PurchaseOrder) < 2:
            assert child.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run made no purchase orders"
            time.sleep(0.05)
        time.sleep(0.5)  # now hanging on the silent mail server
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert {po["status"] for po in _export(office.url, "purchase-orders")} == {"approved", "awaiting_approval"}
    rerun = _check()
    assert (rerun["purchase_orders_created"], rerun["purchase_orders_sent"]) == (0, 1)
    assert office.mail.times_received("<po-20261126-acme@clerk>") == 1
    assert _check()["purchase_orders_sent"] == 0
    assert office.mail.times_received("<po-20261126-acme@clerk>") == 1
