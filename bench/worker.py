"""One measurement per process: `python -m bench.worker ROLE SPEC_JSON` prints one JSON line.

Roles:
    ours: the real `order-intake` flow (deployments.runs.run_flow), after a warm-up.
    floor: the same bulk export with plain httpx, parsed, bulk-inserted with SQLAlchemy Core.
    naive: one Prefect task per order doing what Clerk does for one order.

Settings come from CLERK_* variables set by `bench.harness.run_worker`. Only standard
output carries the report; logs go to standard error.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import sys
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bench.harness import (
    CHANNEL,
    Stopwatch,
    current_rss_mb,
    peak_rss_mb,
    process_cpu_seconds,
    process_peak_rss_mb,
)

EARLY = datetime(2000, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------------- shared steps


@contextlib.contextmanager
def heartbeats_off() -> Iterator[None]:
    """No flow heartbeat thread (each sync flow would wait up to 1 s for it at exit)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def warm_up() -> None:
    """Starts Prefect's ephemeral server with a trivial flow; imports GX and Clerk's flow and Shopify client."""
    from prefect import flow

    @flow(name="bench-warm-up")
    def trivial() -> int:
        return 1

    trivial()
    import great_expectations  # noqa: F401  (~3 s of imports, paid once per process)

    import flows.order_intake  # noqa: F401  (imports, like the floor's, are not its work)
    import integrations.shopify.client  # noqa: F401


def server_pid() -> int | None:
    """The ephemeral Prefect server subprocess this process started, if any."""
    from prefect.server.api.server import SubprocessASGIServer

    process = SubprocessASGIServer._instances.get(None)
    if process is None or process.server_process is None:
        return None
    return process.server_process.pid


def cpu_seconds() -> dict[str, float | None]:
    """CPU used so far by this process and by its ephemeral Prefect server."""
    pid = server_pid()
    return {"self": process_cpu_seconds(), "server": process_cpu_seconds(pid) if pid else None}


def cpu_used(before: dict[str, float | None], after: dict[str, float | None]) -> dict[str, float | None]:
    return {k: (after[k] - before[k]) if after[k] is not None and before[k] is not None else None for k in after}


class _CsvStore:
    """The sandbox's catalog and stock CSVs in the shape `tests.flows.state` seeds from."""

    def __init__(self, shop_url: str):
        import httpx

        self._catalog = httpx.get(f"{shop_url}/sandbox/catalog.csv", timeout=60).text
        self._stock = httpx.get(f"{shop_url}/sandbox/stock.csv", timeout=60).text

    def catalog_rows(self) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self._catalog)))

    def stock_rows(self) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self._stock)))


def prepare_database(watermark: bool) -> None:
    """Migrates, imports catalog and stock as the flow tests do, optionally writes an early watermark."""
    from integrations.settings import cached_settings
    from models.db import unit_of_work, upgrade
    from models.intake import set_watermark
    from tests.flows.state import seed_catalog_and_stock

    settings = cached_settings()
    upgrade(settings.database_url)
    seed_catalog_and_stock(settings.database_url, _CsvStore(settings.shopify_shop_url or ""))
    if watermark:  # forces the paginated path: everything updated since 2000
        with unit_of_work(settings.database_url) as session:
            set_watermark(session, CHANNEL, EARLY, {})


def table_counts() -> dict[str, int]:
    """Rows in the tables both ours and the floor fill (a sanity check, after timing)."""
    from sqlalchemy import func, select

    from integrations.settings import cached_settings
    from models.customers import Customer, CustomerAccount
    from models.db import unit_of_work
    from models.orders import Order, OrderLine

    with unit_of_work(cached_settings().database_url) as session:
        return {table.__tablename__: session.scalar(select(func.count()).select_from(table)) or 0
                for table in (Order, OrderLine, Customer, CustomerAccount)}


def task_phases(flow_name: str) -> dict[str, float]:
    """Seconds spent in each kind of task of this process's last run of `flow_name` (Prefect's API)."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
                                     sort=FlowRunSort.START_TIME_DESC, limit=1)
        if not runs:
            return {}
        tasks, page = [], 200  # the API's largest page
        while len(tasks) % page == 0:
            more = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[runs[0].id])),
                                         limit=page, offset=len(tasks))
            tasks += more
            if not more:
                break
    phases: dict[str, float] = {}
    for run in tasks:
        if run.start_time and run.end_time:
            name = run.name.rsplit("-", 1)[0]
            phases[name] = phases.get(name, 0.0) + (run.end_time - run.start_time).total_seconds()
    return dict(sorted(phases.items(), key=lambda item: -item[1]))


# ---------------------------------------------------------------------- ours


def ours(spec: dict[str, Any]) -> dict[str, Any]:
    """The real order-intake flow; only `run_flow` is timed."""
    from deployments.runs import run_flow
    from integrations import wiring

    watch = Stopwatch()
    with heartbeats_off():
        with watch.time("warm_up"):
            warm_up()
        with watch.time("setup"):
            prepare_database(watermark=spec.get("incremental", False))
            wiring.reset()
        rss_before = current_rss_mb()
        if spec.get("tracemalloc"):
            tracemalloc.start()
        profiler = None
        if spec.get("profile"):  # for finding a cause, never for the reported numbers
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        cpu_before = cpu_seconds()
        with watch.time("run"):
            summary, completed = run_flow("order-intake", {})
        cpu = cpu_used(cpu_before, cpu_seconds())
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(spec["profile"])
        traced = tracemalloc.get_traced_memory()[1] / 2**20 if tracemalloc.is_tracing() else None
        tracemalloc.stop()
    if not completed:
        raise RuntimeError(f"order-intake did not complete: {summary}")
    return {
        "role": "ours", "times": watch.times, "summary": summary, "rows": table_counts(),
        "rss_after_warm_up_mb": rss_before, "peak_rss_mb": peak_rss_mb(),
        "tracemalloc_peak_mb": traced, "cpu_s": cpu, "task_s": task_phases("order-intake"),
        "server_peak_rss_mb": process_peak_rss_mb(pid) if (pid := server_pid()) else None,
    }


# ---------------------------------------------------------------------- floor


def floor(spec: dict[str, Any]) -> dict[str, Any]:
    """The least work that lands the same export's orders, lines and customers; all of it timed.

    One parse per line, rows built as the file streams by, ids numbered here (the
    database is fresh), and one Core executemany per table in one transaction, on an
    engine with Clerk's connection settings (SQLite: WAL, foreign keys enforced).
    """
    import os
    import tempfile

    import httpx
    from sqlalchemy import insert

    from integrations.settings import cached_settings
    from integrations.shopify.queries import BULK_ORDERS_QUERY, BULK_RUN, BULK_STATUS
    from models.customers import Customer, CustomerAccount
    from models.db import engine_for, upgrade
    from models.orders import Order, OrderLine

    settings = cached_settings()
    watch = Stopwatch()
    with watch.time("setup"):  # the same schema Clerk writes into, untimed like Clerk's seeding
        upgrade(settings.database_url)
    engine = engine_for(settings.database_url)  # Clerk's connection settings: SQLite WAL, foreign keys on
    endpoint = f"{settings.shopify_shop_url}/admin/api/{settings.shopify_api_version}/graphql.json"
    headers = {"X-Shopify-Access-Token": settings.shopify_access_token or ""}
    cpu_before = process_cpu_seconds()
    with watch.time("run"):
        with httpx.Client(timeout=120) as http:
            with watch.time("export"):
                started = http.post(endpoint, headers=headers,
                                    json={"query": BULK_RUN, "variables": {"query": BULK_ORDERS_QUERY}}).json()
                job = started["data"]["bulkOperationRunQuery"]["bulkOperation"]["id"]
                while True:
                    status = http.post(endpoint, headers=headers,
                                       json={"query": BULK_STATUS, "variables": {"id": job}}).json()
                    operation = status["data"]["bulkOperation"]
                    if operation["status"] == "COMPLETED":
                        break
                    if operation["status"] not in ("CREATED", "RUNNING"):
                        raise RuntimeError(f"bulk operation ended {operation['status']}")
                    time.sleep(1.0)
            handle, path = tempfile.mkstemp(suffix=".jsonl")
            with watch.time("download"), os.fdopen(handle, "wb") as out, \
                    http.stream("GET", operation["url"]) as response:
                response.raise_for_status()
                for chunk in response.iter_bytes():
                    out.write(chunk)
        with watch.time("parse"):
            rows = _FloorRows(datetime.now(UTC))
            with open(path, "rb") as lines_in:
                for raw in lines_in:
                    rows.add(raw)
            os.unlink(path)
            orders, lines, customers, accounts = rows.finish()
        with watch.time("insert"), engine.begin() as conn:
            conn.execute(insert(Customer.__table__), customers)
            conn.execute(insert(CustomerAccount.__table__), accounts)
            conn.execute(insert(Order.__table__), orders)
            if lines:
                conn.execute(insert(OrderLine.__table__), lines)
    cpu = {"self": (process_cpu_seconds() or 0) - (cpu_before or 0)}
    engine.dispose()
    return {"role": "floor", "times": watch.times, "cpu_s": cpu, "orders": len(orders), "skipped_unreadable": rows.skipped,
            "rows": table_counts(), "peak_rss_mb": peak_rss_mb()}


class _FloorRows:
    """Order, line and customer rows with plausible values, read the obvious way, one line at a time."""

    def __init__(self, now: datetime):
        self.now = now
        self.orders: list[dict[str, Any]] = []
        self.order_ids: dict[str, int] = {}
        self.customers: dict[str, int] = {}
        self.lines: list[tuple[str, dict[str, Any]]] = []
        self.unreadable: set[str] = set()
        self.skipped = 0

    @staticmethod
    def _amount(node: dict[str, Any] | None) -> Decimal:
        return Decimal(node["shopMoney"]["amount"]) if node else Decimal(0)

    def add(self, raw: bytes) -> None:
        record = json.loads(raw)
        parent = record.get("__parentId")
        try:
            if parent is None:
                self._order(record, raw)
            else:
                self.lines.append((parent, {
                    "sku": record.get("sku") or None, "title": record.get("title") or "",
                    "quantity": int(record["quantity"]), "unit_price": self._amount(record["originalUnitPriceSet"]),
                    "discount": self._amount(record.get("totalDiscountSet")),
                }))
        except (InvalidOperation, TypeError, KeyError, ValueError):
            self.unreadable.add(parent or record.get("id"))

    def _order(self, record: dict[str, Any], raw: bytes) -> None:
        if record.get("cancelledAt"):
            lifecycle = "cancelled"
        elif record.get("displayFulfillmentStatus") == "FULFILLED":
            lifecycle = "fulfilled"
        else:
            lifecycle = "closed" if record.get("closed") else "open"
        address = record.get("shippingAddress") or {}
        customer = (record.get("customer") or {}).get("id")
        row = {
            "id": len(self.orders) + 1, "channel": CHANNEL, "external_id": record["id"], "number": record["name"],
            "status": "accepted" if lifecycle == "open" else lifecycle.replace("closed", "fulfilled"),
            "lifecycle": lifecycle, "currency": record["currencyCode"],
            "total": self._amount(record["totalPriceSet"]), "shipping": self._amount(record.get("totalShippingPriceSet")),
            "tax": self._amount(record.get("totalTaxSet")), "discounts": self._amount(record.get("totalDiscountsSet")),
            "taxes_included": bool(record.get("taxesIncluded")),
            "requires_shipping": bool(record.get("requiresShipping", True)),
            "risk": ((record.get("risk") or {}).get("recommendation") or "none").lower()[:20],
            "ship_to_country": address.get("countryCodeV2"),
            "customer_id": self.customers.setdefault(customer, len(self.customers) + 1) if customer else None,
            "placed_at": datetime.fromisoformat(record.get("processedAt") or record["createdAt"]),
            "upstream_updated_at": datetime.fromisoformat(record["updatedAt"]),
            "fingerprint": hashlib.sha256(raw).hexdigest(), "created_at": self.now, "updated_at": self.now,
        }
        self.order_ids[record["id"]] = row["id"]
        self.orders.append(row)

    def finish(self) -> tuple[list[dict[str, Any]], ...]:
        """Orders, lines, customers and their accounts.

        Drops orders with an unreadable field (and their lines); numbers lines within each order.
        """
        orders = [row for row in self.orders if row["external_id"] not in self.unreadable]
        self.skipped = len(self.orders) - len(orders)
        positions: dict[str, int] = {}
        lines = []
        for parent, line in self.lines:
            order_id = self.order_ids.get(parent)
            if order_id is None or parent in self.unreadable:
                continue
            position = positions[parent] = positions.get(parent, -1) + 1
            lines.append(line | {"order_id": order_id, "position": position})
        customers = [{"id": number, "key": uuid.uuid4().hex, "created_at": self.now} for number in self.customers.values()]
        accounts = [{"channel": CHANNEL, "external_id": key, "customer_id": number}
                    for key, number in self.customers.items()]
        return orders, lines, customers, accounts


# ---------------------------------------------------------------------- naive peer


def naive(spec: dict[str, Any]) -> dict[str, Any]:
    """One Prefect task per order, sequentially, over the first `orders` payloads of the export."""
    import os
    import tempfile
    from pathlib import Path

    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    from domain.intake import decide_batch
    from domain.orders import PriceTolerance
    from integrations import wiring
    from integrations.settings import cached_settings
    from tasks.orders import load_intake_context, store_orders
    from tasks.quality import check_orders

    wanted = int(spec["orders"])
    watch = Stopwatch()
    with heartbeats_off():
        with watch.time("warm_up"):
            warm_up()
        with watch.time("setup"):
            prepare_database(watermark=False)
            wiring.reset()
            source = wiring.order_source(CHANNEL)
            status = source.start_export()
            while status.state != "completed":
                time.sleep(0.5)
                status = source.export_status(status.job_id)
            handle, name = tempfile.mkstemp(suffix=".jsonl")
            os.close(handle)
            source.download_export(status.url, Path(name))
            payloads = next(iter(source.read_export(Path(name), wanted)))
            os.unlink(name)
        intake = cached_settings().toml.intake
        tolerance = PriceTolerance(intake.price_tolerance_absolute, intake.price_tolerance_relative)

        @task(name="intake-one-order", cache_policy=NO_CACHE)
        def intake_one(payload: dict[str, Any]) -> str:
            """Parse, quality suite, decide and store for a single order, as Clerk does per batch."""
            checked = check_orders.fn(CHANNEL, [payload])
            context = load_intake_context.fn(CHANNEL, checked.orders)
            known = {external_id: stored for external_id, (_, stored) in context.known.items()}
            decisions = decide_batch(checked.orders, known, context.catalog, context.available, tolerance)
            store_orders.fn(CHANNEL, decisions, checked.rejections, context.known, None, {})
            return decisions[0].status.value if decisions else "quarantined"

        @flow(name="naive-order-intake")
        def naive_intake() -> dict[str, int]:
            outcomes: dict[str, int] = {}
            for payload in payloads:
                outcome = intake_one(payload)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            return outcomes

        with watch.time("run"):
            outcomes = naive_intake()
    return {"role": "naive", "times": watch.times, "orders": len(payloads), "outcomes": outcomes,
            "rows": table_counts(), "peak_rss_mb": peak_rss_mb()}


def prime(spec: dict[str, Any]) -> dict[str, Any]:
    """Starts the ephemeral server once so its database gets migrated (see `prefect_home_template`)."""
    watch = Stopwatch()
    with heartbeats_off(), watch.time("run"):
        warm_up()
    return {"role": "prime", "times": watch.times}


ROLES = {"ours": ours, "floor": floor, "naive": naive, "prime": prime}


def main(argv: list[str]) -> int:
    role, spec = argv[0], json.loads(argv[1])
    real_stdout, sys.stdout = sys.stdout, sys.stderr  # standard output carries the report only
    try:
        report = ROLES[role](spec)
    finally:
        sys.stdout = real_stdout
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
