"""`clerk demo` and `clerk sandbox`: the real clients against the sandboxes on loopback."""

from __future__ import annotations

import csv
import os
import shutil
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

SLACK_TOKEN = "xoxb-sandbox"
SLACK_CHANNEL = "#clerk-alerts"


def _start_sandboxes(stack: ExitStack, orders: int, seed: int, fault_rate: float = 0.0) -> tuple[Any, Any, dict[str, str]]:
    from integrations.sandbox.__main__ import build_shopify_sandbox

    from integrations.sandbox.server import serve_in_thread
    from integrations.sandbox.slack import create_slack_app

    shop = build_shopify_sandbox(orders=orders, seed=seed, fault_rate=fault_rate)
    slack = create_slack_app(token=SLACK_TOKEN)
    shop_server = stack.enter_context(serve_in_thread(shop))
    slack_server = stack.enter_context(serve_in_thread(slack))
    env = {
        "CLERK_SHOPIFY_SHOP_URL": shop_server.url,
        "CLERK_SHOPIFY_ACCESS_TOKEN": shop.token,
        "CLERK_SLACK_API_URL": f"{slack_server.url}/api/",
        "CLERK_SLACK_BOT_TOKEN": SLACK_TOKEN,
        "CLERK_SLACK_CHANNEL": SLACK_CHANNEL,
    }
    return shop, slack, env


def serve_sandboxes(orders: int, seed: int, fault_rate: float) -> None:
    """Serves the sandboxes until interrupted, printing the settings that point Clerk at them."""
    with ExitStack() as stack:
        _, _, env = _start_sandboxes(stack, orders, seed, fault_rate)
        print("Sandboxes are up. Point Clerk at them with:")
        for name, value in env.items():
            print(f"  export {name}={value}")
        print("Ctrl-C stops them.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _print_summary(label: str, summary: dict[str, Any]) -> None:
    keys = ("state", "fetched", "created", "updated", "unchanged", "held", "quarantined", "alerts_sent")
    print(f"\n== {label}")
    print("   " + "  ".join(f"{k}={summary.get(k)}" for k in keys))
    reasons = {k: v for k, v in summary.get("reasons", {}).items() if v}
    if reasons:
        print("   reasons: " + ", ".join(f"{k}={v}" for k, v in reasons.items()))


def run_demo(workdir: Path, orders: int = 3000, seed: int = 7) -> int:
    """Seeds a sandbox store, imports its catalog and stock, runs intake, shows what happened."""
    from deployments.importing import import_catalog, import_stock
    from deployments.runs import run_flow
    from deployments.writers import write_records
    from integrations import wiring
    from models.db import unit_of_work, upgrade
    from models.exports import EXPORTS

    if workdir.exists():
        shutil.rmtree(workdir)
    (workdir / "exports").mkdir(parents=True)
    url = f"sqlite:///{(workdir / 'clerk.db').resolve()}"
    with ExitStack() as stack:
        print(f"Starting the Shopify and Slack sandboxes with a seeded store of {orders} orders…", flush=True)
        shop, slack, env = _start_sandboxes(stack, orders, seed)
        os.environ.update(env | {"CLERK_DATABASE_URL": url})
        wiring.reset()
        upgrade(url)
        catalog = import_catalog(url, _write_csv(workdir / "catalog.csv", shop.store.catalog_rows()))
        stock = import_stock(url, _write_csv(workdir / "stock.csv", shop.store.stock_rows()))
        print(f"Imported {catalog.landed} catalog rows and {stock.landed} stock counts.")

        runs = []
        first, ok = run_flow("order-intake", {})
        runs.append(("order-intake #1: first backfill (bulk operation)", first))
        second, ok2 = run_flow("order-intake", {})
        runs.append(("order-intake #2: nothing new upstream", second))
        shop.edit(20)
        shop.add_orders(40)
        third, ok3 = run_flow("order-intake", {})
        runs.append(("order-intake #3: 20 orders edited and 40 new upstream", third))
        for label, summary in runs:
            _print_summary(label, summary)

        print(f"\n== Slack messages the sandbox received ({len(slack.messages)})")
        for message in slack.messages:
            print("   " + (message.text or "").replace("\n", "\n   "))

        written = []
        with unit_of_work(url) as session:
            for entity, fmt in (("orders", "jsonl"), ("orders", "csv"), ("orders", "xlsx"), ("quarantine", "jsonl")):
                path = workdir / "exports" / f"{entity}.{fmt}"
                count = write_records(EXPORTS[entity](session), fmt, path)
                written.append(f"{path} ({count} records)")
        print("\n== Exports\n   " + "\n   ".join(written))
        print(f"\nDatabase: {url}")
    return 0 if ok and ok2 and ok3 else 1
