"""One measurement per process: `python -m bench.worker ROLE SPEC_JSON` prints one JSON line.

Roles:
    ours: the real `order-intake` flow (deployments.runs.run_flow), after a warm-up.
    floor: the same bulk export with plain httpx, parsed, bulk-inserted with SQLAlchemy Core.
    naive: one Prefect task per order doing what Clerk does for one order.
    floor_pages: a channel's changed-orders pages (the client's requests) with plain httpx,
        mapped minimally and bulk-inserted with SQLAlchemy Core, a transaction per batch.

`ours` runs against any one channel when its spec names it (`"channel"`): then only that
channel is configured, its store is seeded from the same generated store as the sandbox's,
and with `"incremental"` its order watermark starts in 2000 (the paginated path).

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
from datetime import UTC, datetime, timedelta
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


def channel_url(channel: str) -> str:
    """The configured base URL of one channel (its sandbox)."""
    from integrations.settings import cached_settings

    settings = cached_settings()
    url = {"shopify": settings.shopify_shop_url, "woocommerce": settings.woocommerce_url,
           "magento": settings.magento_url}[channel]
    if not url:
        raise RuntimeError(f"no sandbox URL configured for {channel}")
    return url.rstrip("/")


def sandbox_requests(channel: str) -> int:
    """API requests the channel's sandbox has served so far (its control endpoints aside)."""
    import httpx

    return int(httpx.get(f"{channel_url(channel)}/sandbox/stats", timeout=60).json()["requests"])


def prepare_channel_database(spec: dict[str, Any]) -> dict[str, Any]:
    """`prepare_database` for any one channel (`spec["channel"]`); returns what setup did.

    Catalog and stock come from the store the sandbox serves: Shopify's sandbox hands
    out its CSVs, the others' store is generated again from the same spec (a spec
    always gives the same store). With `incremental`, the channel's order watermark is
    set to 2000, so intake walks its changed-orders pages from the start. With
    `catalog_synced`, the channel's catalog is synced once here, untimed, as an earlier
    run would have: the timed run then asks only for variants changed since.
    """
    from integrations import wiring
    from integrations.sandbox.store import StoreSpec, generate_store
    from integrations.settings import cached_settings
    from models.db import unit_of_work, upgrade
    from models.intake import set_watermark
    from tasks.catalog import fetch_channel_catalog, store_channel_catalog
    from tests.flows.state import seed_catalog_and_stock

    channel = spec["channel"]
    settings = cached_settings()
    upgrade(settings.database_url)
    if channel == CHANNEL:
        store: Any = _CsvStore(channel_url(channel))
    else:
        store = generate_store(StoreSpec(seed=int(spec["seed"]), orders=int(spec["orders"]), channels=(channel,)))
    seed_catalog_and_stock(settings.database_url, store)
    del store
    done: dict[str, Any] = {}
    if spec.get("incremental"):
        with unit_of_work(settings.database_url) as session:
            set_watermark(session, channel, EARLY, {})
    if spec.get("catalog_synced"):
        items = fetch_channel_catalog.fn(channel, None)
        done["catalog_items"] = len(items)
        store_channel_catalog.fn(channel, items)
        wiring.reset()
    return done


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
        channel = spec.get("channel")
        prepared: dict[str, Any] = {}
        with watch.time("setup"):
            if channel is None:
                prepare_database(watermark=spec.get("incremental", False))
            else:
                prepared = prepare_channel_database(spec)
            wiring.reset()
        requests_before = sandbox_requests(channel) if channel else None
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
    report = {
        "role": "ours", "times": watch.times, "summary": summary, "rows": table_counts(),
        "rss_after_warm_up_mb": rss_before, "peak_rss_mb": peak_rss_mb(),
        "tracemalloc_peak_mb": traced, "cpu_s": cpu, "task_s": task_phases("order-intake"),
        "server_peak_rss_mb": process_peak_rss_mb(pid) if (pid := server_pid()) else None,
    }
    if channel is not None:
        report |= {"channel": channel, "setup": prepared,
                   "requests": sandbox_requests(channel) - (requests_before or 0)}
    return report


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


# ---------------------------------------------------------------------- floor of the paginated path


def floor_pages(spec: dict[str, Any]) -> dict[str, Any]:
    """The least work that lands a channel's changed orders, page by page; all of it timed.

    The same requests the channel's client sends for its changed orders since 2000 (less
    the overlap ours re-reads): the same page size, filter, order and auth, one request
    after another with plain httpx, each answer json-parsed. Rows are built with the
    least mapping that fills the columns, ids numbered here (the database is fresh), and
    every `batch_size` orders (Clerk's intake batch) go in with one Core executemany per
    table, in one transaction, on an engine with Clerk's connection settings.
    """
    import httpx

    from integrations.settings import cached_settings
    from models.db import engine_for, upgrade

    channel = spec["channel"]
    settings = cached_settings()
    intake = settings.toml.intake
    since = EARLY - timedelta(seconds=intake.watermark_overlap_seconds)
    watch = Stopwatch()
    with watch.time("setup"):  # the same schema Clerk writes into, untimed like Clerk's seeding
        upgrade(settings.database_url)
    engine = engine_for(settings.database_url)
    requests_before = sandbox_requests(channel)
    pages = _PAGES[channel](settings, since)
    rows = _PageRows(channel, _READERS[channel], datetime.now(UTC))
    cpu_before = process_cpu_seconds()
    with watch.time("run"), httpx.Client(timeout=120) as http:
        walk = pages(http)
        while True:
            with watch.time("fetch"):
                payloads = next(walk, None)
            if payloads is None:
                break
            with watch.time("map"):
                rows.add(payloads)
            if rows.pending >= intake.batch_size:
                with watch.time("insert"):
                    rows.flush(engine)
        with watch.time("insert"):
            rows.flush(engine)
    cpu = {"self": (process_cpu_seconds() or 0) - (cpu_before or 0)}
    requests = sandbox_requests(channel) - requests_before
    engine.dispose()
    return {"role": "floor_pages", "channel": channel, "times": watch.times, "cpu_s": cpu,
            "fetched": rows.fetched, "orders": rows.stored, "skipped_unreadable": rows.skipped,
            "pages": rows.pages, "batches": rows.batches, "requests": requests, "rows": table_counts(),
            "peak_rss_mb": peak_rss_mb()}


def _shopify_pages(settings: Any, since: datetime) -> Any:
    """OrdersPage walks (ORDERS_PER_PAGE orders, their first lines), OrderLinesPage for long orders."""
    from integrations.shopify.queries import ORDER_LINES_PAGE, ORDERS_PAGE, ORDERS_PER_PAGE

    endpoint = f"{settings.shopify_shop_url.rstrip('/')}/admin/api/{settings.shopify_api_version}/graphql.json"
    headers = {"X-Shopify-Access-Token": settings.shopify_access_token or ""}
    search = f"updated_at:>='{since.strftime('%Y-%m-%dT%H:%M:%SZ')}'"

    def walk(http: Any) -> Iterator[list[dict[str, Any]]]:
        after = None
        while True:
            variables = {"first": ORDERS_PER_PAGE, "after": after, "query": search}
            response = http.post(endpoint, headers=headers, json={"query": ORDERS_PAGE, "variables": variables})
            response.raise_for_status()
            connection = response.json()["data"]["orders"]
            orders = connection["nodes"]
            for order in orders:
                lines = order["lineItems"]
                cursor = lines["pageInfo"]["endCursor"] if lines["pageInfo"]["hasNextPage"] else None
                while cursor is not None:
                    more = http.post(endpoint, headers=headers, json={
                        "query": ORDER_LINES_PAGE, "variables": {"id": order["id"], "after": cursor}})
                    more.raise_for_status()
                    rest = more.json()["data"]["order"]["lineItems"]
                    lines["nodes"] += rest["nodes"]
                    cursor = rest["pageInfo"]["endCursor"] if rest["pageInfo"]["hasNextPage"] else None
            yield orders
            if not connection["pageInfo"]["hasNextPage"]:
                return
            after = connection["pageInfo"]["endCursor"]

    return walk


def _woocommerce_pages(settings: Any, since: datetime) -> Any:
    """`GET orders` by modification, MAX_PER_PAGE a page, asked afresh after the newest second delivered.

    As the client walks (see `integrations.woocommerce.mapping.Position`): page numbers
    would skip orders edited meanwhile, so each request asks for changes after the newest
    second seen and orders already delivered are dropped.
    """
    from integrations.woocommerce.mapping import MAX_PER_PAGE

    url = f"{settings.woocommerce_url.rstrip('/')}/wp-json/wc/v3/orders"
    auth = (settings.woocommerce_key or "", settings.woocommerce_secret or "")
    stamp = "%Y-%m-%dT%H:%M:%S"

    def walk(http: Any) -> Iterator[list[dict[str, Any]]]:
        after, page, seen = since.replace(microsecond=0), 1, set()
        while True:
            params = {"orderby": "modified", "order": "asc", "page": page, "per_page": MAX_PER_PAGE,
                      "dates_are_gmt": "true", "modified_after": (after - timedelta(seconds=1)).strftime(stamp)}
            response = http.get(url, params=params, auth=auth)
            response.raise_for_status()
            fresh = [order for order in response.json() if order["id"] not in seen]
            seen.update(order["id"] for order in fresh)
            yield fresh
            if int(response.headers.get("x-wp-totalpages", "0")) <= page:
                return
            if fresh:
                newest = max(order["date_modified_gmt"] for order in fresh)
                after, page = datetime.strptime(newest, stamp).replace(tzinfo=UTC), 1
            else:
                page += 1

    return walk


def _magento_pages(settings: Any, since: datetime) -> Any:
    """`GET orders` search by (updated_at, entity_id), ORDERS_PER_PAGE a page, each past the last key."""
    from integrations.magento.mapping import ORDERS_PER_PAGE

    url = f"{settings.magento_url.rstrip('/')}/rest/{settings.magento_store}/V1/orders"
    headers = {"Authorization": f"Bearer {settings.magento_token or ''}"}
    stamp = "%Y-%m-%d %H:%M:%S"
    group = "searchCriteria[filterGroups][{}][filters][{}][{}]"

    def criteria(filters: list[list[tuple[str, str, str]]]) -> dict[str, str]:
        params = {"searchCriteria[sortOrders][0][field]": "updated_at",
                  "searchCriteria[sortOrders][0][direction]": "ASC",
                  "searchCriteria[sortOrders][1][field]": "entity_id",
                  "searchCriteria[sortOrders][1][direction]": "ASC",
                  "searchCriteria[pageSize]": str(ORDERS_PER_PAGE), "searchCriteria[currentPage]": "1"}
        for g, filter_group in enumerate(filters):
            for f, (field, value, condition) in enumerate(filter_group):
                params |= {group.format(g, f, "field"): field, group.format(g, f, "value"): value,
                           group.format(g, f, "conditionType"): condition}
        return params

    def walk(http: Any) -> Iterator[list[dict[str, Any]]]:
        filters = [[("updated_at", since.strftime(stamp), "gteq")]]
        while True:
            response = http.get(url, params=criteria(filters), headers=headers)
            response.raise_for_status()
            body = response.json()
            items = body["items"]
            yield items
            if not items or body["total_count"] <= len(items):
                return
            moment, entity_id = max((order["updated_at"], order["entity_id"]) for order in items)
            filters = [[("updated_at", moment, "gteq")],
                       [("updated_at", moment, "gt"), ("entity_id", str(entity_id), "gt")]]

    return walk


_PAGES = {"shopify": _shopify_pages, "woocommerce": _woocommerce_pages, "magento": _magento_pages}


def _money(value: Any) -> Decimal:
    """An amount as a channel sends it: decimal text, or a JSON number read by its repr."""
    return Decimal(repr(value) if isinstance(value, float) else value)


def _shopify_order(order: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]], str | None]:
    def amount(node: dict[str, Any] | None) -> Decimal:
        return Decimal(node["shopMoney"]["amount"]) if node else Decimal(0)

    if order.get("cancelledAt"):
        lifecycle = "cancelled"
    elif order.get("displayFulfillmentStatus") == "FULFILLED":
        lifecycle = "fulfilled"
    else:
        lifecycle = "closed" if order.get("closed") else "open"
    address = order.get("shippingAddress") or {}
    row = {
        "external_id": order["id"], "number": order["name"], "lifecycle": lifecycle, "currency": order["currencyCode"],
        "total": amount(order["totalPriceSet"]), "shipping": amount(order.get("totalShippingPriceSet")),
        "tax": amount(order.get("totalTaxSet")), "discounts": amount(order.get("totalDiscountsSet")),
        "taxes_included": bool(order.get("taxesIncluded")),
        "requires_shipping": bool(order.get("requiresShipping", True)),
        "risk": ((order.get("risk") or {}).get("recommendation") or "none").lower()[:20],
        "ship_to_country": address.get("countryCodeV2"),
        "placed_at": datetime.fromisoformat(order.get("processedAt") or order["createdAt"]),
        "upstream_updated_at": datetime.fromisoformat(order["updatedAt"]),
    }
    lines = [{"sku": line.get("sku") or None, "title": line.get("title") or "", "quantity": int(line["quantity"]),
              "unit_price": amount(line["originalUnitPriceSet"]), "discount": amount(line.get("totalDiscountSet"))}
             for line in order["lineItems"]["nodes"]]
    return row, lines, (order.get("customer") or {}).get("id")


_WOO_LIFECYCLE = {"pending": "open", "processing": "open", "on-hold": "open", "completed": "fulfilled",
                  "refunded": "closed", "cancelled": "cancelled", "failed": "cancelled", "trash": "cancelled",
                  "checkout-draft": "cancelled"}


def _woocommerce_order(order: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]], str | None]:
    risk = next((m["value"] for m in order.get("meta_data") or [] if m.get("key") == "_clerk_risk"), None)
    row = {
        "external_id": str(order["id"]), "number": str(order["number"]), "lifecycle": _WOO_LIFECYCLE[order["status"]],
        "currency": order["currency"], "total": _money(order["total"]), "shipping": _money(order["shipping_total"]),
        "tax": _money(order["total_tax"]), "discounts": _money(order["discount_total"]),
        "taxes_included": bool(order.get("prices_include_tax")), "requires_shipping": bool(order.get("shipping_lines")),
        "risk": risk.lower()[:20] if isinstance(risk, str) else "none",
        "ship_to_country": (order.get("shipping") or {}).get("country") or None,
        "placed_at": datetime.fromisoformat(order["date_created_gmt"]).replace(tzinfo=UTC),
        "upstream_updated_at": datetime.fromisoformat(order["date_modified_gmt"]).replace(tzinfo=UTC),
    }
    lines = []
    for line in order["line_items"]:
        quantity, subtotal = int(line["quantity"]), _money(line["subtotal"])
        lines.append({"sku": line.get("sku") or None, "title": line.get("name") or "", "quantity": quantity,
                      "unit_price": (subtotal / quantity).quantize(Decimal("0.0001")),
                      "discount": subtotal - _money(line["total"])})
    return row, lines, str(order["customer_id"]) if order.get("customer_id") else None


_MAGENTO_LIFECYCLE = {"new": "open", "pending_payment": "open", "processing": "open", "holded": "open",
                      "payment_review": "open", "complete": "fulfilled", "closed": "closed", "canceled": "cancelled"}


def _magento_order(order: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]], str | None]:
    def moment(value: str) -> datetime:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)

    assignments = (order.get("extension_attributes") or {}).get("shipping_assignments") or [{}]
    address = (assignments[0].get("shipping") or {}).get("address") or {}
    row = {
        "external_id": str(order["entity_id"]), "number": order["increment_id"],
        "lifecycle": _MAGENTO_LIFECYCLE[order["state"]], "currency": order["order_currency_code"],
        "total": _money(order["grand_total"]), "shipping": _money(order.get("shipping_amount") or 0),
        "tax": _money(order.get("tax_amount") or 0), "discounts": abs(_money(order.get("discount_amount") or 0)),
        "taxes_included": False, "requires_shipping": order.get("is_virtual") != 1, "risk": "none",
        "ship_to_country": address.get("country_id"),
        "placed_at": moment(order["created_at"]), "upstream_updated_at": moment(order["updated_at"]),
    }
    lines = [{"sku": item.get("sku") or None, "title": item.get("name") or "", "quantity": int(item["qty_ordered"]),
              "unit_price": _money(item["price"]), "discount": abs(_money(item.get("discount_amount") or 0))}
             for item in order["items"] if item.get("parent_item_id") is None]
    guest = order.get("customer_is_guest") == 1 or order.get("customer_id") is None
    return row, lines, None if guest else str(order["customer_id"])


_READERS = {"shopify": _shopify_order, "woocommerce": _woocommerce_order, "magento": _magento_order}


class _PageRows:
    """Rows of the orders read so far and not yet inserted; customers numbered across batches."""

    def __init__(self, channel: str, read: Any, now: datetime):
        self.channel, self.read, self.now = channel, read, now
        self.customers: dict[str, int] = {}
        self.orders: list[dict[str, Any]] = []
        self.lines: list[dict[str, Any]] = []
        self.new_customers: list[str] = []
        self.fetched = self.stored = self.skipped = self.pages = self.batches = 0

    @property
    def pending(self) -> int:
        return len(self.orders)

    def add(self, payloads: list[dict[str, Any]]) -> None:
        """One page: an order with an unreadable field is skipped with its lines."""
        self.pages += 1
        for payload in payloads:
            self.fetched += 1
            try:
                row, lines, customer = self.read(payload)
            except (InvalidOperation, ArithmeticError, TypeError, KeyError, ValueError, AttributeError):
                self.skipped += 1
                continue
            if len(row["currency"] or "") != 3:  # the column holds a code; anything else is unreadable
                self.skipped += 1
                continue
            order_id = self.stored + len(self.orders) + 1
            if customer is not None and customer not in self.customers:
                self.customers[customer] = len(self.customers) + 1
                self.new_customers.append(customer)
            lifecycle = row["lifecycle"]
            row |= {"id": order_id, "channel": self.channel,
                    "status": "accepted" if lifecycle == "open" else lifecycle.replace("closed", "fulfilled"),
                    "customer_id": self.customers[customer] if customer is not None else None,
                    "fingerprint": hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest(),
                    "created_at": self.now, "updated_at": self.now}
            self.orders.append(row)
            self.lines += [line | {"order_id": order_id, "position": position} for position, line in enumerate(lines)]

    def flush(self, engine: Any) -> None:
        """One transaction: new customers and their accounts, then orders, then lines."""
        from sqlalchemy import insert

        from models.customers import Customer, CustomerAccount
        from models.orders import Order, OrderLine

        if not self.orders:
            return
        with engine.begin() as conn:
            if self.new_customers:
                conn.execute(insert(Customer.__table__), [
                    {"id": self.customers[key], "key": uuid.uuid4().hex, "created_at": self.now}
                    for key in self.new_customers])
                conn.execute(insert(CustomerAccount.__table__), [
                    {"channel": self.channel, "external_id": key, "customer_id": self.customers[key]}
                    for key in self.new_customers])
            conn.execute(insert(Order.__table__), self.orders)
            if self.lines:
                conn.execute(insert(OrderLine.__table__), self.lines)
        self.stored += len(self.orders)
        self.batches += 1
        self.orders, self.lines, self.new_customers = [], [], []


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


ROLES = {"ours": ours, "floor": floor, "naive": naive, "prime": prime, "floor_pages": floor_pages}


def measure_flow(role: str, flow_name: str, params: dict[str, Any], module: str,
                 profile: str | None = None) -> dict[str, Any]:
    """Times one run of a real flow after a warm-up that also imports `module`; its report.

    With `profile` (a path), the run is profiled with cProfile and the stats written there:
    for finding a cause, never for the reported numbers."""
    import importlib

    from deployments.runs import run_flow

    watch = Stopwatch()
    with heartbeats_off():
        with watch.time("warm_up"):
            warm_up()
            importlib.import_module(module)  # imports are not the run's work
        rss_before = current_rss_mb()
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        before = cpu_seconds()
        with watch.time("run"):
            summary, completed = run_flow(flow_name, params)
        cpu = cpu_used(before, cpu_seconds())
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)
    if not completed:
        raise RuntimeError(f"{flow_name} did not complete: {summary}")
    return {"role": role, "times": watch.times, "summary": summary, "cpu_s": cpu,
            "rss_after_warm_up_mb": rss_before, "peak_rss_mb": peak_rss_mb()}


def _all_roles() -> dict[str, Any]:
    from bench.labels_worker import ROLES as LABELS
    from bench.restock_worker import ROLES as RESTOCK

    return ROLES | RESTOCK | LABELS


def main(argv: list[str]) -> int:
    role, spec = argv[0], json.loads(argv[1])
    real_stdout, sys.stdout = sys.stdout, sys.stderr  # standard output carries the report only
    try:
        report = _all_roles()[role](spec)
    finally:
        sys.stdout = real_stdout
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
