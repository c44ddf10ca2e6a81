"""Restock benchmark: `restock-check` over a large catalog and a year of sales, against its floor.

    python -m bench.restock [--skus 50000] [--days 365] [--db sqlite,postgresql] [--repeat 2]

One seeded database per kind (SKUs with lognormal daily demand, Poisson sales a day, four
lines an order, 20 suppliers, stock counted today), then in fresh subprocesses, `--repeat`
times each, alternating:

- ours: the real `restock-check` flow for today with `--days` of history, after a warm-up
  (ephemeral Prefect server started, Clerk's modules imported): reads history, levels and
  open orders, computes the plan, stores every SKU's figures, creates and mails (logged:
  no SMTP set) the purchase orders, alerts (logged). Each run starts from the same
  database (POs from the last run are deleted, untimed).
- floor: one SQL query for the daily sales per SKU and one for catalog terms and stock
  levels, the sales scattered into a NumPy matrix, and the same vectorised math
  (`domain.reorder.read_demand` + `plan_restock`). Nothing stored.

Prints the medians, ours / floor (target at most 2), and each side's peak RSS. Results go
to `bench/results/restock-*.json`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness import RESULTS, fresh_database, postgres_available, prefect_home_template, run_worker

TARGET = 2.0
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def seed(url: str, skus: int, days: int, review_day: date, rng: np.random.Generator) -> dict[str, int]:
    """Catalog, a year of orders and today's stock count, bulk-inserted."""
    from sqlalchemy import delete, insert

    from models import Order, OrderLine, Product, StockMovement, Variant
    from models.db import unit_of_work, upgrade

    upgrade(url)
    names = [f"SKU-{n:06d}" for n in range(skus)]
    rates = rng.lognormal(mean=-2.5, sigma=1.0, size=skus)
    now = datetime.now(UTC)
    with unit_of_work(url) as session:
        session.execute(delete(StockMovement))
        session.execute(insert(Product), [{"id": p + 1, "title": f"Product {p}"} for p in range(skus // 10 + 1)])
        session.execute(insert(Variant), [
            {"product_id": n // 10 + 1, "sku": sku, "title": sku, "price": Decimal("19.99"), "currency": "USD",
             "cost": Decimal("7.50"), "supplier": f"SUPPLIER-{n % 20:02d}", "lead_time_days": int(5 + n % 10),
             "moq": int(rng.choice([0, 6, 12])), "pack_size": int(rng.choice([1, 1, 6])), "source": "master",
             "channel_refs": {}, "updated_at": now} for n, sku in enumerate(names)])
        session.execute(insert(StockMovement), [
            {"sku": sku, "location": "main", "kind": "count", "on_hand_delta": int(units), "reserved_delta": 0,
             "created_at": now} for sku, units in zip(names, rng.integers(0, 60, size=skus), strict=True)])
    first = review_day - timedelta(days=days)
    order_id, lines_total = 0, 0
    for day in range(days):
        sold = rng.poisson(rates)
        which = np.flatnonzero(sold)
        placed = datetime.combine(first + timedelta(days=day), datetime.min.time(), UTC) + timedelta(hours=14)
        orders, lines = [], []
        for start in range(0, len(which), 4):
            order_id += 1
            orders.append({"id": order_id, "channel": "shopify", "external_id": str(order_id), "number": f"#{order_id}",
                           "status": "fulfilled", "lifecycle": "fulfilled", "currency": "USD", "total": Decimal(0),
                           "shipping": Decimal(0), "tax": Decimal(0), "discounts": Decimal(0), "taxes_included": False,
                           "requires_shipping": True, "risk": "low", "placed_at": placed, "upstream_updated_at": placed,
                           "fingerprint": "-", "created_at": now, "updated_at": now})
            for position, n in enumerate(which[start:start + 4]):
                lines.append({"order_id": order_id, "position": position, "sku": names[n], "title": names[n],
                              "quantity": int(sold[n]), "unit_price": Decimal("19.99"), "discount": Decimal(0)})
        with unit_of_work(url) as session:
            if orders:
                session.execute(insert(Order), orders)
                session.execute(insert(OrderLine), lines)
        lines_total += len(lines)
    return {"skus": skus, "orders": order_id, "order_lines": lines_total}


def reset_purchase_orders(url: str) -> None:
    from sqlalchemy import delete

    from models import Approval, AuditEntry, PurchaseOrder, PurchaseOrderLine, RestockFigure, SentAlert, SideEffect
    from models.db import unit_of_work

    with unit_of_work(url) as session:
        for table in (PurchaseOrderLine, PurchaseOrder, Approval, AuditEntry, RestockFigure, SentAlert, SideEffect):
            session.execute(delete(table))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.restock", description=__doc__.split("\n")[0])
    parser.add_argument("--skus", type=int, default=50000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if "postgresql" in kinds and not postgres_available():
        raise SystemExit("PostgreSQL at 127.0.0.1:5432 does not answer (set CLERK_BENCH_POSTGRES)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log = RESULTS / f"restock-{stamp}.log"
    review_day = datetime.now(UTC).date()
    spec = {"review_day": review_day.isoformat(), "days": args.days}
    raw: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="clerk-bench-") as scratch_name:
        scratch = Path(scratch_name)
        template = prefect_home_template(scratch, log)
        for kind in kinds:
            with fresh_database(kind, scratch) as url:
                started = time.perf_counter()
                data = seed(url, args.skus, args.days, review_day, np.random.default_rng(args.seed))
                print(f"{LABELS[kind]}: seeded {data} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
                runs: dict[str, list[dict[str, Any]]] = {"floor": [], "ours": []}
                for _ in range(args.repeat):
                    runs["floor"].append(run_worker("restock_floor", spec, None, url, scratch, log, template))
                    reset_purchase_orders(url)
                    runs["ours"].append(run_worker("restock_ours", spec, None, url, scratch, log, template))
                raw[kind] = {"data": data, "runs": runs}
    summary = {kind: _summarize(found) for kind, found in raw.items()}
    path = RESULTS / f"restock-{stamp}.json"
    path.write_text(json.dumps({"args": vars(args), "summary": summary, "raw": raw}, indent=2, default=str))
    for kind, found in summary.items():
        print(f"{LABELS[kind]}: {found['skus']} SKUs, {found['order_lines']} order lines over {args.days} days")
        print(f"  floor {found['floor_s']:.2f} s, ours {found['ours_s']:.2f} s -> ours/floor {found['ratio']:.2f}"
              f" (target <= {TARGET}: {'met' if found['ratio'] <= TARGET else 'NOT met'})")
        print(f"  peak RSS: floor {found['floor_rss_mb']:.0f} MB, ours {found['ours_rss_mb']:.0f} MB;"
              f" ours below reorder point {found['below_reorder_point']}, purchase orders {found['purchase_orders']}")
    print(f"results: {path}")
    return 0


def _summarize(found: dict[str, Any]) -> dict[str, Any]:
    floor = statistics.median(run["times"]["run"] for run in found["runs"]["floor"])
    ours = statistics.median(run["times"]["run"] for run in found["runs"]["ours"])
    last = found["runs"]["ours"][-1]["summary"]
    return {**found["data"], "floor_s": floor, "ours_s": ours, "ratio": ours / floor,
            "floor_rss_mb": max(run["peak_rss_mb"] for run in found["runs"]["floor"]),
            "ours_rss_mb": max(run["peak_rss_mb"] for run in found["runs"]["ours"]),
            "below_reorder_point": last["below_reorder_point"], "purchase_orders": last["purchase_orders_created"]}


if __name__ == "__main__":
    sys.exit(main())
