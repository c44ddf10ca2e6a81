"""Order-intake backfill benchmark: ours against the floor and a naive peer; prints ratios.

    python -m bench.backfill [--orders 100000] [--small 10000] [--naive 500]
                             [--incremental 3000] [--db sqlite,postgresql] [--repeat 3]

For each database kind and each store size (`--small` and `--orders`), in fresh
subprocesses and fresh databases, `--repeat` times each, floor and ours alternating
(the medians are reported):

- ours: the real `order-intake` flow through the bulk-operation path, after a warm-up
  (ephemeral Prefect server started with a trivial flow, great_expectations and Clerk's
  modules imported); only the flow run is timed.
- floor: the same bulk operation with plain httpx, the JSONL streamed to disk, parsed,
  line items grouped under orders by `__parentId`, and orders, order_lines and customers
  bulk-inserted with SQLAlchemy Core. Nothing else.
- naive peer (`--naive` orders, once): one Prefect task per order doing what Clerk does
  for one order (parse, quality suite, decide, store), sequentially.
- incremental (once per rate): the paginated path (forced by an early watermark) over
  `--incremental` orders, at Shopify's Standard restore rate (100 points/s) and unthrottled.

The Shopify sandbox runs as a subprocess of its own, seeded once per store size. Flow
heartbeats are off in every worker (ours and naive alike). Results go to
`bench/results/backfill-*.json`, worker and sandbox logs beside them.
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

from bench.harness import (
    RESULTS,
    fresh_database,
    postgres_available,
    prefect_home_template,
    run_worker,
    shopify_sandbox,
)

TARGET_FLOW_OVER_FLOOR = 2.0
TARGET_NAIVE_OVER_OURS = 100.0
TARGET_RSS_GROWTH = 1.5
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.backfill", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000, help="orders in the big backfill")
    parser.add_argument("--small", type=int, default=10_000, help="orders in the small backfill (memory baseline)")
    parser.add_argument("--naive", type=int, default=500, help="orders through the naive peer (<= --small)")
    parser.add_argument("--incremental", type=int, default=3000, help="orders through the paginated path")
    parser.add_argument("--db", default="sqlite,postgresql", help="comma list of sqlite, postgresql")
    parser.add_argument("--repeat", type=int, default=3, help="runs of floor and ours per size (medians)")
    parser.add_argument("--seed", type=int, default=7, help="the sandbox store's seed")
    parser.add_argument("--backfill-restore-rate", type=float, default=100_000.0,
                        help="sandbox restore rate for the backfill (bulk operations are not cost-throttled)")
    parser.add_argument("--standard-restore-rate", type=float, default=100.0,
                        help="Shopify Standard plan's restore rate, points/s")
    parser.add_argument("--unthrottled-restore-rate", type=float, default=1_000_000.0,
                        help="a restore rate high enough that the bucket never binds")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also run ours once under tracemalloc at both sizes (slower; not used for times)")
    return parser


def measure(args: argparse.Namespace, kinds: list[str], scratch: Path, log: Path) -> dict[str, Any]:
    """Runs every measurement; returns the raw worker reports by database kind."""
    raw: dict[str, Any] = {kind: {"ours": {}, "floor": {}, "tracemalloc": {}, "incremental": {}} for kind in kinds}
    print("priming a Prefect home (server database migrated once) ...", file=sys.stderr)
    template = prefect_home_template(scratch, log)

    def step(kind: str, role: str, spec: dict[str, Any], shop: Any) -> dict[str, Any]:
        started = time.perf_counter()
        print(f"  {LABELS[kind]:<10} {role:<6} {json.dumps(spec)} ...", end="", file=sys.stderr, flush=True)
        with fresh_database(kind, scratch) as url:
            report = run_worker(role, spec, shop, url, scratch, log, template)
        print(f" {report['times']['run']:.1f} s (worker {time.perf_counter() - started:.0f} s)",
              file=sys.stderr, flush=True)
        return report

    for size in sorted({args.small, args.orders}):
        print(f"sandbox: {size} orders, restore rate {args.backfill_restore_rate:g}", file=sys.stderr)
        with shopify_sandbox(size, args.seed, args.backfill_restore_rate, log) as shop:
            for kind in kinds:
                floors, ours = raw[kind]["floor"].setdefault(size, []), raw[kind]["ours"].setdefault(size, [])
                for _ in range(args.repeat):
                    floors.append(step(kind, "floor", {"orders": size}, shop))
                    ours.append(step(kind, "ours", {"orders": size}, shop))
                if args.tracemalloc:
                    raw[kind]["tracemalloc"][size] = step(kind, "ours", {"orders": size, "tracemalloc": True}, shop)
                if size == args.small and args.naive:
                    raw[kind]["naive"] = step(kind, "naive", {"orders": args.naive}, shop)
    for name, rate in (("standard", args.standard_restore_rate), ("unthrottled", args.unthrottled_restore_rate)):
        print(f"sandbox: {args.incremental} orders, restore rate {rate:g}", file=sys.stderr)
        with shopify_sandbox(args.incremental, args.seed, rate, log) as shop:
            for kind in kinds:
                report = step(kind, "ours", {"orders": args.incremental, "incremental": True}, shop)
                raw[kind]["incremental"][name] = report | {"restore_rate": rate}
    return raw


def _median(reports: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r["times"][key] if key in r["times"] else r[key] for r in reports)


def _spread(reports: list[dict[str, Any]]) -> tuple[float, float]:
    runs = [r["times"]["run"] for r in reports]
    return min(runs), max(runs)


def summarize(args: argparse.Namespace, raw: dict[str, Any]) -> dict[str, Any]:
    """Medians, ratios and rates from the raw reports, per database kind."""
    out: dict[str, Any] = {}
    big, small = args.orders, args.small
    for kind, runs in raw.items():
        ours, floor = runs["ours"][big], runs["floor"][big]
        small_ours, small_floor = runs["ours"][small], runs["floor"][small]
        row: dict[str, Any] = {
            "orders": big,
            "repeat": args.repeat,
            "floor_s": _median(floor, "run"),
            "floor_s_range": _spread(floor),
            "floor_phases_s": {k: statistics.median(r["times"][k] for r in floor)
                               for k in ("export", "download", "parse", "insert")},
            "ours_s": _median(ours, "run"),
            "ours_s_range": _spread(ours),
            "ours_task_s": {k: statistics.median(r["task_s"].get(k, 0.0) for r in ours)
                            for k in ("wait-for-order-export", "download-order-export", "check-orders",
                                      "load-intake-context", "store-orders")},
            "ours_small_s": _median(small_ours, "run"),
            "floor_small_s": _median(small_floor, "run"),
            "warm_up_s": _median(ours, "warm_up"),
            "peak_rss_mb": _median(ours, "peak_rss_mb"),
            "peak_rss_small_mb": _median(small_ours, "peak_rss_mb"),
            "rss_after_warm_up_mb": _median(ours, "rss_after_warm_up_mb"),
            "floor_peak_rss_mb": _median(floor, "peak_rss_mb"),
            "server_peak_rss_mb": _median(ours, "server_peak_rss_mb") if ours[0].get("server_peak_rss_mb") else None,
            "cpu_s": {"ours": statistics.median(r["cpu_s"]["self"] for r in ours),
                      "ours_prefect_server": statistics.median(r["cpu_s"]["server"] or 0 for r in ours),
                      "floor": statistics.median(r["cpu_s"]["self"] for r in floor)},
            "summary": ours[0]["summary"],
        }
        row["flow_over_floor"] = row["ours_s"] / row["floor_s"]
        row["flow_over_floor_small"] = row["ours_small_s"] / row["floor_small_s"]
        row["ours_orders_per_s"] = big / row["ours_s"]
        row["floor_orders_per_s"] = big / row["floor_s"]
        row["ours_ms_per_order"] = 1000.0 * row["ours_s"] / big
        row["rss_ratio"] = row["peak_rss_mb"] / row["peak_rss_small_mb"]
        if "naive" in runs:
            naive = runs["naive"]
            row["naive_orders"] = naive["orders"]
            row["naive_s"] = naive["times"]["run"]
            row["naive_ms_per_order"] = 1000.0 * naive["times"]["run"] / naive["orders"]
            row["naive_over_ours"] = row["naive_ms_per_order"] / row["ours_ms_per_order"]
        if runs["tracemalloc"]:
            row["tracemalloc_peak_mb"] = runs["tracemalloc"][big]["tracemalloc_peak_mb"]
            row["tracemalloc_peak_small_mb"] = runs["tracemalloc"][small]["tracemalloc_peak_mb"]
            row["tracemalloc_ratio"] = row["tracemalloc_peak_mb"] / row["tracemalloc_peak_small_mb"]
        for name, report in runs["incremental"].items():
            row[f"incremental_{name}_orders_per_s"] = report["summary"]["fetched"] / report["times"]["run"]
            row[f"incremental_{name}_s"] = report["times"]["run"]
        out[kind] = row
    return out


def _check(value: float, target: float, at_most: bool) -> str:
    ok = value <= target if at_most else value >= target
    return "met" if ok else "MISSED"


def render(args: argparse.Namespace, summary: dict[str, Any]) -> str:
    """One plain-text table per database kind."""
    big, small = args.orders, args.small
    blocks = []
    for kind, s in summary.items():
        lo, hi = s["floor_s_range"]
        olo, ohi = s["ours_s_range"]
        fp, tp = s["floor_phases_s"], s["ours_task_s"]
        rows = [
            (f"floor: httpx + json + Core insert, {big:,} orders", f"{s['floor_s']:.1f} s",
             f"{s['floor_orders_per_s']:,.0f} orders/s", f"runs {lo:.1f}-{hi:.1f} s"),
            ("  export wait / download / parse / insert", f"{fp['export']:.1f} s",
             f"{fp['download']:.1f} / {fp['parse']:.1f} / {fp['insert']:.1f} s", ""),
            (f"ours: order-intake flow, {big:,} orders", f"{s['ours_s']:.1f} s",
             f"{s['ours_orders_per_s']:,.0f} orders/s", f"runs {olo:.1f}-{ohi:.1f} s"),
            ("  export wait / download / check / context / store", f"{tp['wait-for-order-export']:.1f} s",
             f"{tp['download-order-export']:.1f} / {tp['check-orders']:.1f} / "
             f"{tp['load-intake-context']:.1f} / {tp['store-orders']:.1f} s", ""),
            (f"ours: order-intake flow, {small:,} orders", f"{s['ours_small_s']:.1f} s",
             f"{small / s['ours_small_s']:,.0f} orders/s", f"floor {s['floor_small_s']:.1f} s"),
        ]
        if "naive_s" in s:
            rows.append((f"naive peer: a task per order, {s['naive_orders']:,} orders", f"{s['naive_s']:.1f} s",
                         f"{s['naive_orders'] / s['naive_s']:,.1f} orders/s",
                         f"{s['naive_ms_per_order']:.1f} ms/order vs ours {s['ours_ms_per_order']:.2f}"))
        for name, label in (("standard", f"{args.standard_restore_rate:g} points/s (Standard)"),
                            ("unthrottled", f"{args.unthrottled_restore_rate:g} points/s (unthrottled)")):
            if f"incremental_{name}_s" in s:
                rows.append((f"incremental, {args.incremental:,} orders at {label}",
                             f"{s[f'incremental_{name}_s']:.1f} s",
                             f"{s[f'incremental_{name}_orders_per_s']:,.1f} orders/s", ""))
        rows.append(("warm-up (ephemeral server, imports), not timed above", f"{s['warm_up_s']:.1f} s", "", ""))
        rows.append((f"peak RSS of ours at {big:,} / {small:,}", f"{s['peak_rss_mb']:.0f} MB",
                     f"{s['peak_rss_small_mb']:.0f} MB", f"after warm-up {s['rss_after_warm_up_mb']:.0f} MB"))
        if "tracemalloc_peak_mb" in s:
            rows.append((f"tracemalloc peak of ours at {big:,} / {small:,}", f"{s['tracemalloc_peak_mb']:.0f} MB",
                         f"{s['tracemalloc_peak_small_mb']:.0f} MB", f"ratio {s['tracemalloc_ratio']:.2f}"))
        width = max(len(r[0]) for r in rows)
        lines = [f"{LABELS[kind]} (medians of {s['repeat']} runs)", "-" * (width + 70)]
        lines += [f"{a:<{width}}  {b:>10}  {c:>28}  {d}" for a, b, c, d in rows]
        lines.append("ratios:")
        lines.append(f"  flow / floor at {big:,}: {s['flow_over_floor']:.2f}  (target <= {TARGET_FLOW_OVER_FLOOR:g}: "
                     f"{_check(s['flow_over_floor'], TARGET_FLOW_OVER_FLOOR, True)}; at {small:,}: "
                     f"{s['flow_over_floor_small']:.2f})")
        if "naive_over_ours" in s:
            lines.append(f"  naive per order / ours per order: {s['naive_over_ours']:.0f}  (target >= "
                         f"{TARGET_NAIVE_OVER_OURS:g}: {_check(s['naive_over_ours'], TARGET_NAIVE_OVER_OURS, False)})")
        lines.append(f"  peak RSS {big:,} / {small:,}: {s['rss_ratio']:.2f}  (target <= {TARGET_RSS_GROWTH:g}: "
                     f"{_check(s['rss_ratio'], TARGET_RSS_GROWTH, True)})")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    unknown = set(kinds) - set(LABELS)
    if unknown:
        raise SystemExit(f"unknown --db kind(s): {', '.join(sorted(unknown))}")
    if args.naive > args.small:
        raise SystemExit("--naive must not exceed --small (the naive peer reads the small store)")
    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    if "postgresql" in kinds and not postgres_available():
        raise SystemExit("PostgreSQL at 127.0.0.1:5432 does not answer (set CLERK_BENCH_POSTGRES)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log = RESULTS / f"backfill-{stamp}.log"
    scratch = Path(tempfile.mkdtemp(prefix="clerk-bench-"))
    print(f"worker and sandbox logs: {log}", file=sys.stderr)
    try:
        raw = measure(args, kinds, scratch, log)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary = summarize(args, raw)
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    path = RESULTS / f"backfill-{stamp}.json"
    path.write_text(json.dumps({"args": vars(args), "machine": machine, "summary": summary, "raw": raw},
                               indent=2, default=str))
    print(render(args, summary))
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
