"""The WooCommerce sandbox over loopback: auth, paging headers, filters, rendering, writes, faults."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from domain.orders import Lifecycle, Risk
from domain.reasons import ALL_REASONS
from integrations.sandbox.faults import Faults
from integrations.sandbox.server import serve_in_thread
from integrations.sandbox.store import RETIRED_CURRENCIES, Store, StoreSpec, generate_store
from integrations.sandbox.woocommerce import WooCommerceSandbox, create_woocommerce_app
from integrations.sandbox.woocommerce.render import is_variable

API = "/wp-json/wc/v3"
AUTH = ("ck_sandbox", "cs_sandbox")
MONEY = re.compile(r"-?\d+\.\d{2}")
GMT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


@dataclass
class Live:
    sandbox: WooCommerceSandbox
    store: Store
    url: str
    client: httpx.Client

    def get(self, path: str, **params: object) -> httpx.Response:
        response = self.client.get(API + path, params=params)
        assert response.status_code == 200, response.text
        return response


@contextmanager
def serving(sandbox: WooCommerceSandbox) -> Iterator[Live]:
    with serve_in_thread(sandbox) as server, httpx.Client(base_url=server.url, auth=AUTH, timeout=10.0) as client:
        yield Live(sandbox, sandbox.store, server.url, client)


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    """A sandbox no test writes to (writing tests make their own)."""
    with serving(create_woocommerce_app(generate_store(StoreSpec(seed=5, orders=300, tricky_share=0.2, products=24)))) as running:
        yield running


def every_page(live: Live, path: str, **params: object) -> list[dict]:
    items, page = [], 1
    while True:
        response = live.get(path, page=page, **params)
        items += response.json()
        if 'rel="next"' not in response.headers.get("link", ""):
            return items
        page += 1


def error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"code", "message", "data"} and body["data"]["status"] == response.status_code
    return response.status_code, body["code"]


# -- auth -------------------------------------------------------------------------------------


def test_the_key_is_accepted_as_basic_auth_or_in_the_query(live: Live) -> None:
    assert httpx.get(f"{live.url}{API}/orders", auth=AUTH).status_code == 200
    query = {"consumer_key": AUTH[0], "consumer_secret": AUTH[1]}
    assert httpx.get(f"{live.url}{API}/orders", params=query).status_code == 200


@pytest.mark.parametrize(("auth", "params", "code"), [
    (None, {}, "woocommerce_rest_cannot_view"),
    (("ck_wrong", AUTH[1]), {}, "woocommerce_rest_authentication_error"),
    ((AUTH[0], "cs_wrong"), {}, "woocommerce_rest_authentication_error"),
    (None, {"consumer_key": AUTH[0], "consumer_secret": "cs_wrong"}, "woocommerce_rest_authentication_error"),
])
def test_missing_or_wrong_keys_are_refused_like_woocommerce(live: Live, auth, params, code: str) -> None:
    response = httpx.get(f"{live.url}{API}/orders", auth=auth, params=params)
    assert error(response) == (401, code)


def test_unknown_routes_and_resources(live: Live) -> None:
    assert error(live.client.get("/wp-json/wc/v3/nothing")) == (404, "rest_no_route")
    assert error(live.client.get("/wp-json/wc/v2/orders")) == (404, "rest_no_route")
    assert error(live.client.get(f"{API}/orders/1")) == (404, "woocommerce_rest_shop_order_invalid_id")
    assert error(live.client.get(f"{API}/products/1")) == (404, "woocommerce_rest_product_invalid_id")


# -- orders: paging and filters --------------------------------------------------------------


def test_paging_headers_and_links(live: Live) -> None:
    first = live.get("/orders", per_page=40, orderby="id", order="asc")
    assert first.headers["X-WP-Total"] == "300" and first.headers["X-WP-TotalPages"] == "8"
    assert 'page=2>; rel="next"' in first.headers["Link"] and "prev" not in first.headers["Link"]
    middle = live.get("/orders", per_page=40, orderby="id", order="asc", page=4)
    assert 'page=3>; rel="prev"' in middle.headers["Link"] and 'page=5>; rel="next"' in middle.headers["Link"]
    last = live.get("/orders", per_page=40, orderby="id", order="asc", page=8)
    assert len(last.json()) == 20 and "next" not in last.headers["Link"]
    assert live.get("/orders", per_page=40, page=9).json() == []
    query = {"consumer_key": AUTH[0], "consumer_secret": AUTH[1], "per_page": 40}
    assert "cs_sandbox" not in httpx.get(f"{live.url}{API}/orders", params=query).headers["Link"]


def test_paging_by_modification_sees_every_order_once_oldest_first(live: Live) -> None:
    orders = every_page(live, "/orders", per_page=100, orderby="modified", order="asc")
    assert [o["id"] for o in orders] == [i for _, i in live.store.sorted_keys("updated_at")]
    stamps = [o["date_modified_gmt"] for o in orders]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize(("params", "name"), [
    ({"per_page": 101}, "per_page"), ({"per_page": 0}, "per_page"), ({"page": 0}, "page"),
    ({"orderby": "total"}, "orderby"), ({"order": "up"}, "order"), ({"modified_after": "yesterday"},
                                                                      "modified_after"),
    ({"status": "shipped"}, "status"),
])
def test_invalid_parameters_are_refused(live: Live, params: dict, name: str) -> None:
    response = live.client.get(f"{API}/orders", params=params)
    assert error(response) == (400, "rest_invalid_param")
    assert name in response.json()["data"]["params"]


def test_modified_after_is_strict_and_gmt_only_when_asked(live: Live) -> None:
    pivot = sorted(o.updated_at for o in live.store.orders)[150]
    stamp = pivot.strftime("%Y-%m-%dT%H:%M:%S")
    newer = every_page(live, "/orders", per_page=100, modified_after=stamp, dates_are_gmt="true")
    assert {o["id"] for o in newer} == {o.id for o in live.store.orders if o.updated_at > pivot}
    local = (pivot - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S")  # the site is at UTC-3
    assert every_page(live, "/orders", per_page=100, modified_after=local) == newer
    assert every_page(live, "/orders", per_page=100, modified_after=stamp + "Z") == newer


def test_status_filter(live: Live) -> None:
    completed = every_page(live, "/orders", per_page=100, status="completed")
    assert completed and all(o["status"] == "completed" for o in completed)
    assert len(every_page(live, "/orders", per_page=100, status="any")) == len(live.store.orders)


# -- orders: rendering -----------------------------------------------------------------------


def test_orders_render_in_woocommerces_shape(live: Live) -> None:
    for store_order in live.store.orders:
        if store_order.reason == "malformed":
            continue
        order = live.sandbox.render_order(store_order)
        assert isinstance(order["id"], int) and order["number"] == str(store_order.number)
        for field in ("total", "total_tax", "shipping_total", "discount_total", "discount_tax", "cart_tax"):
            assert MONEY.fullmatch(order[field]), field
        for item in order["line_items"]:
            assert all(MONEY.fullmatch(item[f]) for f in ("subtotal", "subtotal_tax", "total", "total_tax"))
            assert isinstance(item["price"], float) and isinstance(item["quantity"], int)
        assert GMT.fullmatch(order["date_created_gmt"]) and GMT.fullmatch(order["date_modified_gmt"])
        local = datetime.fromisoformat(order["date_created"]) + timedelta(hours=3)
        assert local == datetime.fromisoformat(order["date_created_gmt"])
        assert order["customer_id"] == (store_order.customer.id if store_order.customer else 0)
        assert set(order["shipping"]) >= {"first_name", "address_1", "city", "postcode", "country"}
        assert bool(order["shipping_lines"]) == store_order.requires_shipping


@pytest.mark.parametrize(("lifecycle", "statuses"), [
    (Lifecycle.OPEN, {"processing", "on-hold", "pending"}), (Lifecycle.FULFILLED, {"completed"}),
    (Lifecycle.CLOSED, {"completed", "refunded"}), (Lifecycle.CANCELLED, {"cancelled"}),
])
def test_status_follows_the_lifecycle(live: Live, lifecycle: Lifecycle, statuses: set[str]) -> None:
    shown = {live.sandbox.status(o) for o in live.store.orders if o.lifecycle is lifecycle}
    assert shown and shown <= statuses


def test_tricky_orders_render_their_trouble(live: Live) -> None:
    expected = live.sandbox.expected_reasons()
    assert set(expected.values()) == set(ALL_REASONS)
    for order_id, reason in expected.items():
        order = live.get(f"/orders/{order_id}").json()
        store_order = live.store.order(int(order_id))
        if reason == "malformed":
            amounts = [order["total"], order["shipping_total"], order["total_tax"]]
            amounts += [item["subtotal"] for item in order["line_items"]]
            assert any(not MONEY.fullmatch(a) for a in amounts), amounts
            assert any(a in (store_order.total, store_order.shipping, store_order.tax)
                       or a in [line.unit_price for line in store_order.lines]
                       for a in amounts if not MONEY.fullmatch(a)), "the store's bad string, as is"
        elif reason == "invalid_quantity":
            assert any(item["quantity"] <= 0 for item in order["line_items"])
        elif reason == "no_line_items":
            assert order["line_items"] == []
        elif reason == "unknown_currency":
            assert order["currency"] in RETIRED_CURRENCIES
        elif reason == "high_risk":
            assert {"key": "_clerk_risk", "value": "high"} in [
                {"key": m["key"], "value": m["value"]} for m in order["meta_data"]]
        elif reason == "incomplete_address":
            shipping = order["shipping"]
            assert "" in (shipping["address_1"], shipping["postcode"], shipping["city"])


def test_risk_other_than_none_is_in_the_meta_data(live: Live) -> None:
    for store_order in live.store.orders:
        keys = {m["key"]: m["value"] for m in live.sandbox.render_order(store_order)["meta_data"]}
        assert keys.get("_clerk_risk") == (None if store_order.risk is Risk.NONE else store_order.risk.value)


def test_tax_inclusive_lines_split_into_net_and_tax(live: Live) -> None:
    store_order = next(o for o in live.store.orders if o.taxes_included and o.tax != "0.00" and not o.reason)
    order = live.sandbox.render_order(store_order)
    for item, store_line in zip(order["line_items"], store_order.lines, strict=True):
        gross = Decimal(item["subtotal"]) + Decimal(item["subtotal_tax"])
        assert gross == Decimal(store_line.unit_price) * store_line.quantity
        assert Decimal(item["subtotal_tax"]) > 0


# -- catalog ----------------------------------------------------------------------------------


def test_products_and_variations_cover_every_sku(live: Live) -> None:
    products = every_page(live, "/products", per_page=25, orderby="id", order="asc")
    assert len(products) == len(live.store.products)
    skus = set()
    for product in products:
        assert product["type"] in ("simple", "variable") and MONEY.fullmatch(product["price"])
        if product["type"] == "variable":
            variations = live.get(f"/products/{product['id']}/variations", per_page=100).json()
            assert [v["id"] for v in variations] == product["variations"]
            skus |= {v["sku"] for v in variations}
        else:
            skus.add(product["sku"])
    assert skus == {v.sku for v in live.store.variants}
    assert live.get("/data/currencies/current").json()["code"] == "USD"


def test_products_by_sku_include_variations(live: Live) -> None:
    product = next(p for p in live.store.products if is_variable(p))
    variant = product.variants[0]
    (found,) = live.get("/products", sku=variant.sku).json()
    assert (found["id"], found["type"], found["parent_id"], found["sku"]) == (
        variant.id, "variation", product.id, variant.sku)
    assert live.get("/products", sku="NO-SUCH-SKU").json() == []


def test_products_modified_after(live: Live) -> None:
    newest = max(p.updated_at for p in live.store.products)
    stamp = (newest - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
    found = live.get("/products", modified_after=stamp, dates_are_gmt="true", per_page=100).json()
    assert {p["id"] for p in found} == {p.id for p in live.store.products if p.updated_at == newest}


# -- writes -----------------------------------------------------------------------------------


@pytest.fixture
def fresh() -> Iterator[Live]:
    with serving(create_woocommerce_app(generate_store(StoreSpec(seed=6, orders=120, products=12)))) as running:
        yield running


def test_writes_are_applied_shown_and_recorded(fresh: Live) -> None:
    order = next(o for o in fresh.store.orders if o.lifecycle is Lifecycle.OPEN and o.lines and not o.reason)
    path = f"{API}/orders/{order.id}"
    assert fresh.client.put(path, json={"status": "completed"}).json()["status"] == "completed"
    assert fresh.get(f"/orders/{order.id}").json()["status"] == "completed"
    assert error(fresh.client.put(path, json={"status": "shipped"})) == (400, "rest_invalid_param")

    note = fresh.client.post(f"{path}/notes", json={"note": "Packed", "customer_note": False})
    assert note.status_code == 201 and note.json()["note"] == "Packed"
    assert [n["note"] for n in fresh.get(f"/orders/{order.id}/notes").json()] == ["Packed"]

    line = order.lines[0]
    body = {"amount": "5.00", "reason": "damaged", "api_refund": False,
            "line_items": [{"id": line.id, "quantity": 1, "refund_total": "5.00"}],
            "meta_data": [{"key": "_clerk_idempotency_key", "value": "k1"}]}
    refund = fresh.client.post(f"{path}/refunds", json=body)
    assert refund.status_code == 201
    assert refund.json()["amount"] == "5.00" and refund.json()["meta_data"][0]["value"] == "k1"
    assert fresh.get(f"/orders/{order.id}/refunds").json()[0]["id"] == refund.json()["id"]
    assert fresh.get(f"/orders/{order.id}").json()["refunds"][0]["total"] == "-5.00"
    too_much = fresh.client.post(f"{path}/refunds", json={"amount": "1000000.00"})
    assert error(too_much) == (400, "woocommerce_rest_cannot_create_order_refund")

    simple = next(p for p in fresh.store.products if not is_variable(p))
    answer = fresh.client.put(f"{API}/products/{simple.id}", json={"manage_stock": True, "stock_quantity": 7})
    assert answer.json()["stock_quantity"] == 7
    variable = next(p for p in fresh.store.products if is_variable(p))
    variant = variable.variants[0]
    answer = fresh.client.put(f"{API}/products/{variable.id}/variations/{variant.id}", json={"stock_quantity": 3})
    assert answer.json()["stock_quantity"] == 3
    assert fresh.get("/products", sku=variant.sku).json()[0]["stock_quantity"] == 3

    assert [(method, path.rsplit("/", 1)[-1]) for method, path, _ in fresh.sandbox.writes] == [
        ("PUT", str(order.id)), ("POST", "notes"), ("POST", "refunds"), ("PUT", str(simple.id)),
        ("PUT", str(variant.id))]
    assert fresh.sandbox.writes[2][2] == body
    assert fresh.client.get("/sandbox/writes").json()[1][0] == "POST"


def test_a_full_refund_marks_the_order_refunded(fresh: Live) -> None:
    order = next(o for o in fresh.store.orders if o.lifecycle is Lifecycle.OPEN and not o.reason)
    fresh.client.post(f"{API}/orders/{order.id}/refunds", json={"amount": order.total})
    assert fresh.get(f"/orders/{order.id}").json()["status"] == "refunded"


def test_a_dropped_write_is_applied_but_its_answer_lost(fresh: Live) -> None:
    order = fresh.store.orders[0]
    fresh.client.post("/sandbox/drop-writes", json={"count": 1})
    with pytest.raises(httpx.TransportError):
        fresh.client.post(f"{API}/orders/{order.id}/notes", json={"note": "Lost answer"})
    assert [n["note"] for n in fresh.get(f"/orders/{order.id}/notes").json()] == ["Lost answer"]
    again = fresh.client.post(f"{API}/orders/{order.id}/notes", json={"note": "Kept answer"})
    assert again.status_code == 201, "only the next write is dropped"


# -- faults and control ------------------------------------------------------------------------


def test_faults_and_control_endpoints(fresh: Live) -> None:
    fresh.client.post("/sandbox/faults", json={"error_rate": 1.0})
    assert fresh.client.get(f"{API}/orders").status_code >= 500
    assert fresh.client.get("/sandbox/stats").status_code == 200, "control endpoints are never faulted"
    fresh.sandbox.set_faults(error_rate=0.0, throttle_rate=1.0)
    throttled = fresh.client.get(f"{API}/orders")
    assert error(throttled) == (429, "woocommerce_rest_too_many_requests")
    assert throttled.headers["Retry-After"] == "1"
    fresh.sandbox.set_faults(throttle_rate=0.0, malformed_rate=1.0)
    with pytest.raises(ValueError):
        fresh.client.get(f"{API}/orders").json()
    fresh.sandbox.set_faults(malformed_rate=0.0)
    stats = fresh.client.get("/sandbox/stats").json()
    assert stats["faults"] == {"error": 1, "throttle": 1, "malformed": 1} and stats["throttled"] == 1

    open_ids = {str(o.id) for o in fresh.store.orders if o.lifecycle is Lifecycle.OPEN and not o.reason}
    edited = fresh.client.post("/sandbox/edit", json={"count": 2}).json()["edited"]
    assert edited and set(edited) <= open_ids
    created = fresh.client.post("/sandbox/orders", json={"count": 3}).json()["created"]
    newest = every_page(fresh, "/orders", per_page=100, orderby="modified", order="desc")[:3]
    assert {str(o["id"]) for o in newest} == set(created)
    assert fresh.client.get("/sandbox/expected").json() == fresh.store.expected_reasons()
    assert fresh.client.post("/sandbox/edit", content=b"[1]").status_code == 400
    assert datetime.fromisoformat(newest[0]["date_modified_gmt"]).replace(tzinfo=UTC) > max(
        o.created_at for o in fresh.store.orders if str(o.id) not in created)


def test_timeouts_outlast_a_short_client_timeout() -> None:
    sandbox = create_woocommerce_app(generate_store(StoreSpec(seed=6, orders=20)),
                                     faults=Faults(timeout_rate=1.0, timeout_seconds=0.5))
    with serving(sandbox) as running, pytest.raises(httpx.TimeoutException):
        running.client.get(f"{API}/orders", timeout=0.1)
