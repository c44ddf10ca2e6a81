"""Labels benchmark: `ship-orders` buying labels for many orders against its floor.

    python -m bench.labels [--orders 10000] [--db sqlite,postgresql] [--repeat 1]

For each database kind and repeat, a fresh database seeded with `--orders` accepted orders
(an address, one or two lines of weighed SKUs) and a fresh EasyPost sandbox (served in this
process; its CPU is not the worker's), then in fresh subprocesses:

- ours: the real `ship-orders` flow after a warm-up: batches of 100, addresses verified,
  shipments quoted, the cheapest rate keeping the promise bought once each through the
  side-effect ledger, label files stored, shipments, stock movements and order statuses
  written, pick list and packing slips rendered (no channel is configured, so no
  fulfillment is written back).
- floor: the same requests one order after another (the flow buys one at a time too) with
  plain httpx: verify, create, read back, buy, fetch the label. Nothing stored.

Prints the medians and ours / floor (target at most 1.5). Results go to
`bench/results/labels-*.json`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, fresh_database, postgres_available, prefect_home_template, run_worker

TARGET = 1.5
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def seed(url: str, orders: int) -> None:
    """`orders` accepted orders with an address and weighed lines, bulk-inserted."""
    from sqlalchemy import insert

    from models import Order, OrderAddress, OrderLine, Product, Variant
    from models.db import unit_of_work, upgrade

    upgrade(url)
    now = datetime.now(UTC)
    skus = [f"SKU-{n:03d}" for n in range(50)]
    with unit_of_work(url) as session:
        session.execute(insert(Product), [{"id": 1, "title": "Product"}])
        session.execute(insert(Variant), [
            {"product_id": 1, "sku": sku, "title": sku, "price": Decimal("19.99"), "currency": "USD",
             "weight_grams": 200 + 10 * n, "source": "master", "channel_refs": {}, "updated_at": now}
            for n, sku in enumerate(skus)])
        for start in range(0, orders, 5000):
            ids = range(start + 1, min(start + 5000, orders) + 1)
            session.execute(insert(Order), [
                {"id": i, "channel": "shopify", "external_id": str(i), "number": f"#{i}", "status": "accepted",
                 "lifecycle": "open", "currency": "USD", "total": Decimal(0), "shipping": Decimal(0), "tax": Decimal(0),
                 "discounts": Decimal(0), "taxes_included": False, "requires_shipping": True, "risk": "low",
                 "placed_at": now, "upstream_updated_at": now, "fingerprint": "-", "created_at": now, "updated_at": now}
                for i in ids])
            session.execute(insert(OrderLine), [
                {"order_id": i, "position": p, "sku": skus[(i + p) % len(skus)], "title": "Item", "quantity": 1 + p,
                 "unit_price": Decimal("19.99"), "discount": Decimal(0)} for i in ids for p in range(1 + i % 2)])
            session.execute(insert(OrderAddress), [
                {"order_id": i, "name": f"Buyer {i}", "street1": f"{i} Main St", "city": "Austin", "province": "TX",
                 "postal_code": "78701", "country": "US"} for i in ids])


def main(argv: list[str] | None = None) -> int:
    from integrations.sandbox.easypost import create_easypost_app
    from integrations.sandbox.server import serve_in_thread

    parser = argparse.ArgumentParser(prog="python -m bench.labels", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=10000)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--profile", metavar="DIR", help="write a cProfile of each 'ours' run here (slows it)")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if "postgresql" in kinds and not postgres_available():
        raise SystemExit("PostgreSQL at 127.0.0.1:5432 does not answer (set CLERK_BENCH_POSTGRES)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log = RESULTS / f"labels-{stamp}.log"
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory(prefix="clerk-bench-") as scratch_name:
        scratch = Path(scratch_name)
        template = prefect_home_template(scratch, log)
        config = scratch / "clerk.toml"
        config.write_text(f'[shipping]\nlabels_dir = "{scratch / "labels"}"\ndocuments_dir = "{scratch / "papers"}"\n')
        for kind in kinds:
            raw[kind] = {"floor": [], "ours": []}
            for _ in range(args.repeat):
                for role in ("floor", "ours"):
                    carrier = create_easypost_app()
                    with fresh_database(kind, scratch) as url, serve_in_thread(carrier) as server:
                        seed(url, args.orders)
                        env = {"CLERK_CARRIER": "easypost", "CLERK_EASYPOST_API_URL": server.url,
                               "CLERK_EASYPOST_API_KEY": carrier.api_key, "CLERK_CONFIG": str(config)}
                        spec = {"profile": str(Path(args.profile).resolve() / f"labels-{kind}-{stamp}.prof")} \
                            if args.profile and role == "ours" else {}
                        report = run_worker(f"labels_{role}", spec, None, url, scratch, log, template, extra_env=env)
                        report["labels_at_carrier"] = carrier.stats["labels"]
                        raw[kind][role].append(report)
    path = RESULTS / f"labels-{stamp}.json"
    summary = {kind: _summarize(found) for kind, found in raw.items()}
    path.write_text(json.dumps({"args": vars(args), "summary": summary, "raw": raw}, indent=2, default=str))
    for kind, found in summary.items():
        print(f"{LABELS[kind]}: {args.orders} orders: floor {found['floor_s']:.1f} s, ours {found['ours_s']:.1f} s"
              f" -> ours/floor {found['ratio']:.2f} (target <= {TARGET}: {'met' if found['ratio'] <= TARGET else 'NOT met'});"
              f" labels bought: floor {found['floor_labels']}, ours {found['ours_labels']}")
    print(f"results: {path}")
    return 0


def _summarize(found: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    floor = statistics.median(run["times"]["run"] for run in found["floor"])
    ours = statistics.median(run["times"]["run"] for run in found["ours"])
    return {"floor_s": floor, "ours_s": ours, "ratio": ours / floor,
            "floor_labels": found["floor"][-1]["labels_at_carrier"], "ours_labels": found["ours"][-1]["labels_at_carrier"]}


if __name__ == "__main__":
    sys.exit(main())
