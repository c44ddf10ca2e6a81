"""Incremental order-intake benchmark: each channel's paginated path against its floor; prints ratios.

    python -m bench.incremental [--orders 3000] [--db sqlite,postgresql]
                                [--channels shopify,woocommerce,magento] [--repeat 3]

For each channel, a sandbox of its own with `--orders` orders; for each database kind,
in fresh subprocesses and fresh databases, `--repeat` times each, floor and ours
alternating (the medians are reported):

- ours: the real `order-intake` flow with only that channel configured, its order
  watermark in 2000 so every order comes through the changed-orders pages (Shopify's
  export is never used), after a warm-up (ephemeral Prefect server started with a
  trivial flow, great_expectations and Clerk's modules imported). Setup, untimed, seeds
  catalog and stock and syncs the channel's catalog once, as an earlier run would have;
  the timed run is the flow run alone.
- floor: the same pages (the client's own requests: page size, filter, order, auth)
  fetched one after another with plain httpx, json-parsed, rows built with the least
  mapping that fills orders, order_lines, customers and customer_accounts, and
  bulk-inserted with SQLAlchemy Core into the same schema, a transaction per intake
  batch (`[intake] batch_size`) as ours stores them. Nothing else.

Shopify's sandbox runs with an unthrottled cost bucket for the ratio (at Standard's 100
points/s the bucket, not either side, sets the pace); ours also runs once per database
at `--standard-restore-rate`, reported beside it. Results go to
`bench/results/incremental-*.json`, worker and sandbox logs beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, fresh_database, postgres_available, prefect_home_template, run_worker, sandbox

TARGET_OURS_OVER_FLOOR = 2.0
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
CHANNELS = {"shopify": "Shopify (GraphQL)", "woocommerce": "WooCommerce (REST v3)", "magento": "Magento 2 (REST)"}
# Ours' tasks, in the order a run meets them; whatever the flow does outside them is "other".
OURS_TASKS = ("fetch-channel-catalog", "store-channel-catalog", "fetch-changed-orders", "check-orders",
              "load-intake-context", "store-orders")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.incremental", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3000, help="orders in each channel's store")
    parser.add_argument("--db", default="sqlite,postgresql", help="comma list of sqlite, postgresql")
    parser.add_argument("--channels", default=",".join(CHANNELS), help="comma list of " + ", ".join(CHANNELS))
    parser.add_argument("--repeat", type=int, default=3, help="runs of floor and ours per channel and database")
    parser.add_argument("--seed", type=int, default=7, help="the sandbox stores' seed")
    parser.add_argument("--standard-restore-rate", type=float, default=100.0,
                        help="Shopify Standard plan's restore rate, points/s (0: skip that run)")
    parser.add_argument("--unthrottled-restore-rate", type=float, default=1_000_000.0,
                        help="a restore rate high enough that Shopify's bucket never binds")
    parser.add_argument("--cold-catalog", action="store_true",
                        help="leave the channel catalog unsynced, so ours' timed run also fetches all of it")
    return parser


def measure(args: argparse.Namespace, channels: list[str], kinds: list[str], scratch: Path,
            log: Path) -> dict[str, Any]:
    """Runs every measurement; returns the raw worker reports by channel and database kind."""
    raw: dict[str, Any] = {channel: {kind: {"ours": [], "floor": [], "standard": None} for kind in kinds}
                           for channel in channels}
    print("priming a Prefect home (server database migrated once) ...", file=sys.stderr)
    template = prefect_home_template(scratch, log)

    def step(kind: str, role: str, spec: dict[str, Any], box: Any) -> dict[str, Any]:
        started = time.perf_counter()
        print(f"  {spec['channel']:<11} {LABELS[kind]:<10} {role:<11} ...", end="", file=sys.stderr, flush=True)
        with fresh_database(kind, scratch) as url:
            report = run_worker(role, spec, box, url, scratch, log, template)
        print(f" {report['times']['run']:.2f} s (worker {time.perf_counter() - started:.0f} s)",
              file=sys.stderr, flush=True)
        return report

    for channel in channels:
        ours_spec = {"channel": channel, "orders": args.orders, "seed": args.seed, "incremental": True,
                     "catalog_synced": not args.cold_catalog}
        options = {"restore_rate": args.unthrottled_restore_rate} if channel == "shopify" else {}
        print(f"sandbox: {channel}, {args.orders} orders {json.dumps(options)}", file=sys.stderr)
        with sandbox(channel, args.orders, args.seed, log, **options) as box:
            for kind in kinds:
                for _ in range(args.repeat):
                    raw[channel][kind]["floor"].append(step(kind, "floor_pages", {"channel": channel}, box))
                    raw[channel][kind]["ours"].append(step(kind, "ours", ours_spec, box))
        if channel == "shopify" and args.standard_restore_rate > 0:
            rate = args.standard_restore_rate
            print(f"sandbox: {channel}, {args.orders} orders, restore rate {rate:g}", file=sys.stderr)
            with sandbox(channel, args.orders, args.seed, log, restore_rate=rate) as box:
                for kind in kinds:
                    raw[channel][kind]["standard"] = step(kind, "ours", ours_spec, box) | {"restore_rate": rate}
    return raw


def _median(values: list[float]) -> float:
    return statistics.median(values)


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    """Medians, rates, phases and the ratio, per channel and database kind."""
    out: dict[str, Any] = {}
    for channel, by_kind in raw.items():
        for kind, runs in by_kind.items():
            ours, floor = runs["ours"], runs["floor"]
            ours_runs = [r["times"]["run"] for r in ours]
            floor_runs = [r["times"]["run"] for r in floor]
            row: dict[str, Any] = {
                "channel": channel, "db": kind, "repeat": len(ours),
                "orders": ours[0]["summary"]["fetched"], "floor_orders": floor[0]["fetched"],
                "ours_s": _median(ours_runs), "ours_s_range": (min(ours_runs), max(ours_runs)),
                "floor_s": _median(floor_runs), "floor_s_range": (min(floor_runs), max(floor_runs)),
                "ours_task_s": {k: _median([r["task_s"].get(k, 0.0) for r in ours]) for k in OURS_TASKS},
                "floor_phases_s": {k: _median([r["times"].get(k, 0.0) for r in floor])
                                   for k in ("fetch", "map", "insert")},
                "ours_requests": ours[0]["requests"], "floor_requests": floor[0]["requests"],
                "floor_pages": floor[0]["pages"], "floor_batches": floor[0]["batches"],
                "floor_skipped": floor[0]["skipped_unreadable"],
                "cpu_s": {"ours": _median([r["cpu_s"]["self"] for r in ours]),
                          "ours_prefect_server": _median([r["cpu_s"]["server"] or 0.0 for r in ours]),
                          "floor": _median([r["cpu_s"]["self"] for r in floor])},
                "warm_up_s": _median([r["times"]["warm_up"] for r in ours]),
                "peak_rss_mb": _median([r["peak_rss_mb"] for r in ours]),
                "floor_peak_rss_mb": _median([r["peak_rss_mb"] for r in floor]),
                "summary": ours[0]["summary"], "rows": {"ours": ours[0]["rows"], "floor": floor[0]["rows"]},
            }
            row["ours_orders_per_s"] = row["orders"] / row["ours_s"]
            row["floor_orders_per_s"] = row["floor_orders"] / row["floor_s"]
            row["ours_over_floor"] = row["floor_orders_per_s"] / row["ours_orders_per_s"]
            row["ours_other_s"] = row["ours_s"] - sum(row["ours_task_s"].values())
            # What a run costs whatever its size: the flow's own work and tasks' orchestration
            # (stock holds, watermarks, alerts, artifacts), and the catalog check.
            row["ours_per_run_s"] = (row["ours_other_s"] + row["ours_task_s"]["fetch-channel-catalog"]
                                     + row["ours_task_s"]["store-channel-catalog"])
            row["floor_fetch_ms_per_page"] = 1000 * row["floor_phases_s"]["fetch"] / max(row["floor_pages"], 1)
            # Both walk the same pages (see the request counts): ours' order fetching per page.
            pages = max(row["floor_pages"], 1)
            row["ours_fetch_ms_per_page"] = 1000 * row["ours_task_s"]["fetch-changed-orders"] / pages
            standard = runs["standard"]
            if standard is not None:
                row["standard_restore_rate"] = standard["restore_rate"]
                row["standard_s"] = standard["times"]["run"]
                row["standard_orders_per_s"] = standard["summary"]["fetched"] / standard["times"]["run"]
                row["standard_fetch_s"] = standard["task_s"].get("fetch-changed-orders", 0.0)
            out[f"{channel}/{kind}"] = row
    return out


def _check(value: float) -> str:
    return "met" if value <= TARGET_OURS_OVER_FLOOR else "MISSED"


def render(summary: dict[str, Any]) -> str:
    """One plain-text block per channel and database kind, then the ratios in one table."""
    blocks = []
    for s in summary.values():
        t, f = s["ours_task_s"], s["floor_phases_s"]
        lo, hi = s["floor_s_range"]
        olo, ohi = s["ours_s_range"]
        rows = [
            (f"floor: httpx + json + Core insert, {s['floor_orders']:,} orders", f"{s['floor_s']:.2f} s",
             f"{s['floor_orders_per_s']:,.0f} orders/s", f"runs {lo:.2f}-{hi:.2f} s"),
            (f"  fetch+parse / map / insert ({s['floor_pages']} pages, {s['floor_requests']} requests, "
             f"{s['floor_batches']} transactions)", f"{f['fetch']:.2f} s", f"{f['map']:.2f} / {f['insert']:.2f} s",
             f"{s['floor_fetch_ms_per_page']:.1f} ms/page"),
            (f"ours: order-intake flow, {s['orders']:,} orders", f"{s['ours_s']:.2f} s",
             f"{s['ours_orders_per_s']:,.0f} orders/s", f"runs {olo:.2f}-{ohi:.2f} s"),
            (f"  fetch / check / context / store ({s['ours_requests']} requests, catalog's too)",
             f"{t['fetch-changed-orders']:.2f} s",
             f"{t['check-orders']:.2f} / {t['load-intake-context']:.2f} / {t['store-orders']:.2f} s",
             f"{s['ours_fetch_ms_per_page']:.1f} ms/page"),
            ("  catalog fetch / store, other (flow, tasks, server)", f"{t['fetch-channel-catalog']:.2f} s",
             f"{t['store-channel-catalog']:.2f} / {s['ours_other_s']:.2f} s", ""),
        ]
        if "standard_s" in s:
            rows.append((f"ours at {s['standard_restore_rate']:g} points/s (Standard)", f"{s['standard_s']:.2f} s",
                         f"{s['standard_orders_per_s']:,.1f} orders/s",
                         f"fetch {s['standard_fetch_s']:.2f} s"))
        rows.append(("warm-up (ephemeral server, imports), not timed above", f"{s['warm_up_s']:.1f} s", "", ""))
        rows.append(("CPU ours / its Prefect server / floor", f"{s['cpu_s']['ours']:.2f} s",
                     f"{s['cpu_s']['ours_prefect_server']:.2f} / {s['cpu_s']['floor']:.2f} s", ""))
        width = max(len(r[0]) for r in rows)
        lines = [f"{CHANNELS[s['channel']]} on {LABELS[s['db']]} (medians of {s['repeat']} runs)", "-" * (width + 70)]
        lines += [f"{a:<{width}}  {b:>9}  {c:>24}  {d}" for a, b, c, d in rows]
        blocks.append("\n".join(lines))
    header = (f"{'channel':<12} {'database':<11} {'ours orders/s':>14} {'floor orders/s':>15} {'ours/floor':>11}  "
              f"{'target':<19} ours per-run s")
    table = [header, "-" * len(header) + "--------"]
    for s in summary.values():
        table.append(f"{s['channel']:<12} {LABELS[s['db']]:<11} {s['ours_orders_per_s']:>14,.0f} "
                     f"{s['floor_orders_per_s']:>15,.0f} {s['ours_over_floor']:>11.2f}  "
                     f"{f'<= {TARGET_OURS_OVER_FLOOR:g}: ' + _check(s['ours_over_floor']):<19} "
                     f"{s['ours_per_run_s']:.2f}")
        if "standard_orders_per_s" in s:
            table.append(f"{'':<12} {'':<11} {s['standard_orders_per_s']:>14,.1f}  at "
                         f"{s['standard_restore_rate']:g} points/s (Standard), no ratio")
    notes = ("ours/floor: ours' time per order over the floor's. ours per-run s: the flow's work outside the\n"
             "intake tasks (orchestration, stock holds, watermarks, alerts, artifacts) and the catalog check,\n"
             "paid once a run whatever its size: small runs show it most.")
    blocks.append("ratios:\n" + "\n".join(table) + "\n" + notes)
    return "\n\n".join(blocks)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    if unknown := set(kinds) - set(LABELS):
        raise SystemExit(f"unknown --db kind(s): {', '.join(sorted(unknown))}")
    if unknown := set(channels) - set(CHANNELS):
        raise SystemExit(f"unknown --channels: {', '.join(sorted(unknown))}")
    if not kinds or not channels:
        raise SystemExit("nothing to measure: name at least one --db and one --channels")
    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    if args.orders < 1:
        raise SystemExit("--orders must be at least 1")
    if "postgresql" in kinds and not postgres_available():
        raise SystemExit("PostgreSQL at 127.0.0.1:5432 does not answer (set CLERK_BENCH_POSTGRES)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log = RESULTS / f"incremental-{stamp}.log"
    scratch = Path(tempfile.mkdtemp(prefix="clerk-bench-"))
    print(f"worker and sandbox logs: {log}", file=sys.stderr)
    try:
        raw = measure(args, channels, kinds, scratch, log)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary = summarize(raw)
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    path = RESULTS / f"incremental-{stamp}.json"
    path.write_text(json.dumps({"args": vars(args), "machine": machine, "summary": summary, "raw": raw},
                               indent=2, default=str))
    print(render(summary))
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
