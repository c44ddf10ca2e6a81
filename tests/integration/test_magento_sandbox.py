"""The Magento sandbox over loopback: routes, auth, searchCriteria, shapes, writes, faults."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from domain.orders import Lifecycle
from domain.reasons import ALL_REASONS
from integrations.sandbox.faults import Faults
from integrations.sandbox.magento import NO_ROUTE, NOT_AUTHORIZED, MagentoSandbox, create_magento_app
from integrations.sandbox.magento.render import LOCAL_CURRENCY, RATES, entity_id
from integrations.sandbox.server import serve_in_thread
from integrations.sandbox.store import Store, StoreSpec, generate_store

TOKEN = "magento_test_token"
ALL = "searchCriteria[pageSize]=500"


@dataclass
class Live:
    sandbox: MagentoSandbox
    store: Store
    http: httpx.Client

    def get(self, path: str, params: Any = None, store: str = "default") -> httpx.Response:
        return self.http.get(f"/rest/{store}/V1{path}", params=params)

    def ok(self, path: str, params: Any = None) -> Any:
        response = self.get(path, params)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.http.post(f"/rest/default/V1{path}", json=body)


@contextmanager
def serving(store: Store, faults: Faults | None = None) -> Iterator[Live]:
    sandbox = create_magento_app(store, token=TOKEN, faults=faults)
    with serve_in_thread(sandbox) as server, httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5) as http:
        yield Live(sandbox, store, http)


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    """A sandbox no test writes to."""
    with serving(generate_store(StoreSpec(seed=21, orders=300, tricky_share=0.2))) as running:
        yield running


def search(field: str, value: str, condition: str = "eq", snake: bool = False, **extra: str) -> dict[str, str]:
    groups, kind = ("filter_groups", "condition_type") if snake else ("filterGroups", "conditionType")
    prefix = f"searchCriteria[{groups}][0][filters][0]"
    return {f"{prefix}[field]": field, f"{prefix}[value]": value, f"{prefix}[{kind}]": condition,
            "searchCriteria[pageSize]": "500"} | extra


# ------------------------------------------------------------------- routes, auth


def test_a_wrong_token_gets_magentos_401(live: Live) -> None:
    response = live.http.get("/rest/default/V1/orders?" + ALL, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json() == {"message": NOT_AUTHORIZED, "parameters": {"resources": "Magento_Sales::actions_view"}}


def test_an_unknown_store_code_is_no_route(live: Live) -> None:
    response = live.get("/orders?" + ALL, store="nosuchstore")
    assert (response.status_code, response.json()) == (404, {"message": NO_ROUTE})
    assert live.get("/nothing-here").json() == {"message": NO_ROUTE}


def test_the_store_less_scope_is_the_default_store_view(live: Live) -> None:
    response = live.http.get("/rest/V1/store/storeConfigs")
    assert response.status_code == 200
    assert [(c["code"], c["base_currency_code"]) for c in response.json()] == [("default", "USD")]


def test_search_criteria_are_required(live: Live) -> None:
    response = live.get("/orders")
    assert response.status_code == 400
    assert response.json() == {"message": '"%fieldName" is required. Enter and try again.',
                               "parameters": {"fieldName": "searchCriteria"}}


def test_an_unknown_filter_field_or_condition_is_refused(live: Live) -> None:
    assert live.get("/orders", search("colour", "red")).status_code == 400
    assert live.get("/orders", search("entity_id", "1", "about")).status_code == 400


def test_a_missing_order_is_magentos_404(live: Live) -> None:
    response = live.get("/orders/999999")
    assert response.status_code == 404
    assert "doesn't exist" in response.json()["message"]


# --------------------------------------------------------------- search criteria


def test_both_spellings_of_search_criteria_agree(live: Live) -> None:
    camel = live.ok("/orders", search("state", "processing"))
    snake = live.ok("/orders", search("state", "processing", snake=True))
    assert camel["total_count"] == snake["total_count"] > 0
    assert [o["entity_id"] for o in camel["items"]] == [o["entity_id"] for o in snake["items"]]
    assert camel["search_criteria"]["filter_groups"][0]["filters"][0] == {
        "field": "state", "value": "processing", "condition_type": "eq"}


@pytest.mark.parametrize(("condition", "value", "keep"), [
    ("eq", "10", lambda i: i == 10), ("neq", "10", lambda i: i != 10), ("gt", "250", lambda i: i > 250),
    ("gteq", "250", lambda i: i >= 250), ("lt", "5", lambda i: i < 5), ("lteq", "5", lambda i: i <= 5),
    ("in", "3,7,11", lambda i: i in (3, 7, 11)), ("nin", "3,7,11", lambda i: i not in (3, 7, 11)),
])
def test_condition_types(live: Live, condition: str, value: str, keep: Any) -> None:
    found = live.ok("/orders", search("entity_id", value, condition))
    wanted = sorted(i for i in (entity_id(o) for o in live.store.orders) if keep(i))
    assert sorted(o["entity_id"] for o in found["items"]) == wanted
    assert found["total_count"] == len(wanted)


def test_like_on_increment_ids(live: Live) -> None:
    found = live.ok("/orders", search("increment_id", "%0001010", "like"))
    assert [o["increment_id"] for o in found["items"]] == ["000001010"]


def test_filter_groups_are_and_ed_and_filters_within_a_group_or_ed(live: Live) -> None:
    params = {
        "searchCriteria[filterGroups][0][filters][0][field]": "entity_id",
        "searchCriteria[filterGroups][0][filters][0][value]": "5",
        "searchCriteria[filterGroups][0][filters][0][conditionType]": "lteq",
        "searchCriteria[filterGroups][0][filters][1][field]": "entity_id",
        "searchCriteria[filterGroups][0][filters][1][value]": "295",
        "searchCriteria[filterGroups][0][filters][1][conditionType]": "gteq",
        "searchCriteria[filterGroups][1][filters][0][field]": "entity_id",
        "searchCriteria[filterGroups][1][filters][0][value]": "2",
        "searchCriteria[filterGroups][1][filters][0][conditionType]": "gt",
        "searchCriteria[sortOrders][0][field]": "entity_id",
        "searchCriteria[sortOrders][0][direction]": "DESC",
        "searchCriteria[pageSize]": "500",
    }
    found = live.ok("/orders", params)
    assert [o["entity_id"] for o in found["items"]] == [300, 299, 298, 297, 296, 295, 5, 4, 3]


def test_updated_at_filters_compare_times(live: Live) -> None:
    middle = sorted(o.updated_at for o in live.store.orders)[150].strftime("%Y-%m-%d %H:%M:%S")
    found = live.ok("/orders", search("updated_at", middle, "gteq", **{
        "searchCriteria[sortOrders][0][field]": "updated_at", "searchCriteria[sortOrders][0][direction]": "ASC"}))
    stamps = [o["updated_at"] for o in found["items"]]
    assert stamps == sorted(stamps) and stamps[0] >= middle
    assert found["total_count"] == sum(1 for o in live.store.orders if o.updated_at.strftime("%Y-%m-%d %H:%M:%S")
                                       >= middle)


def test_a_page_past_the_end_is_the_last_page_again(live: Live) -> None:
    def page(number: int) -> dict[str, Any]:
        return live.ok("/orders", {"searchCriteria[pageSize]": "70", "searchCriteria[currentPage]": str(number)})

    last, beyond = page(5), page(9)
    assert last["total_count"] == beyond["total_count"] == 300
    assert [o["entity_id"] for o in last["items"]] == [o["entity_id"] for o in beyond["items"]] == list(
        range(281, 301))
    assert beyond["search_criteria"]["current_page"] == 9, "the request is echoed as asked"


# ------------------------------------------------------------------------ shapes


def test_orders_in_magentos_shape(live: Live) -> None:
    found = live.ok("/orders", {"searchCriteria[pageSize]": "500"})["items"]
    assert len(found) == 300
    for payload in found:
        assert isinstance(payload["entity_id"], int)
        assert payload["increment_id"] == f"{payload['entity_id'] + 1000:09d}"
        assert len(payload["created_at"]) == 19 and payload["created_at"][10] == " "
        discount = payload["discount_amount"]
        assert isinstance(discount, str) or discount <= 0, "the order's discount is negative"
    # (An unknown_currency order has a currency of its own too, at rate 1: its amounts are the store's.)
    foreign = [p for p in found if p["base_to_order_rate"] != 1]
    assert foreign, "some orders are placed in a currency of their own"
    for payload in foreign:
        rate = RATES[payload["order_currency_code"]]
        assert Decimal(str(payload["base_to_order_rate"])) == rate
        assert payload["order_currency_code"] in LOCAL_CURRENCY.values()
        base, local = Decimal(str(payload["base_grand_total"])), Decimal(str(payload["grand_total"]))
        assert base != local and abs(base * rate - local) <= Decimal("0.05") * len(payload["items"])


def test_configurable_products_are_a_parent_and_a_child_item(live: Live) -> None:
    orders = live.ok("/orders", {"searchCriteria[pageSize]": "500"})["items"]
    pairs = [(parent, child) for payload in orders for parent, child in zip(payload["items"], payload["items"][1:])
             if child.get("parent_item_id") == parent["item_id"]]
    assert pairs
    for parent, child in pairs:
        assert parent["product_type"] == "configurable" and child["product_type"] == "simple"
        assert parent["sku"] == child["sku"] and child["price"] == 0
        assert parent["qty_ordered"] == child["qty_ordered"]


def test_a_malformed_order_prints_its_bad_amount_as_a_string(live: Live) -> None:
    bad = [key for key, reason in live.sandbox.expected_reasons().items() if reason == "malformed"]
    assert bad
    for key in bad:
        payload = live.ok(f"/orders/{key}")
        amounts = [payload.get(k) for k in ("grand_total", "shipping_amount", "tax_amount")]
        amounts += [i.get("price") for i in payload["items"]]
        assert any(isinstance(amount, str) for amount in amounts)


def test_expected_reasons_are_keyed_by_entity_id_and_cover_the_contract(live: Live) -> None:
    expected = live.sandbox.expected_reasons()
    assert set(expected.values()) == set(ALL_REASONS)
    for key in expected:
        assert live.ok(f"/orders/{key}")["entity_id"] == int(key)


def test_products_are_simples_and_configurable_parents(live: Live) -> None:
    products = live.ok("/products", {"searchCriteria[pageSize]": "500"})["items"]
    simple = {p["sku"] for p in products if p["type_id"] in ("simple", "virtual")}
    assert simple == {v.sku for v in live.store.variants}
    parents = [p for p in products if p["type_id"] == "configurable"]
    assert parents and all(p["extension_attributes"]["configurable_product_links"] for p in parents)


# ------------------------------------------------------------------------ writes


@pytest.fixture()
def writable() -> Iterator[Live]:
    with serving(generate_store(StoreSpec(seed=22, orders=120, tricky_share=0.1))) as running:
        yield running


def open_order(live: Live) -> Any:
    return next(o for o in live.store.orders if o.lifecycle is Lifecycle.OPEN and not o.reason
                and o.requires_shipping and o.id % 2 == 0)


def test_shipping_everything_completes_the_order(writable: Live) -> None:
    order = open_order(writable)
    key = entity_id(order)
    before = writable.ok(f"/orders/{key}")["updated_at"]
    response = writable.post(f"/order/{key}/ship", {"items": [], "tracks": [
        {"track_number": "1Z1", "title": "UPS", "carrier_code": "ups"}]})
    assert response.status_code == 200 and isinstance(response.json(), int)
    after = writable.ok(f"/orders/{key}")
    assert (after["state"], after["status"]) == ("complete", "complete") and after["updated_at"] > before
    shipments = writable.ok("/shipments", search("order_id", str(key)))
    assert [t["track_number"] for t in shipments["items"][0]["tracks"]] == ["1Z1"]
    again = writable.post(f"/order/{key}/ship", {"items": []})
    assert again.status_code == 400 and again.json()["message"] == "The order does not allow a shipment to be created."


def test_a_refund_is_capped_at_what_was_paid(writable: Live) -> None:
    order = open_order(writable)
    key = entity_id(order)
    total = Decimal(str(writable.ok(f"/orders/{key}")["grand_total"]))
    too_much = writable.post(f"/order/{key}/refund", {"items": [], "arguments": {"adjustment_positive": 10_000}})
    assert too_much.status_code == 400 and too_much.json()["message"] == "The most money available to refund is %1."
    refunded = writable.post(f"/order/{key}/refund", {"items": []})
    assert refunded.status_code == 200
    memo = writable.ok("/creditmemos", search("order_id", str(key)))["items"][0]
    assert Decimal(str(memo["grand_total"])) == total, "every item and the shipping, by default"
    assert writable.ok(f"/orders/{key}")["state"] == "closed"


def test_comments_join_the_order_history(writable: Live) -> None:
    key = entity_id(open_order(writable))
    body = {"statusHistory": {"comment": "hello", "is_customer_notified": 0, "is_visible_on_front": 0,
                              "parent_id": key}}
    assert writable.post(f"/orders/{key}/comments", body).json() is True
    assert [c["comment"] for c in writable.ok(f"/orders/{key}/comments")["items"]] == ["hello"]
    assert writable.ok(f"/orders/{key}")["status_histories"][0]["comment"] == "hello"
    missing = writable.post(f"/orders/{key}/comments", {"statusHistory": {"comment": "x"}})
    assert missing.status_code == 400 and missing.json()["parameters"] == {"fieldName": "is_customer_notified"}


def test_source_items_are_saved(writable: Live) -> None:
    sku = writable.store.variants[0].sku
    body = {"sourceItems": [{"sku": sku, "source_code": "default", "quantity": 7, "status": 1}]}
    assert writable.post("/inventory/source-items", body).json() == []
    found = writable.ok("/inventory/source-items", search("sku", sku))
    assert [(i["quantity"], i["status"]) for i in found["items"]] == [(7.0, 1)]


def test_a_lost_response_still_applies_the_write(writable: Live) -> None:
    key = entity_id(open_order(writable))
    rates = writable.http.post("/sandbox/faults", json={"lose_write_responses": 1}).json()
    assert rates["lose_write_responses"] == 1
    with pytest.raises(httpx.TransportError):
        writable.post(f"/order/{key}/ship", {"items": []})
    assert [w["kind"] for w in writable.sandbox.writes] == ["shipment"]
    assert writable.sandbox.stats["lost_responses"] == 1
    assert writable.ok("/shipments", search("order_id", str(key)))["total_count"] == 1


def test_edits_and_new_orders_are_seen_by_entity_id(writable: Live) -> None:
    edited = writable.sandbox.edit(2)
    created = writable.sandbox.add_orders(2)
    assert edited and len(created) == 2
    newest = writable.ok("/orders", {"searchCriteria[sortOrders][0][field]": "updated_at",
                                     "searchCriteria[sortOrders][0][direction]": "DESC",
                                     "searchCriteria[pageSize]": str(len(edited) + len(created))})
    assert {str(o["entity_id"]) for o in newest["items"]} == set(edited) | set(created)


# ------------------------------------------------------------------------ faults


def test_faults_hit_the_api_but_never_the_control_endpoints() -> None:
    with serving(generate_store(StoreSpec(seed=23, orders=20)), Faults(error_rate=1.0)) as running:
        assert running.get("/orders?" + ALL).status_code in (500, 502, 503, 504)
        assert running.http.get("/sandbox/stats").json()["faults"] == {"error": 1}
        assert running.http.post("/sandbox/faults", json={"error_rate": 0}).json()["error_rate"] == 0
        assert running.get("/orders?" + ALL).status_code == 200
        throttled = running.http.post("/sandbox/faults", json={"throttle_rate": 1}).json()
        assert throttled["throttle_rate"] == 1
        response = running.get("/orders?" + ALL)
        assert response.status_code == 429 and response.headers["retry-after"] == "1"
