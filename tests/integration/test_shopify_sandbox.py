"""The Shopify sandbox over loopback: auth, paging, search, costs, bulk exports, faults."""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
import sys
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

import httpx
import pytest

from domain.orders import Lifecycle
from domain.reasons import ALL_REASONS, Hold, Quarantine
from integrations.sandbox.faults import Faults
from integrations.sandbox.server import serve_in_thread
from integrations.sandbox.shopify import (
    INVALID_TOKEN,
    ShopifySandbox,
    create_shopify_app,
)
from integrations.sandbox.store import (
    RETIRED_CURRENCIES,
    Store,
    StoreSpec,
    generate_store,
)
from integrations.shopify import queries

TOKEN = "shpat_sandbox"
GRAPHQL = "/admin/api/2026-10/graphql.json"

LIGHT_PAGE = """
query Light($first: Int!, $after: String, $query: String, $sort: OrderSortKeys, $reverse: Boolean) {
  orders(first: $first, after: $after, query: $query, sortKey: $sort, reverse: $reverse) {
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id updatedAt createdAt } }
  }
}
"""

ONE_ORDER = f"""
query One($id: ID!) {{
  order(id: $id) {{
    {queries.ORDER_FIELDS}
    lineItems(first: 150) {{ nodes {{ {queries.LINE_FIELDS} }} }}
  }}
}}
"""


@dataclass
class Live:
    sandbox: ShopifySandbox
    store: Store
    url: str
    client: httpx.Client

    def query(self, document: str, **variables: object) -> dict:
        response = self.client.post(GRAPHQL, json={"query": document, "variables": variables})
        assert response.status_code == 200, response.text
        return response.json()

    def data(self, document: str, **variables: object) -> dict:
        answer = self.query(document, **variables)
        assert "errors" not in answer, answer["errors"]
        return answer["data"]


@contextmanager
def serving(sandbox: ShopifySandbox) -> Iterator[Live]:
    with serve_in_thread(sandbox) as server, httpx.Client(
            base_url=server.url, headers={"X-Shopify-Access-Token": TOKEN}, timeout=10.0) as client:
        yield Live(sandbox, sandbox.store, server.url, client)
    sandbox.close()


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    # Paging tests spend far more than one bucket; a huge restore rate keeps them from waiting.
    store = generate_store(StoreSpec(orders=1500, customers=300))
    with serving(create_shopify_app(store, restore_rate=1_000_000.0)) as running:
        yield running


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def gid(number: int) -> str:
    return f"gid://shopify/Order/{number}"


def all_pages(live: Live, first: int = 100, **variables: object) -> list[dict]:
    nodes, after = [], None
    while True:
        page = live.data(LIGHT_PAGE, first=first, after=after, **variables)["orders"]
        nodes += [edge["node"] for edge in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] == (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


def is_decimal(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False


# -- auth and transport ------------------------------------------------------------------------


def test_a_missing_or_wrong_token_is_refused_like_shopify(live):
    for headers in ({}, {"X-Shopify-Access-Token": "shpat_wrong"}):
        response = httpx.post(live.url + GRAPHQL, json={"query": queries.SHOP_PING}, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"errors": INVALID_TOKEN}


def test_an_unknown_api_version_is_not_found(live):
    response = live.client.post("/admin/api/2019-13/graphql.json", json={"query": queries.SHOP_PING})
    assert response.status_code == 404


def test_a_body_without_a_query_is_a_bad_request(live):
    assert live.client.post(GRAPHQL, content=b"not json").status_code == 400
    assert live.client.post(GRAPHQL, json={"variables": {}}).status_code == 400


def test_shop_ping(live):
    answer = live.query(queries.SHOP_PING)
    assert answer["data"]["shop"] == {"id": "gid://shopify/Shop/1", "name": "Clerk Sandbox", "currencyCode": "USD"}
    assert answer["extensions"]["cost"]["requestedQueryCost"] == 1


# -- orders: paging, rendering, search ---------------------------------------------------------


def test_paging_by_updated_at_sees_every_order_exactly_once(live):
    nodes = all_pages(live, first=100, sort="UPDATED_AT")
    ids = [n["id"] for n in nodes]
    assert len(ids) == len(set(ids)) == len(live.store.orders)
    assert set(ids) == {gid(o.id) for o in live.store.orders}
    stamps = [n["updatedAt"] for n in nodes]
    assert stamps == sorted(stamps)


def test_cursors_are_opaque_base64_of_sort_value_and_id(live):
    edge = live.data(LIGHT_PAGE, first=1, sort="UPDATED_AT")["orders"]["edges"][0]
    content = json.loads(base64.b64decode(edge["cursor"]))
    assert gid(content["last_id"]) == edge["node"]["id"]
    assert content["last_value"] == edge["node"]["updatedAt"]


def test_the_clients_orders_page_gets_exactly_what_it_asks_for(live):
    answer = live.query(queries.ORDERS_PAGE, first=queries.ORDERS_PER_PAGE, query="status:any")
    cost = answer["extensions"]["cost"]
    # 2 + 10 orders x (1 + four MoneyBags of 2 + customer 3 + address 1 + risk 2 + transactions 1
    #                  + lineItems: 2 + 15 lines x (1 + two MoneyBags of 2))
    assert cost["requestedQueryCost"] == 2 + 10 * (1 + 4 * 2 + 3 + 1 + 2 + 1 + (2 + 15 * (1 + 2 * 2))) == 932
    assert 0 < cost["actualQueryCost"] < cost["requestedQueryCost"]
    assert set(cost["throttleStatus"]) == {"maximumAvailable", "currentlyAvailable", "restoreRate"}
    nodes = answer["data"]["orders"]["nodes"]
    assert len(nodes) == queries.ORDERS_PER_PAGE
    for node in nodes:
        assert re.fullmatch(r"gid://shopify/Order/\d+", node["id"])
        assert node["name"].startswith("#")
        assert set(node["totalPriceSet"]) == {"shopMoney"}
        assert set(node["totalPriceSet"]["shopMoney"]) == {"amount", "currencyCode"}
        assert node["displayFulfillmentStatus"] in {"FULFILLED", "UNFULFILLED"}
        assert node["risk"]["assessments"][0]["riskLevel"] in {"NONE", "LOW", "MEDIUM", "HIGH"}
        if node["shippingAddress"]:
            assert re.fullmatch(r"[A-Z]{2}", node["shippingAddress"]["countryCodeV2"])
        lines = node["lineItems"]
        assert len(lines["nodes"]) <= queries.LINES_PER_ORDER_PAGE
        assert all(set(line) == {"id", "sku", "title", "quantity", "requiresShipping", "originalUnitPriceSet",
                                 "totalDiscountSet"} for line in lines["nodes"])


def test_amounts_print_like_shopifys_decimal(live):
    order = next(o for o in live.store.orders if o.reason is None and o.total.endswith("0"))
    node = live.data(ONE_ORDER, id=gid(order.id))["order"]
    shown = node["totalPriceSet"]["shopMoney"]["amount"]
    assert Decimal(shown) == Decimal(order.total)
    assert shown == order.total.rstrip("0") + ("0" if order.total.endswith(".00") else "")


@pytest.mark.parametrize("template", [
    "updated_at:>'{t}'", "updated_at:>{t}", 'updated_at:>"{t}"', "updated_at:>='{t}'",
    "updated_at:<'{t}'", "created_at:>='{t}' AND updated_at:<='{u}'", "created_at:>'{t}' status:open",
])
def test_search_filters_match_the_store(live, template):
    orders = sorted(live.store.orders, key=lambda o: o.updated_at)
    t, u = orders[len(orders) // 2].updated_at, orders[-len(orders) // 10].updated_at
    text = template.format(t=iso(t), u=iso(u))
    wanted = {
        "updated_at:>'{t}'": lambda o: o.updated_at > t, "updated_at:>{t}": lambda o: o.updated_at > t,
        'updated_at:>"{t}"': lambda o: o.updated_at > t, "updated_at:>='{t}'": lambda o: o.updated_at >= t,
        "updated_at:<'{t}'": lambda o: o.updated_at < t,
        "created_at:>='{t}' AND updated_at:<='{u}'": lambda o: o.created_at >= t and o.updated_at <= u,
        "created_at:>'{t}' status:open": lambda o: o.created_at > t and not o.closed_at and not o.cancelled_at,
    }[template]
    expected = {gid(o.id) for o in live.store.orders if wanted(o)}
    for sort in ("UPDATED_AT", "CREATED_AT", "ID"):
        got = [n["id"] for n in all_pages(live, first=250, query=text, sort=sort)]
        assert len(got) == len(set(got))
        assert set(got) == expected, (text, sort)


def test_a_whole_day_matches_that_day(live):
    day = live.store.orders[len(live.store.orders) // 2].created_at.date()
    got = {n["id"] for n in all_pages(live, first=250, query=f"created_at:{day.isoformat()}")}
    assert got == {gid(o.id) for o in live.store.orders if o.created_at.date() == day}


def test_sort_keys_and_reverse(live):
    for sort, attribute in (("CREATED_AT", "createdAt"), ("UPDATED_AT", "updatedAt")):
        nodes = live.data(LIGHT_PAGE, first=50, sort=sort, reverse=True)["orders"]["edges"]
        values = [e["node"][attribute] for e in nodes]
        assert values == sorted(values, reverse=True)
        newest = max(getattr(o, "created_at" if sort == "CREATED_AT" else "updated_at") for o in live.store.orders)
        assert values[0] == iso(newest)
    by_id = [e["node"]["id"] for e in live.data(LIGHT_PAGE, first=20, sort="ID")["orders"]["edges"]]
    assert by_id == [gid(o.id) for o in sorted(live.store.orders, key=lambda o: o.id)[:20]]
    reversed_pages = all_pages(live, first=250, sort="CREATED_AT", reverse=True)
    assert len({n["id"] for n in reversed_pages}) == len(live.store.orders)


def test_an_order_edited_between_pages_shows_up_again(live):
    unfulfilled = sorted((o for o in live.store.orders if o.lifecycle is Lifecycle.OPEN and not o.reason),
                         key=lambda o: (o.updated_at, o.id))
    target = gid(unfulfilled[0].id)
    seen, after, edited = [], None, False
    while True:
        page = live.data(LIGHT_PAGE, first=20, after=after, query="status:open", sort="UPDATED_AT")["orders"]
        ids = [e["node"]["id"] for e in page["edges"]]
        seen += ids
        if target in ids and not edited:
            assert live.sandbox.edit(1, ids=[target]) == [target]
            edited = True
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen.count(target) == 2 and seen[-1] == target, "the edit moved it to a later page"
    open_now = {gid(o.id) for o in live.store.orders if not o.closed_at and not o.cancelled_at}
    assert set(seen) == open_now and len(seen) == len(open_now) + 1


def test_order_by_id_pages_its_line_items(live):
    huge = max((o for o in live.store.orders if o.lifecycle is Lifecycle.OPEN), key=lambda o: len(o.lines))
    assert len(huge.lines) > queries.LINES_PER_ORDER_PAGE
    lines, after = [], None
    while True:
        order = live.data(queries.ORDER_LINES_PAGE, id=gid(huge.id), after=after)["order"]
        page = order["lineItems"]
        lines += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert [line["sku"] for line in lines] == [line.sku for line in huge.lines]
    assert len({line["id"] for line in lines}) == len(huge.lines)


def test_an_unknown_order_is_null_and_a_bad_id_an_error(live):
    assert live.data(ONE_ORDER, id="gid://shopify/Order/1")["order"] is None
    answer = live.query(ONE_ORDER, id="not-a-gid")
    assert answer["data"] == {"order": None} and "Invalid global id" in answer["errors"][0]["message"]


def test_tricky_orders_render_their_trouble(live):
    expected = live.sandbox.expected_reasons()
    assert set(expected.values()) == set(ALL_REASONS)
    skus = {v.sku for v in live.store.variants}
    for order_id, reason in expected.items():
        node = live.data(ONE_ORDER, id=order_id)["order"]
        lines = node["lineItems"]["nodes"]
        money = [node[f]["shopMoney"]["amount"] for f in ("totalPriceSet", "totalShippingPriceSet", "totalTaxSet")]
        money += [line["originalUnitPriceSet"]["shopMoney"]["amount"] for line in lines]
        assert all(is_decimal(m) for m in money) == (reason != Quarantine.MALFORMED), (order_id, money)
        assert (node["currencyCode"] in RETIRED_CURRENCIES) == (reason == Quarantine.UNKNOWN_CURRENCY)
        assert (not lines) == (reason == Quarantine.NO_LINE_ITEMS)
        assert any(line["quantity"] <= 0 for line in lines) == (reason == Quarantine.INVALID_QUANTITY)
        assert any(line["sku"] not in skus for line in lines) == (reason == Hold.UNKNOWN_SKU)
        high = node["risk"]["assessments"][0]["riskLevel"] == "HIGH"
        assert high == (reason == Hold.HIGH_RISK)
        if high:
            assert node["risk"]["recommendation"] == "CANCEL"
        address = node["shippingAddress"]
        gap = not all(address[k] for k in ("address1", "city")) or (
            address["countryCodeV2"] not in {"HK", "AE"} and not address["zip"])
        assert gap == (reason == Hold.INCOMPLETE_ADDRESS), (order_id, address)


def test_variants_page_through_the_catalog_and_filter_by_sku(live):
    seen, after = [], None
    while True:
        page = live.data(queries.VARIANTS_PAGE, first=40, after=after)["productVariants"]
        seen += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert [v["sku"] for v in seen] == [v.sku for v in sorted(live.store.variants, key=lambda v: v.id)]
    assert all(is_decimal(v["price"]) and v["product"]["status"] == "ACTIVE" for v in seen)
    sku = live.store.variants[3].sku
    only = live.data(queries.VARIANTS_PAGE, first=5, query=f"sku:{sku}")["productVariants"]["nodes"]
    assert [v["sku"] for v in only] == [sku]


def test_unknown_search_fields_warn_and_unsupported_syntax_is_refused(live):
    answer = live.query(LIGHT_PAGE, first=5, query="colour:blue")
    assert len(answer["data"]["orders"]["edges"]) == 5
    assert answer["extensions"]["search"][0]["warnings"][0]["field"] == "colour"
    refused = live.query(LIGHT_PAGE, first=5, query="status:open OR status:closed")
    assert refused["data"] is None and "OR" in refused["errors"][0]["message"]


def test_an_invalid_cursor_or_page_size_is_an_error(live):
    assert live.query(LIGHT_PAGE, first=5, after="bm90IGEgY3Vyc29y")["errors"]
    assert live.query(LIGHT_PAGE, first=251)["errors"]
    no_first = live.query("{ orders { nodes { id } } }")
    assert "first or last" in no_first["errors"][0]["message"]


# -- costs and throttling ----------------------------------------------------------------------


def test_a_query_over_1000_points_is_refused_before_it_runs(live):
    before = live.sandbox.bucket.status()["currentlyAvailable"]
    answer = live.query(queries.ORDERS_PAGE, first=20, query="")
    error = answer["errors"][0]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert error["extensions"]["cost"] > 1000 and error["extensions"]["maxCost"] == 1000
    assert "data" not in answer
    assert live.sandbox.bucket.status()["currentlyAvailable"] >= before


def test_throttled_when_the_bucket_is_empty():
    store = generate_store(StoreSpec(orders=100, customers=40))
    with serving(create_shopify_app(store, restore_rate=1.0, max_available=1000.0)) as live:
        first = live.query(queries.ORDERS_PAGE, first=queries.ORDERS_PER_PAGE, query="")
        assert "errors" not in first
        spent = first["extensions"]["cost"]
        assert spent["requestedQueryCost"] > spent["actualQueryCost"], "the unused part is refunded"
        left = spent["throttleStatus"]["currentlyAvailable"]
        assert 1000 - spent["actualQueryCost"] <= left <= 1000 - spent["actualQueryCost"] + 2
        second = live.query(queries.ORDERS_PAGE, first=queries.ORDERS_PER_PAGE, query="")
        assert second["errors"][0]["message"] == "Throttled"
        assert second["errors"][0]["extensions"]["code"] == "THROTTLED"
        cost = second["extensions"]["cost"]
        assert cost["requestedQueryCost"] == first["extensions"]["cost"]["requestedQueryCost"]
        assert cost["actualQueryCost"] is None
        status = cost["throttleStatus"]
        assert status["maximumAvailable"] == 1000.0 and status["restoreRate"] == 1.0
        assert status["currentlyAvailable"] < cost["requestedQueryCost"]
        assert live.sandbox.stats["throttled"] == 1


# -- bulk operations ---------------------------------------------------------------------------


def run_bulk(live: Live, document: str, group_objects: bool = False) -> tuple[dict, list[dict]]:
    run = live.data(queries.BULK_RUN.replace("groupObjects: false", f"groupObjects: {str(group_objects).lower()}"),
                    query=document)["bulkOperationRunQuery"]
    assert run["userErrors"] == []
    assert run["bulkOperation"]["status"] == "CREATED"
    deadline = time.monotonic() + 20
    while True:
        status = live.data(queries.BULK_STATUS, id=run["bulkOperation"]["id"])["bulkOperation"]
        if status["status"] not in ("CREATED", "RUNNING"):
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status["status"] == "COMPLETED", status
    if status["objectCount"] == "0":
        assert status["url"] is None, "like Shopify: no file for an empty result"
        return status, []
    download = httpx.get(status["url"])  # a signed storage URL: no token
    assert download.status_code == 200
    assert int(status["fileSize"]) == len(download.content)
    return status, [json.loads(line) for line in download.text.splitlines()]


def test_bulk_export_end_to_end(live):
    status, lines = run_bulk(live, queries.BULK_ORDERS_QUERY)
    roots = [line for line in lines if "__parentId" not in line]
    children = [line for line in lines if "__parentId" in line]
    assert int(status["rootObjectCount"]) == len(roots) == len(live.store.orders)
    assert int(status["objectCount"]) == len(lines)
    assert len(children) == sum(len(o.lines) for o in live.store.orders)
    assert status["url"].startswith(live.url + "/sandbox-files/bulk/")
    stamps = [root["updatedAt"] for root in roots]
    assert stamps == sorted(stamps)
    assert all("lineItems" not in root for root in roots)
    position = {line["id"]: i for i, line in enumerate(lines) if "__parentId" not in line}
    root_positions = sorted(position.values())
    late = 0
    for index, line in enumerate(lines):
        if "__parentId" in line:
            parent_at = position[line["__parentId"]]
            assert parent_at < index, "a parent comes before its children"
            late += bisect_left(root_positions, index) > bisect_right(root_positions, parent_at)
    assert late > 0, "with groupObjects false some children come after a later order"
    assert set(children[0]) == {"id", "sku", "title", "quantity", "requiresShipping", "originalUnitPriceSet",
                                "totalDiscountSet", "__parentId"}
    by_id = {gid(o.id): o for o in live.store.orders}
    for root in roots:
        order = by_id[root["id"]]
        if order.reason != Quarantine.MALFORMED:
            assert Decimal(root["totalPriceSet"]["shopMoney"]["amount"]) == Decimal(order.total)


def test_bulk_with_group_objects_puts_children_right_after_their_parent(live):
    _, lines = run_bulk(live, queries.BULK_ORDERS_QUERY, group_objects=True)
    parent = None
    for line in lines:
        if "__parentId" in line:
            assert line["__parentId"] == parent
        else:
            parent = line["id"]


def test_a_bulk_query_selects_only_what_it_names(live):
    document = '{ productVariants(query: "sku:APP*") { edges { node { sku price } } } }'
    _, lines = run_bulk(live, document)
    by_id = sorted(live.store.variants, key=lambda v: v.id)
    assert [line["sku"] for line in lines] == [v.sku for v in by_id if v.sku.startswith("APP")]
    assert all(set(line) == {"sku", "price"} for line in lines)
    _, lines = run_bulk(live, '{ productVariants(query: "sku:NOPE") { nodes { sku } } }')
    assert lines == []
    _, lines = run_bulk(live, "{ orders(query: \"status:open\") { nodes { id name } } }")
    assert {line["id"] for line in lines} == {gid(o.id) for o in live.store.orders
                                              if not o.closed_at and not o.cancelled_at}


def test_a_second_bulk_query_while_one_runs_is_refused(live):
    # Holding the store's lock keeps the first run from finishing; HTTP would wait on it too,
    # so both starts go through the sandbox's Python face.
    with live.store.lock:
        created, errors = live.sandbox.bulk.start(queries.BULK_ORDERS_QUERY, False, live.url)
        assert errors == [] and created["status"] == "CREATED"
        refused, errors = live.sandbox.bulk.start(queries.BULK_ORDERS_QUERY, False, live.url)
        assert refused is None and errors[0]["code"] == "OPERATION_IN_PROGRESS"
    live.sandbox.bulk.wait(timeout=20)
    current = live.data("{ currentBulkOperation { id status } }")["currentBulkOperation"]
    assert current == {"id": created["id"], "status": "COMPLETED"}


@pytest.mark.parametrize(("document", "message"), [
    ("{ orders { edges { node { name lineItems { edges { node { sku } } } } } } }", "must select the 'id'"),
    ("{ orders { edges { node { id colour } } } }", "Invalid bulk query"),
    ("{ shop { id } }", "exactly one top-level connection"),
    ("{ orders { nodes { id } } productVariants { nodes { id } } }", "exactly one top-level connection"),
    ("mutation { bulkOperationRunQuery(query: \"\", groupObjects: false) { userErrors { code } } }", "one query"),
])
def test_invalid_bulk_queries_get_user_errors(live, document, message):
    run = live.data(queries.BULK_RUN, query=document)["bulkOperationRunQuery"]
    assert run["bulkOperation"] is None
    assert run["userErrors"][0]["code"] == "INVALID" and message in run["userErrors"][0]["message"]


# -- faults ------------------------------------------------------------------------------------


@pytest.fixture
def faulty() -> Iterator[Live]:
    store = generate_store(StoreSpec(orders=400, customers=60))
    with serving(create_shopify_app(store, faults=Faults(timeout_seconds=1.5))) as running:
        yield running


def ping(live: Live, timeout: float = 10.0) -> httpx.Response:
    return live.client.post(GRAPHQL, json={"query": queries.SHOP_PING}, timeout=timeout)


def test_faults_error_gives_5xx(faulty):
    faulty.sandbox.set_faults(error_rate=1.0)
    assert 500 <= ping(faulty).status_code <= 504
    assert faulty.client.get("/sandbox/stats").json()["faults"] == {"error": 1}, "control paths are never faulted"


def test_faults_malformed_gives_a_body_that_is_not_json(faulty):
    faulty.sandbox.set_faults(malformed_rate=1.0)
    response = ping(faulty)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_faults_drop_cuts_the_connection(faulty):
    faulty.sandbox.set_faults(drop_rate=1.0)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        ping(faulty)


def test_faults_timeout_outlasts_a_short_client_timeout(faulty):
    faulty.sandbox.set_faults(timeout_rate=1.0)
    with pytest.raises(httpx.ReadTimeout):
        ping(faulty, timeout=0.3)


def test_faults_throttle_answers_like_the_bucket(faulty):
    faulty.sandbox.set_faults(throttle_rate=1.0)
    answer = ping(faulty)
    assert answer.status_code == 200
    body = answer.json()
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert body["extensions"]["cost"]["requestedQueryCost"] == 1
    assert faulty.sandbox.stats["throttled"] == 1


# -- control endpoints -------------------------------------------------------------------------


def test_control_endpoints(faulty):
    client = faulty.client
    rates = client.post("/sandbox/faults", json={"error_rate": 0.25}).json()
    assert rates["error_rate"] == 0.25 and faulty.sandbox.faults.error_rate == 0.25
    client.post("/sandbox/faults", json={"error_rate": 0})
    ping(faulty)
    stats = client.get("/sandbox/stats").json()
    assert stats["requests"] == 1 and stats["graphql"] == 1 and stats["orders"] == 400

    newest = max(o.updated_at for o in faulty.store.orders)
    edited = client.post("/sandbox/edit", json={"count": 2}).json()["edited"]
    assert len(edited) == 2
    for order_id in edited:
        node = faulty.data(ONE_ORDER, id=order_id)["order"]
        assert node["updatedAt"] > iso(newest)
    since = iso(newest)
    changed = faulty.data(LIGHT_PAGE, first=10, query=f"updated_at:>'{since}'")["orders"]["edges"]
    assert {e["node"]["id"] for e in changed} == set(edited)

    created = client.post("/sandbox/orders", json={"count": 3}).json()["created"]
    assert len(created) == 3
    assert all(faulty.data(ONE_ORDER, id=i)["order"]["displayFulfillmentStatus"] == "UNFULFILLED" for i in created)
    assert client.get("/sandbox/stats").json()["orders"] == 403

    expected = client.get("/sandbox/expected").json()
    assert set(expected.values()) == set(ALL_REASONS)
    assert all(k.startswith("gid://shopify/Order/") for k in expected)
    catalog = client.get("/sandbox/catalog.csv").text.splitlines()
    assert catalog[0] == "sku,title,price,currency,cost,weight_grams,barcode,category,supplier,lead_time_days,moq,pack_size"
    assert len(catalog) == len(faulty.store.variants) + 1
    assert client.get("/sandbox/stock.csv").text.splitlines()[0] == "sku,on_hand"
    assert client.post("/sandbox/faults", json={"error_rate": "often"}).status_code == 400
    assert client.post("/sandbox/edit", json={"ids": ["not-a-gid"]}).status_code == 400
    assert client.post("/sandbox/orders", json=[1]).status_code == 400


def test_added_orders_arrive_after_every_earlier_change(faulty):
    later = datetime.now(UTC) + timedelta(days=400)
    created = faulty.sandbox.add_orders(2, at=later)
    nodes = faulty.data(LIGHT_PAGE, first=2, sort="UPDATED_AT", reverse=True)["orders"]["edges"]
    assert {e["node"]["id"] for e in nodes} == set(created)
    assert nodes[0]["node"]["createdAt"] == iso(later)


# -- python -m integrations.sandbox ------------------------------------------------------------


def test_the_module_serves_in_the_foreground_and_stops_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "integrations.sandbox", "shopify", "--orders", "300", "--seed", "3", "--port", "0"],
        stdout=subprocess.PIPE, text=True)
    try:
        announced = json.loads(process.stdout.readline())
        assert announced["token"] == TOKEN and announced["api_version"] == "2026-10"
        response = httpx.post(announced["url"] + GRAPHQL, json={"query": queries.SHOP_PING},
                              headers={"X-Shopify-Access-Token": announced["token"]})
        assert response.json()["data"]["shop"]["currencyCode"] == "USD"
        assert httpx.get(announced["url"] + "/sandbox/stats").json()["orders"] == 300
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        process.kill()
        process.wait()
