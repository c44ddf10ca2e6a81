"""`clerk demo` and `clerk sandbox`: the real clients against the sandboxes on loopback.

Shopify, WooCommerce and Magento sell from one seeded store (one catalog, one stock, its
orders dealt among the three storefronts); a Slack sandbox takes the alerts.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import hmac
import json
import os
import shlex
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SLACK_TOKEN = "xoxb-sandbox"
SLACK_CHANNEL = "#clerk-alerts"
WEBHOOK_SECRETS = {"shopify": "shpss_demo", "woocommerce": "wc_demo"}
EDITED, PLACED = 10, 20  # orders edited and placed on each channel before the third run
SUMMARY_COLUMNS = ("fetched", "created", "updated", "unchanged", "held", "quarantined")


@dataclass
class Sandboxes:
    """The running sandboxes, by channel, and the settings that point Clerk at them."""

    channels: dict[str, Any]
    slack: Any
    urls: dict[str, str]
    env: dict[str, str]
    carrier: Any = None  # the EasyPost sandbox
    gateway: Any = None  # the Stripe sandbox, over the channels' store


def clerk_env(channels: dict[str, Any], urls: dict[str, str], carrier: Any, gateway: Any) -> dict[str, str]:
    """The `CLERK_*` settings for the three channels, Slack, EasyPost and Stripe served at `urls`."""
    shop, woo, mage = channels["shopify"], channels["woocommerce"], channels["magento"]
    return {
        "CLERK_SHOPIFY_SHOP_URL": urls["shopify"],
        "CLERK_SHOPIFY_ACCESS_TOKEN": shop.token,
        "CLERK_SHOPIFY_API_VERSION": shop.api_version,
        "CLERK_WOOCOMMERCE_URL": urls["woocommerce"],
        "CLERK_WOOCOMMERCE_KEY": woo.key,
        "CLERK_WOOCOMMERCE_SECRET": woo.secret,
        "CLERK_MAGENTO_URL": urls["magento"],
        "CLERK_MAGENTO_STORE": mage.store_code,
        "CLERK_MAGENTO_TOKEN": mage.token,
        "CLERK_SLACK_API_URL": f"{urls['slack']}/api/",
        "CLERK_SLACK_BOT_TOKEN": SLACK_TOKEN,
        "CLERK_SLACK_CHANNEL": SLACK_CHANNEL,
        "CLERK_CARRIER": "easypost",
        "CLERK_EASYPOST_API_URL": urls["easypost"],
        "CLERK_EASYPOST_API_KEY": carrier.api_key,
        "CLERK_STRIPE_API_URL": urls["stripe"],
        "CLERK_STRIPE_API_KEY": gateway.api_key,
    }


@contextmanager
def running_sandboxes(orders: int, seed: int, fault_rate: float = 0.0, port: int = 0) -> Iterator[Sandboxes]:
    """Serves the three channels over one seeded store, Slack, EasyPost and Stripe (holding the
    store's payments) until the block ends.

    Args:
        port: the first of six consecutive ports; 0 picks free ones.
    """
    from integrations.sandbox.__main__ import VENDORS, build_sandboxes, serving
    from integrations.sandbox.easypost import create_easypost_app
    from integrations.sandbox.slack import create_slack_app
    from integrations.sandbox.stripe import create_stripe_app

    channels = build_sandboxes(VENDORS, orders, seed, fault_rate)
    slack = create_slack_app(token=SLACK_TOKEN)
    carrier, gateway = create_easypost_app(), create_stripe_app(channels["shopify"].store)
    with serving(channels | {"slack": slack, "easypost": carrier, "stripe": gateway}, port=port) as servers:
        urls = {name: server.url for name, server in servers.items()}
        yield Sandboxes(channels, slack, urls, clerk_env(channels, urls, carrier, gateway), carrier, gateway)


def serve_sandboxes(orders: int, seed: int, fault_rate: float, port: int = 0) -> None:
    """Serves the sandboxes until Ctrl-C or SIGTERM, printing each URL and the settings to paste."""
    from integrations.sandbox.__main__ import stop_on_signals

    with running_sandboxes(orders, seed, fault_rate, port) as sandboxes:
        stop = stop_on_signals()
        print(f"Sandboxes are up, over one seeded store of {orders} orders:")
        for name, url in sandboxes.urls.items():
            print(f"  {name:<12} {url}")
        print("Point Clerk at them (paste into a shell or a .env file):")
        for name, value in sandboxes.env.items():
            print(f"export {name}={shlex.quote(value)}")
        print("Ctrl-C stops them.", flush=True)
        stop.wait()


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _signed(channel: str, body: bytes, delivery_id: str) -> dict[str, str]:
    """The headers the vendor sends with an `order created` delivery, signed with the demo's secret."""
    digest = hmac.new(WEBHOOK_SECRETS[channel].encode(), body, hashlib.sha256).digest()
    signature = base64.b64encode(digest).decode()
    if channel == "shopify":
        return {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
                "X-Shopify-Hmac-Sha256": signature, "X-Shopify-Webhook-Id": delivery_id,
                "X-Shopify-Triggered-At": datetime.now(UTC).isoformat()}
    return {"Content-Type": "application/json", "X-WC-Webhook-Topic": "order.created",
            "X-WC-Webhook-Signature": signature, "X-WC-Webhook-Delivery-ID": delivery_id}


def _deliver_webhooks(channels: dict[str, Any], placed: dict[str, list[str]]) -> dict[str, tuple[int, bool]]:
    """Posts one signed `order created` delivery per webhook channel to Clerk's webhook app, in process.

    Returns:
        By channel, the app's HTTP status and whether it nudged order intake.
    """
    import httpx

    from deployments.webhooks import create_webhook_app
    from integrations.settings import cached_settings

    nudged: list[str] = []  # stands in for starting the deployment: run 3 below is that run
    app = create_webhook_app(cached_settings(), trigger=nudged.append)
    shopify_id = int(placed["shopify"][0].rsplit("/", 1)[1])
    woo = channels["woocommerce"]
    bodies = {
        # Intake reads orders from the API, never from a delivery: Shopify's id is enough here.
        "shopify": {"id": shopify_id, "admin_graphql_api_id": placed["shopify"][0]},
        "woocommerce": woo.render_order(woo.store.order(int(placed["woocommerce"][0]))),
    }

    async def deliver() -> list[tuple[str, int]]:
        transport = httpx.ASGITransport(app=app)  # returns once the app is done, its trigger included
        async with httpx.AsyncClient(transport=transport, base_url="http://clerk.demo") as client:
            answers = []
            for number, (channel, payload) in enumerate(bodies.items(), 1):
                body = json.dumps(payload).encode()
                answer = await client.post(f"/webhooks/{channel}", content=body,
                                           headers=_signed(channel, body, f"demo-{number}"))
                answers.append((channel, answer.status_code))
            return answers

    return {channel: (status, channel in nudged) for channel, status in asyncio.run(deliver())}


def _print_summary(label: str, summary: dict[str, Any]) -> None:
    print(f"\n== {label}\n   state={summary['state']}  alerts_sent={summary.get('alerts_sent')}")
    if "error" in summary:
        print(f"   error: {summary['error']}")
        return
    print("   " + f"{'channel':<12}" + "".join(f"{column:>12}" for column in SUMMARY_COLUMNS))
    for name, counts in (summary["channels"] | {"all": summary}).items():
        print("   " + f"{name:<12}" + "".join(f"{counts[column]:>12}" for column in SUMMARY_COLUMNS))
    reasons = {k: v for k, v in summary["reasons"].items() if v}
    if reasons:
        print("   reasons: " + ", ".join(f"{k}={v}" for k, v in reasons.items()))


def _write_config(workdir: Path, catalog_rows: list[dict[str, Any]]) -> Path:
    """clerk.toml naming every supplier of the catalog, each with a sandbox mailbox."""
    suppliers = sorted({row["supplier"] for row in catalog_rows if row.get("supplier")})
    lines = ['[approvals]', 'purchase_order_above = "5000.00"', '', '[shipping]', 'promise_days = 10',
             f'labels_dir = "{(workdir / "labels").resolve()}"', f'documents_dir = "{(workdir / "shipping").resolve()}"', '']
    for name in suppliers:
        slug = "".join(ch for ch in name.lower() if ch.isascii() and ch.isalnum()) or "supplier"
        lines += [f'[suppliers."{name}"]', f'email = "orders@{slug}.example"', '']
    path = workdir / "clerk.toml"
    path.write_text("\n".join(lines))
    return path


def _restock_night(workdir: Path, url: str) -> tuple[list[tuple[str, tuple[dict[str, Any], bool]]], list[str]]:
    """Two restock checks of one night, and a clerk approving the first order that waits."""
    from deployments.purchasing import approve, list_approvals
    from deployments.runs import run_flow

    runs = [("restock-check #1: tonight's review", run_flow("restock-check", {})),
            ("restock-check #2: the same night again", run_flow("restock-check", {}))]
    notes = []
    waiting = list_approvals(url)
    if waiting:
        decision, warning = approve(url, waiting[0]["id"], "demo-clerk", True, "approved in the demo")
        notes.append(f"{decision['subject']} ({waiting[0]['amount']} {waiting[0]['currency']}) {decision['decision']} "
                     f"by demo-clerk" + (f"; {warning}" if warning else ", mailed to its supplier"))
    notes.append(f"{len(waiting) - 1 if waiting else 0} more purchase orders still wait (`clerk approvals`)")
    return runs, notes


def _returnable(url: str, count: int) -> list[tuple[str, str, str]]:
    """(channel, order number, SKU) of orders Clerk shipped today, paid through Stripe, with no return yet, one line each."""
    from sqlalchemy import select

    from models import Order, OrderLine, Return, Shipment
    from models.db import unit_of_work

    with unit_of_work(url) as session:
        rows = session.execute(
            select(Order.channel, Order.number, OrderLine.sku).join(OrderLine, OrderLine.order_id == Order.id)
            .join(Shipment, Shipment.order_id == Order.id)
            .where(Order.payment_gateway == "stripe", OrderLine.sku.is_not(None),
                   OrderLine.requires_shipping.is_(True), OrderLine.unit_price.between(10, 60),
                   Order.id.not_in(select(Return.order_id)))
            .order_by(Order.id)).all()
    picked: dict[tuple[str, str], str] = {}
    for channel, number, sku in rows:
        picked.setdefault((channel, number), sku)
    return [(channel, number, sku) for (channel, number), sku in list(picked.items())[:count]]


def _returns_day(url: str) -> tuple[list[tuple[str, tuple[dict[str, Any], bool]]], list[str]]:
    """The channels' return requests taken up; a clerk opens a refund, an exchange and one the
    policy sends to a person; goods come back; refunds are paid once and followed to the end."""
    from deployments.purchasing import list_approvals
    from deployments.returns import create_return, receive_return
    from deployments.runs import run_flow

    runs = [("process-returns #1: the channels' own return requests", run_flow("process-returns", {}))]
    notes = []
    (c1, n1, s1), (c2, n2, s2), (c3, n3, s3) = _returnable(url, 3)
    refund = create_return(url, n1, c1, {s1: 1}, "defective", "refund", "demo-clerk")["rma"]
    exchange = create_return(url, n2, c2, {s2: 1}, "wrong_item", "exchange", "demo-clerk")["rma"]
    review = create_return(url, n3, c3, {s3: 1}, "other", "refund", "demo-clerk")["rma"]
    notes.append(f"opened {refund} (defective, refund) on {c1} {n1}, {exchange} (wrong item, exchange) on {c2} {n2}, "
                 f"{review} (reason other: a person decides) on {c3} {n3}")
    runs.append(("process-returns #2: decided by policy, return labels bought", run_flow("process-returns", {})))
    for rma in (refund, exchange):
        received = receive_return(url, rma, "resellable", "demo-dock")
        notes.append(f"{rma} received {received['condition']}: back on the shelf ({received['rule']})")
    runs += [(f"process-returns #{n}: {what}", run_flow("process-returns", {}))
             for n, what in ((3, "refund paid once, replacement order reserved"),
                             (4, "refunds followed at Stripe (pending for a few reads)"),
                             (5, "refunds settled; channels told once, nothing paid twice"))]
    waiting = [a for a in list_approvals(url) if a["kind"] != "purchase_order"]
    notes.append(f"{len(waiting)} returns wait for a person (`clerk approvals`), e.g. "
                 + ", ".join(f"#{a['id']} {a['kind']} {a['subject']} {a['amount']} {a['currency']}" for a in waiting[:3]))
    return runs, notes


def run_demo(workdir: Path, orders: int = 3000, seed: int = 7) -> int:
    """A simulated day: three channels over one store, three intake runs, webhooks, stock pushed to
    the channels, a restock night with purchase orders mailed and one approved, alerts, exports."""
    from deployments.importing import import_catalog, import_stock
    from deployments.runs import run_flow
    from deployments.writers import write_records
    from integrations import wiring
    from models.db import unit_of_work, upgrade
    from integrations.sandbox.smtp import SmtpSandbox
    from models.exports import EXPORTS

    if workdir.exists():
        shutil.rmtree(workdir)
    (workdir / "exports").mkdir(parents=True)
    url = f"sqlite:///{(workdir / 'clerk.db').resolve()}"
    print(f"Starting the Shopify, WooCommerce, Magento, Slack, EasyPost and Stripe sandboxes over one seeded store "
          f"of {orders} orders…",
          flush=True)
    with running_sandboxes(orders, seed) as sandboxes, SmtpSandbox() as mail:
        store = sandboxes.channels["shopify"].store  # every channel's view shares the catalog and stock
        gateway = sandboxes.gateway
        secrets = {f"CLERK_{channel.upper()}_WEBHOOK_SECRET": secret for channel, secret in WEBHOOK_SECRETS.items()}
        office = {"CLERK_DATABASE_URL": url, "CLERK_SMTP_URL": mail.url, "CLERK_SMTP_FROM": "buyer@clerk.example",
                  "CLERK_CONFIG": str(_write_config(workdir, store.catalog_rows()))}
        os.environ.update(sandboxes.env | secrets | office)
        wiring.reset()
        upgrade(url)
        catalog = import_catalog(url, _write_csv(workdir / "catalog.csv", store.catalog_rows()))
        stock = import_stock(url, _write_csv(workdir / "stock.csv", store.stock_rows()))
        print(f"Imported {catalog.landed} catalog rows and {stock.landed} stock counts.", flush=True)

        runs = [("order-intake #1: first backfill of every channel", run_flow("order-intake", {})),
                ("order-intake #2: nothing new upstream", run_flow("order-intake", {}))]
        placed = {}
        for channel, sandbox in sandboxes.channels.items():
            sandbox.edit(EDITED)
            placed[channel] = sandbox.add_orders(PLACED)
        deliveries = _deliver_webhooks(sandboxes.channels, placed)
        runs.append((f"order-intake #3: {EDITED} orders edited and {PLACED} placed on each channel",
                     run_flow("order-intake", {})))
        for label, (summary, _) in runs:
            _print_summary(label, summary)
        for label in ("#1", "#2: what a stopped batch left"):
            shipped = run_flow("ship-orders", {})
            print(f"\n== ship-orders {label}: labels from the EasyPost sandbox\n   state={shipped[0]['state']}  "
                  + "  ".join(f"{k}={shipped[0].get(k)}" for k in ("orders_considered", "labels_bought", "held",
                                                                    "fulfillments_written", "batches_stopped", "alerts_sent")))
            if shipped[0].get("reasons"):
                print("   held: " + ", ".join(f"{k}={v}" for k, v in shipped[0]["reasons"].items()))
            for paper in shipped[0].get("documents", [])[:2]:
                print(f"   {paper}")
            runs.append((f"ship-orders {label}", shipped))
        for label in ("#1", "#2", "#3"):  # the sandbox's parcels move a step each time they are read
            tracked = run_flow("track-shipments", {})
            print(f"\n== track-shipments {label}\n   state={tracked[0]['state']}  " + "  ".join(
                f"{k}={tracked[0].get(k)}" for k in ("trackers_polled", "updated", "delivered", "exceptions", "late",
                                                      "alerts_sent")))
            runs.append((f"track-shipments {label}", tracked))
        synced = run_flow("sync-stock", {})
        print(f"\n== sync-stock: available stock to every channel\n   state={synced[0]['state']}  "
              + "  ".join(f"{name}: pushed={c['pushed']} unchanged={c['unchanged']} conflicts={c['conflicts']}"
                          for name, c in synced[0].get("channels", {}).items()))
        runs.append(("sync-stock", synced))
        restock, approvals = _restock_night(workdir, url)
        for label, (summary, _) in restock:
            print(f"\n== {label}\n   " + "  ".join(f"{k}={v}" for k, v in summary.items() if k not in ("flow", "review_day")))
        print("\n== Approvals\n   " + "\n   ".join(approvals))
        print(f"\n== Purchase orders the SMTP sandbox received ({len(mail.messages)})")
        for message in mail.messages:
            print(f"   {message.message['Subject']} -> {', '.join(message.rcpt_to)}")
        runs += restock
        returned, notes = _returns_day(url)
        for label, (summary, _) in returned:
            print(f"\n== {label}\n   state={summary['state']}  " + "  ".join(
                f"{k}={summary.get(k)}" for k in ("returns_considered", "approved", "declined", "awaiting_approval",
                                                  "labels_bought", "refunds_issued", "refunded_amount", "exchanges",
                                                  "channels_told", "alerts_sent")))
        print("\n== Returns\n   " + "\n   ".join(notes))
        print(f"   Stripe sandbox: {gateway.refunds_created()} refunds made, {gateway.stats['replays']} replays")
        runs += returned

        print("\n== Signed webhook deliveries to the `clerk webhooks` app, before run #3")
        for channel, (status, nudged) in deliveries.items():
            print(f"   {channel:<12} HTTP {status}" + (", order intake nudged" if nudged else ""))
        print(f"\n== Slack messages the sandbox received ({len(sandboxes.slack.messages)})")
        for message in sandboxes.slack.messages:
            print("   " + (message.text or "").replace("\n", "\n   "))

        written = []
        with unit_of_work(url) as session:
            for entity, fmt in (("orders", "jsonl"), ("orders", "csv"), ("orders", "xlsx"), ("quarantine", "jsonl"),
                                ("inventory", "csv"), ("purchase-orders", "jsonl"), ("shipments", "csv"),
                                ("carrier-performance", "csv"), ("returns", "jsonl"), ("refunds", "csv")):
                path = workdir / "exports" / f"{entity}.{fmt}"
                count = write_records(EXPORTS[entity](session), fmt, path)
                written.append(f"{path} ({count} records)")
        print("\n== Exports (as `clerk export ENTITY --format FMT --output PATH` writes them)\n   "
              + "\n   ".join(written))
        print(f"\nDatabase: {url}")
    every_nudged = all(nudged for _, nudged in deliveries.values())
    return 0 if every_nudged and all(ok for _, (_, ok) in runs) else 1
