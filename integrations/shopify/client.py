"""The Shopify GraphQL Admin client: the only code here that talks to Shopify.

`_attempt` is the one transport seam; everything it sends is built, and everything it
receives is read, by the pure functions of `mapping.py`. Two budgets govern retries:
transient failures (5xx, timeouts, drops, garbled bodies) spend `max_attempts`, while
throttling is waited out by the cost-bucket model and spends a budget of its own.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import httpx

from domain.orders import ChannelOrder
from integrations.http import (
    HttpClient,
    TransientFailure,
    call_with_retry,
    decode_json,
    raise_for_transient,
    required_settings,
    retry_after_seconds,
    transport_settings,
    web_url,
)
from integrations.protocols import (
    CatalogItem,
    ChannelReturn,
    ExportStatus,
    OrderPage,
    Payload,
    StockLevel,
    StockReport,
    Tracking,
    Unreadable,
    UpstreamError,
)
from integrations.reading import report_unreadable
from integrations.shopify import mapping
from integrations.shopify.mapping import ShapeError, ThrottleStatus
from integrations.shopify.queries import (
    BULK_ORDERS_QUERY,
    BULK_RUN,
    BULK_STATUS,
    CREATE_FULFILLMENT,
    CREATE_REFUND,
    CURRENT_BULK,
    FULFILLMENT_LINES,
    FULFILLMENT_ORDER_FULFILLMENTS,
    FULFILLMENT_ORDER_LINES,
    ORDER_FULFILLMENT_ORDERS,
    ORDER_LINES_PAGE,
    ORDER_NOTE,
    ORDER_REFUNDABLE,
    ORDERS_PAGE,
    ORDERS_PER_PAGE,
    RETURN_ORDERS_PER_PAGE,
    RETURNS_PAGE,
    PRIMARY_LOCATION,
    SET_STOCK,
    SHOP_PING,
    SKUS_PER_LOOKUP,
    STOCK_BY_SKU,
    UPDATE_NOTE,
    VARIANTS_PAGE,
    VARIANTS_PER_PAGE,
)
from integrations.writeback import ShownCounts, StaleCounts, StockPush

if TYPE_CHECKING:
    from integrations.settings import Settings

T = TypeVar("T")

SHOP_URL = "CLERK_SHOPIFY_SHOP_URL"
ACCESS_TOKEN = "CLERK_SHOPIFY_ACCESS_TOKEN"
API_VERSION = "CLERK_SHOPIFY_API_VERSION"

# GraphQL error codes that another attempt may cure.
_TRANSIENT_CODES = frozenset({"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT"})
_STOCK_BATCH = 250  # inventorySetQuantities takes at most 250 quantities


class CostBucket:
    """A local model of Shopify's leaky bucket, fed by every response's `throttleStatus`.

    Between readings the bucket is projected to refill at `restoreRate`, capped at
    `maximumAvailable`; before a query is sent the client waits until its expected cost
    is projected to be there, so a well-behaved client is rarely throttled at all.
    """

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._reading: ThrottleStatus | None = None
        self._read_at = 0.0

    def observe(self, status: ThrottleStatus) -> None:
        self._reading = status
        self._read_at = self._clock()

    def projected(self) -> float | None:
        """Points expected to be available now, or None before the first reading."""
        if self._reading is None:
            return None
        elapsed = max(0.0, self._clock() - self._read_at)
        restored = self._reading.available + elapsed * self._reading.restore_rate
        return min(self._reading.maximum, restored)

    def wait_for(self, cost: float) -> float:
        """Seconds until `cost` points are projected to be available (0 when they are)."""
        available = self.projected()
        if self._reading is None or available is None:
            return 0.0
        # No query may need more than a full bucket; asking for more would wait forever.
        deficit = min(cost, self._reading.maximum) - available
        return max(0.0, deficit / self._reading.restore_rate)


class _Throttled:
    """Shopify refused a query for want of points; `retry_after` is its hint, if any."""

    def __init__(self, retry_after: float | None):
        self.retry_after = retry_after


class ShopifyClient(HttpClient):
    """Orders, exports, the catalog and write-backs of one Shopify shop, over the GraphQL Admin API."""

    channel = mapping.CHANNEL
    max_throttle_waits = 20

    def __init__(
        self,
        shop_url: str,
        access_token: str,
        api_version: str = "2026-10",
        *,
        timeout: float = 30.0,
        max_attempts: int = 6,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        location_id: str | None = None,
    ):
        self.shop_url = shop_url.rstrip("/")
        self.api_version = api_version
        self.endpoint = web_url(f"{self.shop_url}/admin/api/{api_version}/graphql.json", SHOP_URL, "Shopify")
        self._token = access_token
        self._connect(timeout, max_attempts, http, sleep, rng)
        self._sleep = sleep
        self._bucket = CostBucket(clock)
        # The index `download_export` built while checking the file, for `read_export`.
        self._downloaded: tuple[Path, tuple[int, int, int], _ExportIndex] | None = None
        self._expected_costs: dict[str, float] = {}
        self._currency: str | None = None
        self.location_id = location_id

    @classmethod
    def from_settings(cls, settings: Settings) -> ShopifyClient:
        """A client from the CLERK_SHOPIFY_* settings.

        Raises:
            UpstreamError: naming the variable that is missing.
        """
        shop_url, token = required_settings((settings.shopify_shop_url, SHOP_URL),
                                            (settings.shopify_access_token, ACCESS_TOKEN))
        return cls(shop_url, token, settings.shopify_api_version, **transport_settings(settings))

    # ------------------------------------------------------------------ transport

    def _refusal(self, status: int) -> UpstreamError:
        if status in (401, 403):
            return UpstreamError(f"Shopify refused the access token ({ACCESS_TOKEN})", setting=ACCESS_TOKEN)
        if status == 404 and not mapping.is_api_version(self.api_version):
            return UpstreamError(
                f"Shopify has no API version '{self.api_version}' ({API_VERSION})", setting=API_VERSION
            )
        if status == 404:
            # A well-formed version Shopify does not serve 404s just like a wrong shop URL.
            return UpstreamError(
                f"No Shopify Admin API at {self.endpoint} (HTTP 404); check {SHOP_URL} "
                f"(and {API_VERSION}={self.api_version})",
                setting=SHOP_URL,
            )
        if 300 <= status < 400:
            return UpstreamError(
                f"Shopify redirected the API request (HTTP {status}); {SHOP_URL} should be "
                "https://{shop}.myshopify.com",
                setting=SHOP_URL,
            )
        return UpstreamError(f"Shopify rejected the request (HTTP {status})")

    def _attempt(
        self, name: str, request: Payload, parse: Callable[[Payload], T], strict: bool
    ) -> T | _Throttled:
        """One POST to the GraphQL endpoint, read to the end.

        Raises TransientFailure (or lets an httpx.TransportError through) for what is
        worth another attempt, UpstreamError for refusals. With `strict`, an unreachable
        host is a refusal too: that is a wrong URL, not a passing fault.
        """
        try:
            response = self._http.post(
                self.endpoint,
                json=request,
                headers={"X-Shopify-Access-Token": self._token, "Accept": "application/json"},
                timeout=self._timeout,
            )
        except httpx.ConnectError as exc:
            if strict:
                raise UpstreamError(
                    f"Cannot reach Shopify at {self.shop_url} ({SHOP_URL})", setting=SHOP_URL
                ) from exc
            raise
        if response.status_code == 429:
            try:
                self._observe(name, json.loads(response.content))
            except ValueError:
                pass  # a bare 429 without a cost reading is still a throttle
            return _Throttled(retry_after_seconds(response))
        raise_for_transient(response)
        if response.status_code >= 300:
            raise self._refusal(response.status_code)
        body = decode_json(response)
        if not isinstance(body, dict):
            raise TransientFailure("response body is not a JSON object")
        self._observe(name, body)
        errors = mapping.parse_errors(body)
        if mapping.is_throttled(errors):
            return _Throttled(None)
        if any(error.code in _TRANSIENT_CODES for error in errors):
            raise TransientFailure("Shopify reported an internal error")
        if any(error.code == "ACCESS_DENIED" for error in errors):
            raise UpstreamError(
                f"Shopify denied access: the token lacks a scope ({ACCESS_TOKEN})", setting=ACCESS_TOKEN
            )
        if errors:
            messages = "; ".join(error.message[:200] for error in errors[:3])
            raise UpstreamError(f"Shopify rejected {name}: {messages}")
        try:
            return parse(mapping.parse_data(body))
        except ShapeError as exc:
            raise TransientFailure(f"{name} answer is incomplete ({exc})") from exc

    def _observe(self, name: str, body: Any) -> None:
        cost = mapping.parse_query_cost(body)
        if cost is None:
            return
        if cost.throttle is not None:
            self._bucket.observe(cost.throttle)
        if cost.requested is not None:
            self._expected_costs[name] = cost.requested

    def _query(
        self,
        name: str,
        document: str,
        variables: Payload,
        parse: Callable[[Payload], T],
        strict: bool = False,
        retry: bool = True,
    ) -> T:
        """Runs one GraphQL operation, pacing it by the cost bucket and waiting out throttles.

        With `retry` off, a transient failure is raised after one attempt (throttles are
        still waited out): for a write whose caller looks before trying again.
        """
        request = mapping.build_graphql_request(document, variables)
        throttled: _Throttled | None = None
        for waits in range(self.max_throttle_waits + 1):
            expected = self._expected_costs.get(name) or mapping.requested_cost(document, variables)
            delay = self._bucket.wait_for(expected)
            if throttled is not None and delay <= 0:
                # Throttled though the model saw room (no reading yet, or a bare 429):
                # back off rather than ask again at once.
                delay = max(throttled.retry_after or 0.0, self._policy.delay(waits))
            if delay > 0:
                self._sleep(delay)
            if retry:
                outcome = call_with_retry(
                    lambda: self._attempt(name, request, parse, strict), self._policy, "Shopify"
                )
            else:
                outcome = self._attempt(name, request, parse, strict)
            if not isinstance(outcome, _Throttled):
                return outcome
            throttled = outcome
        raise UpstreamError(f"Shopify kept throttling {name} after {self.max_throttle_waits} waits")

    # ------------------------------------------------------------------ shop

    def ping(self) -> None:
        """Checks URL, version and token with one cheap query; caches the shop's currency.

        Raises:
            UpstreamError: one line naming the CLERK_SHOPIFY_* variable to fix.
        """
        self._currency = self._query(
            "ShopPing", SHOP_PING, {}, mapping.parse_shop_currency, strict=True
        )

    def _shop_currency(self) -> str:
        if self._currency is None:
            self._currency = self._query("ShopPing", SHOP_PING, {}, mapping.parse_shop_currency)
        return self._currency

    # ------------------------------------------------------------------ orders

    def changed_orders(self, since: datetime | None, cursor: str | None, limit: int) -> OrderPage:
        """Orders updated at or after `since`, oldest change first, about `limit` of them.

        Every payload carries all its lines: orders with more lines than a page holds
        are completed with ORDER_LINES_PAGE before they are returned.
        """
        payloads: list[Payload] = []
        after, has_next = cursor, True
        while has_next and len(payloads) < limit:
            first = min(ORDERS_PER_PAGE, limit - len(payloads))
            variables = mapping.build_orders_variables(since, after, first)
            page = self._query("OrdersPage", ORDERS_PAGE, variables, mapping.parse_orders_page)
            gone = set()
            for index, lines_cursor in page.unfinished:
                order = page.orders[index]
                rest = self._remaining_lines(order["id"], lines_cursor)
                if rest is None:
                    gone.add(index)
                else:
                    order["lineItems"]["nodes"].extend(rest)
            payloads.extend(order for index, order in enumerate(page.orders) if index not in gone)
            after, has_next = page.end_cursor, page.has_next
        return OrderPage(payloads, after if has_next else None, mapping.newest_update(payloads))

    def _remaining_lines(self, order_id: str, after: str) -> list[Any] | None:
        """The lines of an order after `after`; None when the order was deleted meanwhile."""
        lines: list[Any] = []
        cursor: str | None = after
        while cursor is not None:
            variables = {"id": order_id, "after": cursor}
            page = self._query("OrderLinesPage", ORDER_LINES_PAGE, variables, mapping.parse_order_lines_page)
            if page is None:
                return None
            lines.extend(page.lines)
            cursor = page.end_cursor if page.has_next else None
        return lines

    def parse_order(self, payload: Payload) -> ChannelOrder:
        """Pure mapping of one payload (see `mapping.parse_order`)."""
        return mapping.parse_order(payload, self.channel)

    # ------------------------------------------------------------------ catalog

    def catalog_pages(self, since: datetime | None = None) -> Iterator[list[CatalogItem]]:
        """Variants with a SKU updated at or after `since` (all when None), priced in the shop's currency."""
        currency = self._shop_currency()
        after: str | None = None
        query = mapping.build_updated_since_query(since) or None
        while True:
            variables = {"first": VARIANTS_PER_PAGE, "after": after, "query": query}
            page = self._query(
                "VariantsPage", VARIANTS_PAGE, variables,
                lambda data: mapping.parse_variants_page(data, currency),
            )
            if page.items:
                yield page.items
            if not page.has_next:
                return
            after = page.end_cursor

    # ------------------------------------------------------------------ write-backs

    def _location(self) -> str:
        """Where Clerk's stock lives and returns come back: the shop's primary location, or the one given."""
        if self.location_id is None:
            self.location_id = self._query("PrimaryLocation", PRIMARY_LOCATION, {}, mapping.parse_primary_location)
        return self.location_id

    def _look_then_write(self, look: Callable[[], T | None], write: Callable[[], T]) -> T:
        """Retries a write that has no idempotency key as a whole: each attempt first looks
        whether an earlier one landed, so a lost answer never applies it twice."""
        def attempt() -> T:
            found = look()
            return found if found is not None else write()

        return call_with_retry(attempt, self._policy, "Shopify")

    def set_stock(self, levels: Sequence[StockLevel], key: str) -> StockReport:
        """Sets `available` units per SKU at the location with compare-and-set (see
        `OrderWriter.set_stock`), 250 to a mutation.

        Each mutation's `changeFromQuantity` is the count read just before, and its idempotency
        key is `key` with a digest of its quantities: a retry of the same mutation reuses the
        key, so a lost answer is not applied twice, while the one written after a refusal for a
        moved count, read and judged again, is another mutation with a key of its own.
        """
        items: dict[str, str] = {}  # SKU -> inventory item, as last read

        def read(skus: list[str]) -> ShownCounts:
            shown: dict[str, int | None] = {}
            for start in range(0, len(skus), SKUS_PER_LOOKUP):
                wanted = skus[start:start + SKUS_PER_LOOKUP]
                variables = {"query": mapping.build_skus_query(wanted), "location": self._location()}
                for sku, stocked in self._every("StockBySku", STOCK_BY_SKU, variables,
                                                lambda data, w=frozenset(wanted): mapping.parse_stock_page(data, w)):
                    if sku not in shown:  # a SKU on two variants: the first, as Shopify lists them
                        items[sku], shown[sku] = stocked.item_id, stocked.available
            return shown

        def write(pairs: list[tuple[StockLevel, int | None]]) -> None:
            quantities = [mapping.StockQuantity(items[level.sku], level.available, seen) for level, seen in pairs]
            for start in range(0, len(quantities), _STOCK_BATCH):
                batch = quantities[start:start + _STOCK_BATCH]
                batch_key = mapping.stock_write_key(key, batch)
                variables = {"input": mapping.build_set_stock_input(batch, self._location(), batch_key),
                             "key": batch_key}
                if not self._query("SetStock", SET_STOCK, variables, mapping.parse_set_stock):
                    raise StaleCounts("a stock count moved on Shopify since it was read")

        # The idempotency key guards a write retried after a lost answer: nothing to wait for.
        push = StockPush(levels, read, write, wait=lambda: None)
        return call_with_retry(push.attempt, self._policy, "Shopify")

    def add_order_note(self, external_id: str, note: str, key: str) -> str:
        """Appends a line carrying `key` to the order's note (staff only) unless one carries it;
        returns the order's id (the note has none of its own)."""
        def look() -> str | None:
            current = self._query("OrderNote", ORDER_NOTE, {"id": external_id}, mapping.parse_order_note)
            updated = mapping.note_with(current, note, key)
            if updated is None:
                return external_id
            pending[0] = updated
            return None

        pending = [""]
        return self._look_then_write(look, lambda: self._query(
            "UpdateNote", UPDATE_NOTE, {"input": {"id": external_id, "note": pending[0]}},
            mapping.parse_update_note, retry=False))

    def _every(self, name: str, document: str, variables: Payload,
               parse: Callable[[Payload], mapping.Chunk[T]], after: str | None = None) -> list[T]:
        """Every item of a connection from `after` on, a page per query."""
        items: list[T] = []
        while True:
            chunk = self._query(name, document, {**variables, "after": after}, parse)
            items.extend(chunk.items)
            if not chunk.has_next:
                return items
            after = chunk.end_cursor

    def _shipping(self, order_id: str) -> tuple[list[mapping.FulfillmentOrder], list[mapping.Fulfillment]]:
        """The order's fulfillment orders with all their lines, and every fulfillment made from them."""
        orders = self._every("OrderFulfillmentOrders", ORDER_FULFILLMENT_ORDERS, {"id": order_id},
                             mapping.parse_fulfillment_orders)
        located: dict[str, str] = {}  # fulfillment id -> location; one may span fulfillment orders
        for order in orders:
            if order.lines_after is not None:
                order.lines += self._every("FulfillmentOrderLines", FULFILLMENT_ORDER_LINES, {"id": order.id},
                                           mapping.parse_fulfillment_order_lines, order.lines_after)
            if order.fulfillments_after is not None:
                order.fulfillment_ids += self._every(
                    "FulfillmentOrderFulfillments", FULFILLMENT_ORDER_FULFILLMENTS, {"id": order.id},
                    mapping.parse_fulfillment_ids, order.fulfillments_after)
            for fulfillment_id in order.fulfillment_ids:
                located.setdefault(fulfillment_id, order.location_id)
        fulfillments = [
            mapping.whole_fulfillment(self._every("FulfillmentLines", FULFILLMENT_LINES, {"id": fulfillment_id},
                                                  lambda data, at=location_id: mapping.parse_fulfillment(data, at)))
            for fulfillment_id, location_id in located.items()]
        return orders, fulfillments

    def fulfill(self, external_id: str, lines: Mapping[str, int], tracking: Tracking | None, key: str) -> str:
        """Fulfils `lines` (SKU -> units; empty: everything left) from the order's fulfillment
        orders once; returns the shipment's fulfillment ids joined by ",", one per location it
        ships from in location id order (a single id when it ships from one).

        fulfillmentCreate takes the fulfillment orders of one location and no idempotency key:
        each attempt reads the order's fulfillment orders and fulfillments whole and creates
        only the locations' fulfillments not made yet (`mapping.plan_shipment`). `key` is not
        stored on Shopify.
        """
        parts: list[mapping.LocationShipment] = []

        def look() -> str | None:
            parts[:] = mapping.plan_shipment(*self._shipping(external_id), lines, tracking)
            if any(part.to_ship for part in parts):
                return None
            return ",".join(made for part in parts for made in part.made)

        def write() -> str:
            ids = []
            for part in parts:
                ids += part.made or [self._query(
                    "CreateFulfillment", CREATE_FULFILLMENT,
                    {"fulfillment": mapping.build_fulfillment_input(part.to_ship, tracking)},
                    mapping.parse_create_fulfillment, retry=False)]
            return ",".join(ids)

        return self._look_then_write(look, write)

    def refund(self, external_id: str, lines: Mapping[str, int], amount: Decimal, reason: str, key: str) -> str:
        """Refunds `amount`, in the order's presentment currency (the buyer's), from its payments
        for `lines`, with Shopify's idempotency key; returns the refund's id. Nothing is restocked
        upstream (see `OrderWriter.refund`).

        Raises:
            ValueError: for a SKU not on the order or more than it can refund.
        """
        refundable = self._query("OrderRefundable", ORDER_REFUNDABLE, {"id": external_id}, mapping.parse_refundable)
        variables = {"input": mapping.build_refund_input(refundable, lines, amount, reason), "key": key}
        return self._query("CreateRefund", CREATE_REFUND, variables, mapping.parse_create_refund)

    # ------------------------------------------------------------------ return requests

    def return_requests(self, since: datetime | None, unreadable: list[Unreadable] | None = None,
                        page_size: int = RETURN_ORDERS_PER_PAGE) -> list[ChannelReturn]:
        """Returns buyers asked for (REQUESTED) or under way (OPEN), asked for at or after `since`.

        Orders are searched by `return_status` (requested, then in progress) and `updated_at`
        (a return request touches its order); each return is read from its order's `returns`.
        A return that cannot be read is left out and reported (see `ReturnSource`).
        """
        found: dict[str, ChannelReturn] = {}
        problems: list[Unreadable] = []
        for status in mapping.RETURN_ORDER_STATUSES:
            after, has_next = None, True
            while has_next:
                variables = mapping.build_returns_variables(since, status, after, page_size)
                page = self._query("ReturnsPage", RETURNS_PAGE, variables, mapping.parse_returns_page)
                for order in page.items:
                    for found_return in mapping.parse_returns(order, since, self.channel, problems):
                        found.setdefault(found_return.external_id, found_return)
                after, has_next = page.end_cursor, page.has_next
        report_unreadable(problems, unreadable, self.channel)
        return sorted(found.values(), key=lambda r: (r.requested_at, r.external_id))

    # ------------------------------------------------------------------ bulk export

    def start_export(self) -> ExportStatus:
        """Starts a bulk export of every order, or adopts the one already running.

        Raises:
            UpstreamError: when Shopify will not start one and none can be adopted.
        """
        outcome = self._query("BulkRun", BULK_RUN, {"query": BULK_ORDERS_QUERY}, mapping.parse_bulk_run)
        if isinstance(outcome, ExportStatus):
            return outcome
        if outcome.busy:
            running = self._query(
                "CurrentBulk", CURRENT_BULK, {},
                lambda data: mapping.parse_current_bulk(data, BULK_ORDERS_QUERY),
            )
            if running is not None:
                return running
        raise UpstreamError("Shopify would not start the order export: " + "; ".join(outcome.messages))

    def export_status(self, job_id: str) -> ExportStatus:
        """Where a bulk export stands: running, completed (with its URL) or failed."""
        return self._query("BulkStatus", BULK_STATUS, {"id": job_id}, mapping.parse_bulk_status)

    def download_export(self, url: str, destination: Path) -> int:
        """Streams the export's JSONL to `destination`; a failed attempt starts over.

        The URL is a signed storage link: the Shopify token is not sent with it.
        """
        destination = Path(destination)
        partial = destination.with_name(destination.name + ".part")

        def attempt() -> int:
            with self._http.stream("GET", url, timeout=self._timeout, follow_redirects=True) as response:
                raise_for_transient(response)
                if response.is_error:
                    raise UpstreamError(
                        f"Shopify's export link was refused (HTTP {response.status_code}); "
                        "it may have expired"
                    )
                size = 0
                pending = b""
                index = _ExportIndex()
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                        *complete, pending = (pending + chunk).split(b"\n")
                        for line in complete:
                            index.add(size, _check_export_line(line))
                            size += len(line) + 1
                    index.add(size, _check_export_line(pending))
                    size += len(pending)
            partial.replace(destination)
            self._downloaded = (destination, _file_signature(destination), index.finish())
            return size

        try:
            return call_with_retry(attempt, self._policy, "Shopify export download")
        finally:
            partial.unlink(missing_ok=True)

    def read_export(self, path: Path, batch_size: int) -> Iterator[list[Payload]]:
        """Order payloads from a downloaded export, `batch_size` at a time (see `read_bulk_export`).

        A file this client downloaded, unchanged since, is not read a second time to index
        it: the download already parsed every line and kept the index.
        """
        path = Path(path)
        index = None
        if self._downloaded is not None and self._downloaded[0] == path:
            _, signature, index = self._downloaded
            self._downloaded = None
            if signature != _file_signature(path):
                index = None
        return read_bulk_export(path, batch_size, index)


# ---------------------------------------------------------------------- export files


# The id leads every line Shopify writes and `__parentId` is only ever a top-level key; inside
# a string value a quote is escaped, so these cannot match text that merely looks alike.
_LEADING_ID = re.compile(rb'\{\s*"id"\s*:\s*"([^"\\]*)"')
_PARENT_ID = re.compile(rb'"__parentId"\s*:\s*"([^"\\]*)"')


def _export_line_ids(line: bytes) -> tuple[str, str | None] | None:
    """The id and parent id of one export line, or None for a blank line.

    Reads only the ids, not the whole object: the objects are parsed once, when read in
    batches, instead of twice (parsing was half the cost of reading an export).

    Raises:
        ValueError: when the line is not a JSON object with an id (an error page, a
            truncated or garbled body served as 200).
    """
    line = line.strip()
    if not line:
        return None
    if not line.endswith(b"}"):
        raise ValueError("not a whole JSON object")
    own = _LEADING_ID.match(line)
    if own is None:  # keys in another order: read the object properly
        record = json.loads(line)
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            raise ValueError("not an export object")
        parent = record.get("__parentId")
        return record["id"], parent if isinstance(parent, str) else None
    parent = _PARENT_ID.search(line, own.end())
    return own.group(1).decode(), parent.group(1).decode() if parent else None


def _check_export_line(line: bytes) -> tuple[str, str | None] | None:
    """`_export_line_ids` for a line being downloaded: anything but the export is worth another try."""
    try:
        return _export_line_ids(line)
    except ValueError as exc:
        raise TransientFailure("export download is not an orders export") from exc


def _file_signature(path: Path) -> tuple[int, int, int]:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


def _order_key(order_id: str) -> int | str:
    # Numeric keys take a third of the memory of the gid strings they come from.
    prefix, _, tail = order_id.rpartition("/")
    if prefix == "gid://shopify/Order" and tail.isascii() and tail.isdigit():
        return int(tail)
    return order_id


class _ExportIndex:
    """Where each order and each of its children sit in an export file.

    Fed one line at a time (`add`, then `finish`), so children may come before, after or
    far from their parent (since API 2026-01 Shopify no longer groups them). Only compact
    integer arrays outlive the pass; the one dict, from order id to a slot, is dropped
    by `finish`.
    """

    def __init__(self) -> None:
        self._slots: dict[int | str, int] = {}
        self.order_offsets = array("q")
        self.order_slots = array("q")
        self._child_slots = array("q")
        self._child_offsets = array("q")
        self.starts = array("q")
        self.child_offsets = array("q")

    @classmethod
    def of_file(cls, handle: IO[bytes]) -> _ExportIndex:
        """Indexes a whole file.

        Raises:
            UpstreamError: when a line of the file is not a JSON object.
        """
        index = cls()
        offset = 0
        for number, raw in enumerate(handle, start=1):
            try:
                index.add(offset, _export_line_ids(raw))
            except ValueError:
                raise UpstreamError(f"Shopify export line {number} is not a JSON object") from None
            offset += len(raw)
        return index.finish()

    def add(self, offset: int, ids: tuple[str, str | None] | None) -> None:
        """Notes the object at byte `offset` by its id and parent id (None: a blank line)."""
        if ids is None:
            return
        slots = self._slots
        own, parent = ids
        if parent is not None:
            self._child_slots.append(slots.setdefault(_order_key(parent), len(slots)))
            self._child_offsets.append(offset)
        else:
            self.order_offsets.append(offset)
            self.order_slots.append(slots.setdefault(_order_key(own), len(slots)))

    def finish(self) -> _ExportIndex:
        """Groups the children by parent; returns this index, ready to read with."""
        count = len(self._slots)
        # Counting sort of the children by slot, keeping file order within a parent.
        self.starts = array("q", bytes(8 * (count + 1)))
        for slot in self._child_slots:
            self.starts[slot + 1] += 1
        for slot in range(count):
            self.starts[slot + 1] += self.starts[slot]
        fill = array("q", self.starts)
        self.child_offsets = array("q", bytes(8 * len(self._child_offsets)))
        for slot, child_offset in zip(self._child_slots, self._child_offsets, strict=True):
            self.child_offsets[fill[slot]] = child_offset
            fill[slot] += 1
        self._slots, self._child_slots, self._child_offsets = {}, array("q"), array("q")
        return self


def _read_object(handle: IO[bytes], offset: int) -> dict[str, Any]:
    try:
        record = json.loads(handle.readline())
    except ValueError:
        record = None
    if not isinstance(record, dict):  # its ids looked right, the rest did not
        raise UpstreamError(f"Shopify export object at byte {offset} is not valid JSON")
    return record


def read_bulk_export(path: Path, batch_size: int, index: _ExportIndex | None = None) -> Iterator[list[Payload]]:
    """Order payloads from a bulk-export JSONL file, in file order, `batch_size` at a time.

    Each order gets its line items (the lines carrying its id as `__parentId`, with that
    key dropped) as `"lineItems": {"nodes": [...]}`, the shape `changed_orders` returns.
    Memory holds one batch plus a few integers per line, however large the file.

    Args:
        index: the file's index when already built (by the download); read from the file if not.

    Raises:
        UpstreamError: when a line of the file is not a JSON object.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if index is None:
        with path.open("rb") as handle:
            index = _ExportIndex.of_file(handle)
    batch: list[Payload] = []
    with path.open("rb") as orders, path.open("rb") as children:
        for offset, slot in zip(index.order_offsets, index.order_slots, strict=True):
            orders.seek(offset)
            order = _read_object(orders, offset)
            lines = []
            for at in range(index.starts[slot], index.starts[slot + 1]):
                children.seek(index.child_offsets[at])
                line = _read_object(children, index.child_offsets[at])
                line.pop("__parentId", None)
                lines.append(line)
            # The bulk query has one nested connection, lineItems: every child is a line.
            order["lineItems"] = {"nodes": lines}
            batch.append(order)
            if len(batch) >= batch_size:
                yield batch
                batch = []
    if batch:
        yield batch
