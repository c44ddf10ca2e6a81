"""The `clerk` command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deployments.runs import quiet_prefect_defaults


def _settings():  # type: ignore[no-untyped-def]
    from integrations.settings import cached_settings

    return cached_settings()


def _cmd_run(args: argparse.Namespace) -> int:
    from deployments.runs import parse_params, run_flow, stdout_to_stderr

    with stdout_to_stderr() as stdout:
        try:
            summary, ok = run_flow(args.flow, parse_params(args.param or []))
        except KeyError as exc:
            print(f"error: {exc.args[0]}", file=sys.stderr)
            return 2
    if args.json:
        stdout.write(json.dumps(summary, default=str) + "\n")
    else:
        print(json.dumps(summary, indent=2, default=str))
    if not ok:
        print(f"error: {summary['flow']} failed: {summary.get('error')}", file=sys.stderr)
    return 0 if ok else 1


def _cmd_db(args: argparse.Namespace) -> int:
    from models.db import upgrade

    upgrade(_settings().database_url)
    print("database is up to date", file=sys.stderr)
    return 0


def _cmd_import_orders(args: argparse.Namespace) -> int:
    from deployments.runs import run_flow, stdout_to_stderr
    from integrations.marketplace_csv import MappingError, OrderFile, OrderFileError, load_mapping

    if not args.channel:
        print("error: import orders needs --channel NAME (e.g. amazon)", file=sys.stderr)
        return 2
    try:
        source = OrderFile(Path(args.file), args.channel, load_mapping(args.mapping))
        # Read it all now: a file that cannot be read is refused before anything lands.
        print(f"{args.file}: {len(source.payloads)} orders", file=sys.stderr)
    except (MappingError, OrderFileError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, column in source.missing_columns():
        print(f"warning: {args.file} has no column {column!r} ({name}): read as blank", file=sys.stderr)
    with stdout_to_stderr() as stdout:
        summary, ok = run_flow("import-orders", {"path": args.file, "channel": args.channel, "mapping": args.mapping})
    for problem in summary.get("problems", []):
        print(f"{args.file}:{problem['line']}: {problem['reason']}: {problem['detail']}", file=sys.stderr)
    stdout.write(json.dumps(summary, default=str, indent=None if args.json else 2) + "\n")
    if not ok:
        print(f"error: {summary['flow']} failed: {summary.get('error')}", file=sys.stderr)
    return 0 if ok else 1


def _cmd_import_count(args: argparse.Namespace) -> int:
    from deployments.importing import CountRefused, import_count
    from domain.catalog import RowError
    from models.db import upgrade

    url = _settings().database_url
    upgrade(url)
    try:
        report = import_count(url, Path(args.file), args.by)
    except CountRefused as exc:
        for line, why in exc.problems:
            print(f"{args.file}:{line}: {why}", file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (RowError, FileNotFoundError) as exc:
        print(f"error: {exc}; nothing booked", file=sys.stderr)
        return 2
    for row in report["variances"]:
        if row["variance"]:
            value = f" ({row['value']} at cost)" if row["value"] is not None else ""
            print(f"{row['sku']} @ {row['location']}: expected {row['expected']}, counted {row['counted']}, "
                  f"variance {row['variance']:+d}{value}", file=sys.stderr)
    print(json.dumps(report))
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    if args.entity == "orders":
        return _cmd_import_orders(args)
    if args.entity == "count":
        return _cmd_import_count(args)
    from deployments.importing import import_catalog, import_stock
    from domain.catalog import RowError
    from models.db import upgrade

    url = _settings().database_url
    upgrade(url)
    try:
        report = (import_catalog if args.entity == "catalog" else import_stock)(url, Path(args.file))
    except (RowError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line, why in report.rejected:
        print(f"{args.file}:{line}: {why}", file=sys.stderr)
    print(json.dumps({"imported": report.landed, "rejected": len(report.rejected), **report.detail}))
    return 1 if report.rejected else 0


def _cmd_export(args: argparse.Namespace) -> int:
    from deployments.writers import write_records
    from models.db import unit_of_work, upgrade
    from models.exports import EXPORTS

    if args.entity not in EXPORTS:
        print(f"error: unknown entity {args.entity!r}; known: {', '.join(sorted(EXPORTS))}", file=sys.stderr)
        return 2
    url = _settings().database_url
    upgrade(url)
    output = Path(args.output) if args.output else None
    if output is None and args.format == "xlsx":
        output = Path(f"{args.entity}.xlsx")
    with unit_of_work(url) as session:
        count = write_records(EXPORTS[args.entity](session, include_pii=args.include_pii), args.format, output)
    print(f"{count} {args.entity} records" + (f" written to {output}" if output else ""), file=sys.stderr)
    return 0


def _cmd_approvals(args: argparse.Namespace) -> int:
    from deployments.purchasing import list_approvals
    from models.db import upgrade

    url = _settings().database_url
    upgrade(url)
    waiting = list_approvals(url)
    if args.json:
        print(json.dumps(waiting))
    else:
        for item in waiting:
            print(f"{item['id']:>6}  {item['kind']:<16} {item['subject']:<28} {item['amount']:>12} {item['currency']}  since {item['since']}")
        print(f"{len(waiting)} waiting", file=sys.stderr)
    return 0


def _cmd_approve(args: argparse.Namespace) -> int:
    from deployments.purchasing import approve
    from models.db import upgrade
    from models.purchasing_store import DecisionError

    url = _settings().database_url
    upgrade(url)
    try:
        decision, warning = approve(url, args.id, args.by, not args.deny, args.note)
    except DecisionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    print(json.dumps(decision))
    return 0


def _cmd_receive(args: argparse.Namespace) -> int:
    from deployments.purchasing import DeliveryFileError, receive
    from domain.purchasing import ReceiptError
    from models.db import upgrade

    url = _settings().database_url
    upgrade(url)
    try:
        report = receive(url, args.number, Path(args.file), args.by)
    except (DeliveryFileError, ReceiptError, FileNotFoundError) as exc:
        print(f"error: {exc}; nothing booked", file=sys.stderr)
        return 2
    for sku, units in report["over"].items():
        print(f"over-delivered: {sku} +{units}", file=sys.stderr)
    for sku, units in report["under"].items():
        print(f"still to come: {sku} {units}", file=sys.stderr)
    print(json.dumps(report))
    return 0


def _cmd_pack(args: argparse.Namespace) -> int:
    from deployments.shipping import pack, read_scans
    from models.db import upgrade
    from models.shipping_store import OrderLookupError

    url = _settings().database_url
    upgrade(url)
    try:
        scans = list(args.scan or []) + (read_scans(Path(args.scans)) if args.scans else [])
        if not scans:
            print("error: give at least one --scan SKU (or --scans FILE.csv)", file=sys.stderr)
            return 2
        report = pack(url, args.order, args.channel, scans, args.by)
    except (OrderLookupError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not report["matches"]:
        for sku, units in report["missing"].items():
            print(f"missing: {sku} x{units}", file=sys.stderr)
        for sku, units in report["extra"].items():
            print(f"not on the order: {sku} x{units}", file=sys.stderr)
        print(f"{report['order']} held: packing_mismatch; no label until a packing check matches", file=sys.stderr)
    print(json.dumps(report))
    return 0 if report["matches"] else 1


def _cmd_return_create(args: argparse.Namespace) -> int:
    from deployments.returns import create_return, parse_lines
    from domain.returns import ReturnInputError
    from models.db import upgrade
    from models.shipping_store import OrderLookupError

    url = _settings().database_url
    upgrade(url)
    try:
        opened = create_return(url, args.order, args.channel, parse_lines(args.line or []), args.reason,
                               args.resolution, args.by)
    except (OrderLookupError, ReturnInputError) as exc:
        print(f"error: {exc}; no return opened", file=sys.stderr)
        return 2
    print(opened["rma"])
    print(json.dumps(opened), file=sys.stderr)
    return 0


def _cmd_return_receive(args: argparse.Namespace) -> int:
    from deployments.returns import receive_return
    from models.db import upgrade
    from models.returns_store import ReturnLookupError

    url = _settings().database_url
    upgrade(url)
    try:
        report = receive_return(url, args.rma, args.condition, args.by)
    except ReturnLookupError as exc:
        print(f"error: {exc}; nothing booked", file=sys.stderr)
        return 2
    print(json.dumps(report))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from deployments.serve import serve_all

    serve_all()
    return 0


def _cmd_webhooks(args: argparse.Namespace) -> int:
    from deployments.webhooks import serve_webhooks

    return serve_webhooks(args.host, args.port)


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from deployments.demo import serve_sandboxes

    serve_sandboxes(orders=args.orders, seed=args.seed, fault_rate=args.fault_rate, port=args.port)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from deployments.demo import run_demo

    return run_demo(Path(args.workdir), orders=args.orders, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clerk", description="An e-commerce clerk's back office, as Prefect flows.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="a simulated day of every flow against the sandboxes")
    demo.add_argument("--workdir", default="clerk-demo")
    demo.add_argument("--orders", type=int, default=3000)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(handler=_cmd_demo)

    sandbox = commands.add_parser(
        "sandbox", help="serve the Shopify, WooCommerce, Magento and Slack sandboxes on loopback, one shared store"
    )
    sandbox.add_argument("--orders", type=int, default=3000, help="orders in the store, all channels together")
    sandbox.add_argument("--seed", type=int, default=7)
    sandbox.add_argument("--fault-rate", type=float, default=0.0)
    sandbox.add_argument("--port", type=int, default=0, help="the first of four consecutive ports; 0 picks free ones")
    sandbox.set_defaults(handler=_cmd_sandbox)

    db = commands.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"])
    db.set_defaults(handler=_cmd_db)

    run = commands.add_parser("run", help="run one flow now")
    run.add_argument("flow")
    run.add_argument("--param", action="append", metavar="KEY=VALUE")
    run.add_argument("--json", action="store_true", help="print exactly one JSON summary on stdout")
    run.set_defaults(handler=_cmd_run)

    export = commands.add_parser("export", help="write records")
    export.add_argument("entity")
    export.add_argument("--format", choices=["jsonl", "csv", "xlsx"], default="jsonl")
    export.add_argument("--output")
    export.add_argument("--include-pii", action="store_true")
    export.set_defaults(handler=_cmd_export)

    imports = commands.add_parser("import", help="import a CSV file")
    imports.add_argument("entity", choices=["catalog", "stock", "orders", "count"])
    imports.add_argument("file")
    imports.add_argument("--channel", help="orders: the channel they belong to, e.g. amazon")
    imports.add_argument("--mapping", help="orders: a bundled mapping (amazon) or a mapping TOML file")
    imports.add_argument("--json", action="store_true", help="orders: print exactly one JSON summary on stdout")
    imports.add_argument("--by", default="clerk", help="count: who counted (goes to the ledger)")
    imports.set_defaults(handler=_cmd_import)

    approvals = commands.add_parser("approvals", help="list what waits for a person")
    approvals.add_argument("--json", action="store_true", help="print one JSON array on stdout")
    approvals.set_defaults(handler=_cmd_approvals)

    decide = commands.add_parser("approve", help="approve (or --deny) one waiting item")
    decide.add_argument("id", type=int)
    decide.add_argument("--by", required=True, help="who decides (goes to the audit log)")
    decide.add_argument("--deny", action="store_true")
    decide.add_argument("--note")
    decide.set_defaults(handler=_cmd_approve)

    receive = commands.add_parser("receive", help="book a supplier delivery against a purchase order")
    receive.add_argument("number", help="the purchase order number, e.g. PO-20261126-ACME")
    receive.add_argument("file", help="CSV with columns sku,quantity")
    receive.add_argument("--by", default="clerk", help="who booked it (goes to the ledger and audit log)")
    receive.set_defaults(handler=_cmd_receive)

    packing = commands.add_parser("pack", help="record what was packed for an order; a mismatch blocks its label")
    packing.add_argument("order", help="the order number, e.g. #1001")
    packing.add_argument("--channel", help="the order's channel, when the number is on several")
    packing.add_argument("--scan", action="append", metavar="SKU", help="one scanned unit (repeat)")
    packing.add_argument("--scans", metavar="FILE.csv", help="scans as CSV: sku[,quantity]")
    packing.add_argument("--by", default="packer", help="who packed (kept with the check)")
    packing.set_defaults(handler=_cmd_pack)

    returns = commands.add_parser("return", help="open a return, or book its goods when they come back")
    steps = returns.add_subparsers(dest="step", required=True)
    create = steps.add_parser("create", help="open a return; prints its RMA number")
    create.add_argument("order", help="the order number, e.g. #1001")
    create.add_argument("--channel", help="the order's channel, when the number is on several")
    create.add_argument("--line", action="append", metavar="SKU:QTY", help="units coming back (repeat)")
    create.add_argument("--reason", required=True, help="damaged, defective, wrong_item, not_as_described, "
                                                         "changed_mind, late_delivery or other")
    create.add_argument("--resolution", default="refund", choices=["refund", "exchange", "store_credit"])
    create.add_argument("--by", default="clerk", help="who opened it (kept in the audit log)")
    create.set_defaults(handler=_cmd_return_create)
    receipt = steps.add_parser("receive", help="book the goods of a return")
    receipt.add_argument("rma")
    receipt.add_argument("--condition", required=True, choices=["resellable", "damaged"])
    receipt.add_argument("--by", default="clerk", help="who checked the goods (kept in the audit log)")
    receipt.set_defaults(handler=_cmd_return_receive)

    serve = commands.add_parser("serve", help="serve every deployment with its schedule")
    serve.set_defaults(handler=_cmd_serve)

    webhooks = commands.add_parser("webhooks", help="receive Shopify and WooCommerce webhooks and start order intake")
    webhooks.add_argument("--host", default="127.0.0.1")
    webhooks.add_argument("--port", type=int, default=8787)
    webhooks.set_defaults(handler=_cmd_webhooks)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_prefect_defaults()
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
