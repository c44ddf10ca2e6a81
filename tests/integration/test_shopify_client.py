"""The Shopify client: over httpx.MockTransport for throttling, retries, paging and exports,
then end to end against the Shopify sandbox, with and without injected faults."""

from __future__ import annotations

import json
import random
import socket
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from integrations.protocols import OrderExport, OrderSource, Payload, Unreadable, UpstreamError
from integrations.sandbox.faults import Faults
from integrations.settings import Settings
from integrations.sandbox.server import serve_in_thread
from integrations.sandbox.shopify import ShopifySandbox, create_shopify_app
from integrations.sandbox.store import Store, StoreSpec, generate_store
from integrations.shopify import queries
from integrations.shopify.client import ShopifyClient, read_bulk_export
from integrations.shopify.mapping import parse_order

SHOP = "https://clerk-test.myshopify.com"
TOKEN = "shpat_test_token"


# ------------------------------------------------------------------------- fakes


class Clock:
    """Time that moves only when the client sleeps (or a test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def cost(requested: float = 10, available: float = 990, maximum: float = 1000, rate: float = 100) -> dict:
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": requested,
            "throttleStatus": {"maximumAvailable": maximum, "currentlyAvailable": available, "restoreRate": rate},
        }
    }


def ok(data: dict, extensions: dict | None = None) -> httpx.Response:
    return httpx.Response(200, json={"data": data, "extensions": extensions or cost()})


def throttled(requested: float, available: float, rate: float = 100) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": None,
                                    "throttleStatus": {"maximumAvailable": 1000, "currentlyAvailable": available,
                                                       "restoreRate": rate}}},
        },
    )


Handler = Callable[[str, dict[str, Any], httpx.Request], httpx.Response]


class FakeShopify:
    """Routes each GraphQL request to a handler by operation name, recording what it saw."""

    def __init__(self, handler: Handler):
        self.handler = handler
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.headers: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.headers.append(request.headers)
        if request.method == "GET":
            return self.handler("GET", {}, request)
        body = json.loads(request.content)
        name = next(n for n, doc in queries.ALL_DOCUMENTS.items() if doc == body["query"])
        self.requests.append((name, body["variables"]))
        return self.handler(name, body["variables"], request)

    def names(self) -> list[str]:
        return [name for name, _ in self.requests]


def make_client(fake: FakeShopify | Callable[[httpx.Request], httpx.Response], clock: Clock | None = None,
                **options: Any) -> ShopifyClient:
    clock = clock or Clock()
    http = httpx.Client(transport=httpx.MockTransport(fake))
    return ShopifyClient(SHOP, TOKEN, http=http, sleep=clock.sleep, clock=clock, rng=random.Random(3), **options)


SHOP_DATA = {"shop": {"id": "gid://shopify/Shop/1", "name": "Clerk Test", "currencyCode": "EUR"}}


# ---------------------------------------------------------------------- protocol


def test_client_implements_the_ports() -> None:
    client = make_client(FakeShopify(lambda *_: ok(SHOP_DATA)))
    assert isinstance(client, OrderSource) and isinstance(client, OrderExport)
    assert client.channel == "shopify"


def test_requests_carry_the_token_and_reach_the_versioned_endpoint() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok(SHOP_DATA)

    client = make_client(handler)
    client.ping()
    (request,) = seen
    assert str(request.url) == f"{SHOP}/admin/api/2026-10/graphql.json"
    assert request.headers["X-Shopify-Access-Token"] == TOKEN
    assert json.loads(request.content) == {"query": queries.SHOP_PING, "variables": {}}


# ------------------------------------------------------------------------- ping


@pytest.mark.parametrize("status", [401, 403])
def test_refused_token_names_the_variable_without_retrying(status: int) -> None:
    fake = FakeShopify(lambda *_: httpx.Response(status, json={"errors": "[API] Invalid API key or access token"}))
    with pytest.raises(UpstreamError) as caught:
        make_client(fake).ping()
    assert str(caught.value) == "Shopify refused the access token (CLERK_SHOPIFY_ACCESS_TOKEN)"
    assert caught.value.setting == "CLERK_SHOPIFY_ACCESS_TOKEN"
    assert len(fake.requests) == 1


def test_not_found_names_the_shop_url_or_the_version() -> None:
    fake = FakeShopify(lambda *_: httpx.Response(404, text="Not Found"))
    with pytest.raises(UpstreamError) as caught:
        make_client(fake).ping()
    assert caught.value.setting == "CLERK_SHOPIFY_SHOP_URL" and "CLERK_SHOPIFY_SHOP_URL" in str(caught.value)
    with pytest.raises(UpstreamError) as caught:
        make_client(fake, api_version="2026-13").ping()
    assert caught.value.setting == "CLERK_SHOPIFY_API_VERSION" and "CLERK_SHOPIFY_API_VERSION" in str(caught.value)
    assert len(fake.requests) == 2


def test_unreachable_shop_names_the_url_without_retrying() -> None:
    calls = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("[Errno 111] Connection refused")

    clock = Clock()
    with pytest.raises(UpstreamError) as caught:
        make_client(refuse, clock).ping()
    assert caught.value.setting == "CLERK_SHOPIFY_SHOP_URL" and "CLERK_SHOPIFY_SHOP_URL" in str(caught.value)
    assert len(calls) == 1 and clock.slept == []


@pytest.mark.parametrize("url", ["clerk-test.myshopify.com", "ftp://clerk-test.myshopify.com", "https://"])
def test_a_url_that_cannot_be_shopify_names_the_variable(url: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        ShopifyClient(url, TOKEN)
    assert caught.value.setting == "CLERK_SHOPIFY_SHOP_URL"


def test_from_settings() -> None:
    settings = Settings(shopify_shop_url=SHOP + "/", shopify_access_token=TOKEN, shopify_api_version="2026-07",
                        http_timeout_seconds=5.0, http_max_attempts=2)
    with ShopifyClient.from_settings(settings) as client:
        assert str(client.endpoint) == f"{SHOP}/admin/api/2026-07/graphql.json"
    for missing, setting in [("shopify_shop_url", "CLERK_SHOPIFY_SHOP_URL"),
                             ("shopify_access_token", "CLERK_SHOPIFY_ACCESS_TOKEN")]:
        with pytest.raises(UpstreamError) as caught:
            ShopifyClient.from_settings(settings.model_copy(update={missing: None}))
        assert caught.value.setting == setting and setting in str(caught.value)


# -------------------------------------------------------------------- throttling


def test_bucket_model_waits_just_long_enough_before_an_expensive_query() -> None:
    clock = Clock()
    fake = FakeShopify(lambda name, *_: ok(SHOP_DATA, cost(requested=900, available=100, rate=50)))
    client = make_client(fake, clock)
    client.ping()  # nothing known yet: no wait
    assert clock.slept == []
    client.ping()  # 900 expected, 100 available, 50 restored a second
    assert clock.slept == [pytest.approx(16.0)]
    clock.now += 10  # 500 points restored meanwhile: only 300 more needed
    client.ping()
    assert clock.slept[1:] == [pytest.approx(6.0)]
    clock.now += 100  # the bucket is full again, capped at its maximum
    client.ping()
    assert len(clock.slept) == 2


def test_first_query_of_an_operation_is_paced_by_its_static_cost() -> None:
    clock = Clock()
    fake = FakeShopify(lambda name, *_: ok(SHOP_DATA, cost(requested=1, available=50, rate=100))
                       if name == "ShopPing" else ok({"orders": {"pageInfo": {"hasNextPage": False,
                                                                               "endCursor": None}, "nodes": []}}))
    client = make_client(fake, clock)
    client.ping()
    client.changed_orders(None, None, 10)
    # ORDERS_PAGE requests 953 points by the static estimate (933 before each order read its payment); 50 were left.
    assert clock.slept == [pytest.approx((953 - 50) / 100)]


def test_throttled_is_waited_out_and_costs_no_transient_attempt() -> None:
    clock = Clock()
    answers = iter([throttled(900, 0), throttled(900, 850), ok(SHOP_DATA)])
    fake = FakeShopify(lambda *_: next(answers))
    client = make_client(fake, clock, max_attempts=1)
    client.ping()
    assert len(fake.requests) == 3
    assert clock.slept == [pytest.approx(9.0), pytest.approx(0.5)]


def test_a_bare_429_backs_off_and_retries() -> None:
    clock = Clock()
    answers = iter([httpx.Response(429, headers={"Retry-After": "2"}), ok(SHOP_DATA)])
    client = make_client(FakeShopify(lambda *_: next(answers)), clock, max_attempts=1)
    client.ping()
    assert clock.slept == [2.0]


def test_endless_throttling_gives_up() -> None:
    clock = Clock()
    fake = FakeShopify(lambda *_: throttled(10, 0))
    client = make_client(fake, clock)
    with pytest.raises(UpstreamError, match="kept throttling"):
        client.ping()
    assert len(fake.requests) == client.max_throttle_waits + 1


# ---------------------------------------------------------------- transient faults


def test_transient_failures_are_retried_with_jitter() -> None:
    clock = Clock()

    class Drop(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield b'{"data": '
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    answers: Iterator[Any] = iter([
        httpx.Response(502, text="Bad Gateway"),
        httpx.ReadTimeout("timed out"),
        httpx.Response(200, content=b'{"data": {"shop": {"id": "gid://'),
        httpx.Response(200, stream=Drop()),
        httpx.Response(200, json={"errors": [{"message": "Internal error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}),
        ok(SHOP_DATA),
    ])

    def handler(*_: Any) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = make_client(FakeShopify(handler), clock)
    client.ping()
    assert len(clock.slept) == 5 and all(0 <= s <= 10 for s in clock.slept)


def test_transient_failures_give_up_after_max_attempts() -> None:
    fake = FakeShopify(lambda *_: httpx.Response(503))
    with pytest.raises(UpstreamError, match="after 3 attempts"):
        make_client(fake, max_attempts=3).ping()
    assert len(fake.requests) == 3


def test_graphql_errors_are_upstream_errors_with_their_messages() -> None:
    body = {"errors": [{"message": "Field 'bogus' doesn't exist on type 'Shop'",
                        "extensions": {"code": "undefinedField"}}]}
    fake = FakeShopify(lambda *_: httpx.Response(200, json=body))
    with pytest.raises(UpstreamError, match="Field 'bogus' doesn't exist"):
        make_client(fake).ping()
    assert len(fake.requests) == 1


def test_other_client_errors_are_not_retried() -> None:
    fake = FakeShopify(lambda *_: httpx.Response(422, json={"errors": "unprocessable"}))
    with pytest.raises(UpstreamError, match="HTTP 422"):
        make_client(fake).ping()
    assert len(fake.requests) == 1


# ------------------------------------------------------------------- pagination


def money(amount: str) -> dict:
    return {"shopMoney": {"amount": amount, "currencyCode": "USD"}}


def line_node(order_no: int, line_no: int) -> dict:
    return {"id": f"gid://shopify/LineItem/{order_no * 1000 + line_no}", "sku": f"SKU-{line_no}", "title": "Thing",
            "quantity": 1, "requiresShipping": True, "originalUnitPriceSet": money("1.00"),
            "totalDiscountSet": money("0.00")}


def order_node(number: int, lines: int) -> dict:
    return {"id": f"gid://shopify/Order/{number}", "name": f"#{number}",
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": f"2026-01-{1 + number % 28:02d}T10:00:00Z",
            "processedAt": None, "cancelledAt": None, "closed": False, "closedAt": None,
            "displayFulfillmentStatus": "UNFULFILLED", "currencyCode": "USD", "taxesIncluded": False,
            "requiresShipping": True, "totalPriceSet": money(f"{lines}.00"), "totalShippingPriceSet": money("0"),
            "totalTaxSet": money("0"), "totalDiscountsSet": money("0"), "email": None, "phone": None,
            "customer": None, "shippingAddress": None, "risk": None,
            "lineItems": [line_node(number, i) for i in range(lines)]}


class PagedShop:
    """Orders served a page at a time, lines capped per page as Shopify does."""

    def __init__(self, orders: list[dict]):
        self.orders = orders

    def __call__(self, name: str, variables: dict, request: httpx.Request) -> httpx.Response:
        if name == "OrdersPage":
            start = int(variables["after"] or 0)
            chunk = self.orders[start:start + variables["first"]]
            end = start + len(chunk)
            nodes = [self._with_lines(o, 0, queries.LINES_PER_ORDER_PAGE) for o in chunk]
            return ok({"orders": {"pageInfo": {"hasNextPage": end < len(self.orders), "endCursor": str(end)},
                                  "nodes": nodes}})
        if name == "OrderLinesPage":
            order = next(o for o in self.orders if o["id"] == variables["id"])
            start = int(variables["after"].rsplit(":", 1)[1])
            return ok({"order": self._with_lines(order, start, queries.LINES_PER_FOLLOW_UP)})
        raise AssertionError(name)

    @staticmethod
    def _with_lines(order: dict, start: int, size: int) -> dict:
        lines = order["lineItems"][start:start + size]
        end = start + len(lines)
        more = end < len(order["lineItems"])
        return {**order, "lineItems": {"pageInfo": {"hasNextPage": more, "endCursor": f"{order['id']}:{end}"},
                                       "nodes": lines}}


def test_changed_orders_pages_and_completes_long_orders() -> None:
    orders = [order_node(n, 130 if n == 7 else 2) for n in range(1, 26)]
    fake = FakeShopify(PagedShop(orders))
    client = make_client(fake)
    since = datetime(2026, 1, 1, tzinfo=UTC)

    first = client.changed_orders(since, None, 12)
    assert [p["id"] for p in first.payloads] == [o["id"] for o in orders[:12]]
    assert first.cursor == "12"
    long_order = first.payloads[6]
    assert [n["id"] for n in long_order["lineItems"]["nodes"]] == [n["id"] for n in orders[6]["lineItems"]]
    assert set(long_order["lineItems"]) == {"nodes"}, "one shape: no pageInfo"
    assert first.high_water == max(datetime.fromisoformat(o["updatedAt"]) for o in orders[:12])

    rest = client.changed_orders(since, first.cursor, 100)
    assert [p["id"] for p in rest.payloads] == [o["id"] for o in orders[12:]]
    assert rest.cursor is None
    # Page sizes shrink to what the limit still allows; lines follow up in pages of 100.
    assert [v["first"] for n, v in fake.requests if n == "OrdersPage"] == [10, 2, 10, 10]
    assert [v["after"] for n, v in fake.requests if n == "OrderLinesPage"] == [
        "gid://shopify/Order/7:15", "gid://shopify/Order/7:115"]
    assert {v["query"] for n, v in fake.requests if n == "OrdersPage"} == {"updated_at:>='2026-01-01T00:00:00Z'"}
    assert all(client.parse_order(p).lines for p in first.payloads + rest.payloads)


def test_an_order_deleted_while_its_lines_are_fetched_is_left_out() -> None:
    orders = [order_node(1, 2), order_node(2, 40), order_node(3, 2)]
    shop = PagedShop(orders)

    def handler(name: str, variables: dict, request: httpx.Request) -> httpx.Response:
        if name == "OrderLinesPage":
            return ok({"order": None})
        return shop(name, variables, request)

    page = make_client(FakeShopify(handler)).changed_orders(None, None, 10)
    assert [p["id"] for p in page.payloads] == ["gid://shopify/Order/1", "gid://shopify/Order/3"]


def test_changed_orders_of_an_empty_shop() -> None:
    fake = FakeShopify(PagedShop([]))
    page = make_client(fake).changed_orders(None, None, 50)
    assert (page.payloads, page.cursor, page.high_water) == ([], None, None)
    assert fake.requests[0][1]["query"] == ""


def test_an_incomplete_page_is_retried() -> None:
    answers = iter([ok({"orders": None}), ok({"orders": {"pageInfo": {"hasNextPage": False, "endCursor": None},
                                                         "nodes": [order_node(1, 1) | {"lineItems": {"nodes": []}}]}})])
    fake = FakeShopify(lambda *_: next(answers))
    assert len(make_client(fake).changed_orders(None, None, 5).payloads) == 1


# ---------------------------------------------------------------------- catalog


def test_catalog_pages_price_in_the_shop_currency() -> None:
    def handler(name: str, variables: dict, request: httpx.Request) -> httpx.Response:
        if name == "ShopPing":
            return ok(SHOP_DATA)
        after = variables["after"]
        nodes = [{"id": f"gid://shopify/ProductVariant/{after or 0}{i}", "sku": f"S{after or 0}{i}" if i else None,
                  "title": "Red", "price": "4.50", "barcode": None,
                  "product": {"id": "gid://shopify/Product/1", "title": "Sock", "handle": "sock",
                              "productType": "Socks", "status": "ACTIVE"}} for i in range(3)]
        return ok({"productVariants": {"pageInfo": {"hasNextPage": after is None, "endCursor": "p2"},
                                       "nodes": nodes}})

    fake = FakeShopify(handler)
    pages = list(make_client(fake).catalog_pages())
    assert [[item.sku for item in page] for page in pages] == [["S01", "S02"], ["Sp21", "Sp22"]]
    assert {item.currency for page in pages for item in page} == {"EUR"}
    assert pages[0][0].title == "Sock — Red"
    assert fake.names() == ["ShopPing", "VariantsPage", "VariantsPage"]


# -------------------------------------------------------------------- bulk export


def bulk_node(status: str, **fields: Any) -> dict:
    return {"id": "gid://shopify/BulkOperation/1", "status": status, "errorCode": None,
            "createdAt": "2026-03-01T00:00:00Z", "completedAt": None, "objectCount": "0",
            "rootObjectCount": "0", "fileSize": None, "url": None, "partialDataUrl": None, **fields}


def test_start_export_runs_the_bulk_query() -> None:
    fake = FakeShopify(lambda *_: ok({"bulkOperationRunQuery": {
        "bulkOperation": {"id": "gid://shopify/BulkOperation/1", "status": "CREATED",
                          "createdAt": "2026-03-01T00:00:00Z"}, "userErrors": []}}))
    status = make_client(fake).start_export()
    assert (status.job_id, status.state) == ("gid://shopify/BulkOperation/1", "running")
    assert fake.requests == [("BulkRun", {"query": queries.BULK_ORDERS_QUERY})]


def test_start_export_adopts_the_export_already_running() -> None:
    def handler(name: str, *_: Any) -> httpx.Response:
        if name == "BulkRun":
            return ok({"bulkOperationRunQuery": {"bulkOperation": None, "userErrors": [
                {"field": None, "message": "already in progress", "code": "OPERATION_IN_PROGRESS"}]}})
        running = bulk_node("RUNNING", id="gid://shopify/BulkOperation/8", query=queries.BULK_ORDERS_QUERY)
        return ok({"currentBulkOperation": running})

    fake = FakeShopify(handler)
    assert make_client(fake).start_export().job_id == "gid://shopify/BulkOperation/8"
    assert fake.names() == ["BulkRun", "CurrentBulk"]


def test_start_export_will_not_adopt_someone_elses_export() -> None:
    def handler(name: str, *_: Any) -> httpx.Response:
        if name == "BulkRun":
            return ok({"bulkOperationRunQuery": {"bulkOperation": None, "userErrors": [
                {"field": None, "message": "already in progress", "code": "OPERATION_IN_PROGRESS"}]}})
        return ok({"currentBulkOperation": bulk_node("RUNNING", query="{ products { edges { node { id } } } }")})

    with pytest.raises(UpstreamError, match="already in progress"):
        make_client(FakeShopify(handler)).start_export()


def test_start_export_refused() -> None:
    fake = FakeShopify(lambda *_: ok({"bulkOperationRunQuery": {"bulkOperation": None, "userErrors": [
        {"field": ["query"], "message": "Bulk queries cannot contain more than 5 connections", "code": "INVALID"}]}}))
    with pytest.raises(UpstreamError, match="more than 5 connections"):
        make_client(fake).start_export()


def test_export_status_reads_the_operation() -> None:
    node = bulk_node("COMPLETED", url="https://storage.example/bulk.jsonl", rootObjectCount="42")
    fake = FakeShopify(lambda *_: ok({"bulkOperation": node}))
    status = make_client(fake).export_status("gid://shopify/BulkOperation/1")
    assert (status.state, status.url, status.root_count) == ("completed", "https://storage.example/bulk.jsonl", 42)
    assert fake.requests == [("BulkStatus", {"id": "gid://shopify/BulkOperation/1"})]


def test_download_streams_without_the_token_and_restarts_after_a_drop(tmp_path: Path) -> None:
    content = b"".join(json.dumps({"id": f"gid://shopify/Order/{i}"}).encode() + b"\n" for i in range(2000))
    attempts = []

    class Drop(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield content[:5000]
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    answers: list[Callable[[], httpx.Response]] = [
        lambda: httpx.Response(503),
        lambda: httpx.Response(200, stream=Drop()),
        lambda: httpx.Response(200, content=b'{"data": {"orders": {"nodes": [{"id": "gid://'),
        lambda: httpx.Response(200, json={"errors": [{"message": "Throttled"}]}),
        lambda: httpx.Response(200, content=content),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        return answers[len(attempts) - 1]()

    destination = tmp_path / "export.jsonl"
    size = make_client(handler).download_export("https://storage.example/bulk.jsonl?sig=abc", destination)
    assert size == len(content) and destination.read_bytes() == content
    assert all("X-Shopify-Access-Token" not in r.headers for r in attempts)
    assert len(attempts) == 5 and list(tmp_path.iterdir()) == [destination]


def test_an_expired_download_link_is_not_retried(tmp_path: Path) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(403, text="AccessDenied")

    with pytest.raises(UpstreamError, match="expired"):
        make_client(handler).download_export("https://storage.example/x.jsonl", tmp_path / "x.jsonl")
    assert len(calls) == 1 and list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------- export files


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_read_export_groups_children_wherever_they_are(tmp_path: Path) -> None:
    a, b, c, d = (f"gid://shopify/Order/{n}" for n in (1, 2, 3, 4))

    def child(n: int, parent: str) -> dict:
        return {"id": f"gid://shopify/LineItem/{n}", "sku": f"S{n}", "__parentId": parent}

    records = [
        child(21, b),  # before its parent
        {"id": a, "name": "#1"},
        child(11, a),  # right after its parent
        {"id": b, "name": "#2"},
        {"id": c, "name": "#3"},
        child(12, a),  # far from its parent
        {"id": d, "name": "#4"},  # no lines at all
        child(22, b),
        child(99, "gid://shopify/Order/404"),  # orphan: its order is not in the file
        child(13, a),
    ]
    path = write_jsonl(tmp_path / "export.jsonl", records)
    batches = list(ShopifyClient(SHOP, TOKEN).read_export(path, 3))
    assert [len(batch) for batch in batches] == [3, 1]
    orders = [order for batch in batches for order in batch]
    assert [o["id"] for o in orders] == [a, b, c, d]
    assert [[n["id"] for n in o["lineItems"]["nodes"]] for o in orders] == [
        ["gid://shopify/LineItem/11", "gid://shopify/LineItem/12", "gid://shopify/LineItem/13"],
        ["gid://shopify/LineItem/21", "gid://shopify/LineItem/22"],
        [],
        [],
    ]
    assert all("__parentId" not in n for o in orders for n in o["lineItems"]["nodes"])


def test_read_export_gives_the_paged_shape(tmp_path: Path) -> None:
    order = order_node(5, 2)
    lines = order.pop("lineItems")
    path = write_jsonl(tmp_path / "e.jsonl", [order] + [line | {"__parentId": order["id"]} for line in lines])
    (payload,) = next(read_bulk_export(path, 10))
    assert payload == order | {"lineItems": {"nodes": lines}}


def test_read_export_rejects_a_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text('{"id": "gid://shopify/Order/1"}\n{"id": "gid://shop\n')
    with pytest.raises(UpstreamError, match="line 2"):
        list(read_bulk_export(path, 10))
    path.write_text("")
    assert list(read_bulk_export(path, 10)) == [], "an empty export is no orders"


def _export(path: Path, orders: int, rng: random.Random) -> Path:
    """An export of realistic-sized orders whose lines land anywhere up to ~100 lines away."""
    order = order_node(0, 0)
    order.pop("lineItems")
    order["note"] = "x" * 600
    pending: list[str] = []
    with path.open("w") as out:
        for number in range(orders):
            out.write(json.dumps(order | {"id": f"gid://shopify/Order/{number}"}) + "\n")
            pending += [json.dumps(line_node(number, i) | {"__parentId": f"gid://shopify/Order/{number}"})
                        for i in range(2)]
            if len(pending) > 200:
                rng.shuffle(pending)
                out.writelines(p + "\n" for p in pending[:100])
                del pending[:100]
        out.writelines(p + "\n" for p in pending)
    return path


def _peak_while_reading(path: Path, batch_size: int) -> tuple[int, int]:
    tracemalloc.start()
    try:
        count = sum(len(batch) for batch in read_bulk_export(path, batch_size))
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_read_export_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    rng = random.Random(5)
    small = _export(tmp_path / "small.jsonl", 200, rng)
    large = _export(tmp_path / "large.jsonl", 2000, rng)
    small_count, small_peak = _peak_while_reading(small, 50)
    large_count, large_peak = _peak_while_reading(large, 50)
    assert (small_count, large_count) == (200, 2000)
    # Ten times the orders; holding them all would take ten times the memory.
    assert large_peak < 1.5 * small_peak, (small_peak, large_peak)


# --------------------------------------------------------------- against the sandbox

SANDBOX_TOKEN = "shpat_sandbox_test"


@contextmanager
def sandbox(store: Store, faults: Faults | None = None) -> Iterator[tuple[ShopifySandbox, str]]:
    # A generous restore rate: these tests are about correctness, not about waiting.
    app = create_shopify_app(store, token=SANDBOX_TOKEN, faults=faults, restore_rate=50_000, max_available=2000)
    try:
        with serve_in_thread(app) as server:
            yield app, server.url
    finally:
        app.close()


@pytest.fixture(scope="module")
def shared_store() -> Store:
    """A store no test changes (the incremental test makes its own)."""
    return generate_store(StoreSpec(orders=150, seed=11))


def every_order(client: ShopifyClient, limit: int = 60) -> list[Payload]:
    payloads: list[Payload] = []
    cursor = None
    while True:
        page = client.changed_orders(None, cursor, limit)
        payloads += page.payloads
        cursor = page.cursor
        if cursor is None:
            return payloads


def export_everything(client: ShopifyClient, directory: Path) -> list[Payload]:
    status = client.start_export()
    deadline = time.monotonic() + 30
    while status.state == "running":
        assert time.monotonic() < deadline, "the export never finished"
        time.sleep(0.05)
        status = client.export_status(status.job_id)
    assert status.state == "completed" and status.url, status
    path = directory / "orders.jsonl"
    assert client.download_export(status.url, path) == path.stat().st_size
    return [payload for batch in client.read_export(path, 64) for payload in batch]


@pytest.fixture(scope="module")
def fault_free(shared_store: Store, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Payload], list[Payload]]:
    """What paging and the bulk export return from the shared store without faults."""
    with sandbox(shared_store) as (app, url), ShopifyClient(url, SANDBOX_TOKEN) as client:
        client.ping()
        return every_order(client), export_everything(client, tmp_path_factory.mktemp("export"))


@pytest.mark.slow
def test_paging_and_bulk_export_give_the_same_orders(fault_free: tuple[list[Payload], list[Payload]],
                                                     shared_store: Store) -> None:
    paged, exported = fault_free
    assert len(paged) == len({p["id"] for p in paged}) == len(shared_store.orders)
    by_id = {p["id"]: p for p in paged}
    assert {p["id"] for p in exported} == set(by_id)
    assert all(by_id[p["id"]] == p for p in exported), "both paths give one shape"
    assert any(len(p["lineItems"]["nodes"]) > queries.LINES_PER_ORDER_PAGE for p in paged), "long orders completed"
    readable = 0
    for payload in paged:
        try:
            assert parse_order(payload).external_id == payload["id"]
            readable += 1
        except Unreadable as exc:
            assert exc.reason == "malformed" and exc.external_id == payload["id"]
    assert readable >= 0.8 * len(paged)


@pytest.mark.slow
def test_incremental_sync_sees_each_change_once() -> None:
    store = generate_store(StoreSpec(orders=150, seed=12))
    with sandbox(store) as (app, url), ShopifyClient(url, SANDBOX_TOKEN) as client:
        seen: list[str] = []
        cursor = None
        high_water = None
        while True:
            page = client.changed_orders(None, cursor, 45)
            seen += [p["id"] for p in page.payloads]
            high_water = max(filter(None, [high_water, page.high_water]))
            cursor = page.cursor
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == 150
        assert high_water == max(o.updated_at for o in store.orders)

        changed = set(app.edit(4)) | set(app.add_orders(3))
        again = client.changed_orders(high_water, None, 100)
        ids = [p["id"] for p in again.payloads]
        assert len(ids) == len(set(ids))
        assert changed <= set(ids)
        assert all(datetime.fromisoformat(p["updatedAt"]) >= high_water.replace(microsecond=0)
                   for p in again.payloads)
        assert again.cursor is None and again.high_water > high_water


@pytest.mark.slow
def test_twenty_percent_faults_change_nothing(shared_store: Store, fault_free: tuple[list[Payload], list[Payload]],
                                              tmp_path: Path) -> None:
    paged, exported = fault_free
    # Seed 7 draws every kind of fault within the first 40 requests, which paging sends
    # in a fixed order (the bulk part's share depends on how often it polls). Should the
    # sandbox draw differently one day, pick a seed that does the same again.
    faults = Faults.uniform(0.2, seed=7, timeout_seconds=0.4)
    with sandbox(shared_store, faults) as (app, url), \
            ShopifyClient(url, SANDBOX_TOKEN, timeout=0.15, max_attempts=8) as client:
        client.ping()
        assert every_order(client, limit=4) == paged  # small pages: more requests to fault
        assert export_everything(client, tmp_path) == exported
    assert set(faults.injected) == {"error", "timeout", "throttle", "malformed", "drop"}, faults.injected


@pytest.mark.slow
def test_wrong_settings_fail_fast_naming_the_variable(shared_store: Store) -> None:
    with sandbox(shared_store) as (app, url):
        with ShopifyClient(url, "shpat_wrong") as client, pytest.raises(UpstreamError) as caught:
            client.ping()
        assert caught.value.setting == "CLERK_SHOPIFY_ACCESS_TOKEN"
        assert "CLERK_SHOPIFY_ACCESS_TOKEN" in str(caught.value)
        with ShopifyClient(url, SANDBOX_TOKEN, api_version="2026-1O") as client, pytest.raises(UpstreamError) as caught:
            client.ping()
        assert caught.value.setting == "CLERK_SHOPIFY_API_VERSION"
        with ShopifyClient(url + "/shop", SANDBOX_TOKEN) as client, pytest.raises(UpstreamError) as caught:
            client.ping()
        assert caught.value.setting == "CLERK_SHOPIFY_SHOP_URL"
        requests_seen = app.stats["requests"]
        assert requests_seen == 3, "refusals are never retried"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with ShopifyClient(f"http://127.0.0.1:{closed_port}", SANDBOX_TOKEN) as client, \
            pytest.raises(UpstreamError) as caught:
        client.ping()
    assert caught.value.setting == "CLERK_SHOPIFY_SHOP_URL"


def test_catalog_sync_reads_only_variants_changed_since(shared_store: Store) -> None:
    with sandbox(shared_store) as (app, url), ShopifyClient(url, SANDBOX_TOKEN) as client:
        everything = [item for page in client.catalog_pages() for item in page]
        newest = max(item.updated_at for item in everything)
        recent = [item for page in client.catalog_pages(newest) for item in page]
        future = [item for page in client.catalog_pages(newest + timedelta(days=1)) for item in page]
    assert len(everything) == len({v.sku for v in shared_store.variants})
    assert 1 <= len(recent) < len(everything)
    assert all(item.updated_at >= newest.replace(microsecond=0) for item in recent)
    assert future == []
