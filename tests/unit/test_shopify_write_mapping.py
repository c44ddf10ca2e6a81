"""The pure functions behind Shopify's write-backs, and the sandbox SDL's write inputs
checked against the real 2026-10 schema (the object-type check does not cover inputs)."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal

import pytest
from graphql import GraphQLInputObjectType, build_client_schema

from integrations.protocols import Tracking, UpstreamError
from integrations.sandbox.shopify import load_schema
from integrations.shopify import mapping
from integrations.shopify.mapping import FulfillmentOrderLine, Refundable, ShapeError, WriteInFlight
from tests.shared_specs import shared_file

REAL_SCHEMA = shared_file("specs", "shopify", "admin_2026-10.json.gz")


def test_set_stock_input_sets_available_without_compare_and_names_the_key() -> None:
    built = mapping.build_set_stock_input({"gid://shopify/InventoryItem/1": 4}, "gid://shopify/Location/1", "s:1/a")
    assert built["name"] == "available" and built["reason"] == "correction"
    assert built["quantities"] == [{"inventoryItemId": "gid://shopify/InventoryItem/1",
                                    "locationId": "gid://shopify/Location/1", "quantity": 4,
                                    "changeFromQuantity": None}]
    assert "changeFromQuantity" in built["quantities"][0], "must be sent, even as null"
    assert built["referenceDocumentUri"] == "gid://clerk/StockSync/s%3A1%2Fa"


def test_user_errors_refuse_and_a_concurrent_key_retries() -> None:
    ok = {"inventorySetQuantities": {"inventoryAdjustmentGroup": {"id": "gid://shopify/InventoryAdjustmentGroup/9"},
                                     "userErrors": []}}
    assert mapping.parse_set_stock(ok) == "gid://shopify/InventoryAdjustmentGroup/9"
    refused = {"inventorySetQuantities": {"inventoryAdjustmentGroup": None, "userErrors": [
        {"field": ["input", "reason"], "message": "bad reason", "code": "INVALID_REASON"}]}}
    with pytest.raises(UpstreamError, match=r"input.reason: bad reason \(INVALID_REASON\)"):
        mapping.parse_set_stock(refused)
    busy = {"inventorySetQuantities": {"inventoryAdjustmentGroup": None, "userErrors": [
        {"field": None, "message": "busy", "code": "IDEMPOTENCY_CONCURRENT_REQUEST"}]}}
    with pytest.raises(WriteInFlight):
        mapping.parse_set_stock(busy)
    with pytest.raises(ShapeError):
        mapping.parse_set_stock({"inventorySetQuantities": None})


def test_inventory_item_is_the_exact_skus() -> None:
    data = {"productVariants": {"nodes": [{"id": "v1", "sku": "AB-10", "inventoryItem": {"id": "i1"}},
                                          {"id": "v2", "sku": "AB-1", "inventoryItem": {"id": "i2"}}]}}
    assert mapping.parse_inventory_item(data, "AB-1") == "i2"
    assert mapping.parse_inventory_item(data, "AB") is None
    assert mapping.build_sku_query('A"B') == 'sku:"A\\"B"'


def test_a_note_line_is_appended_once_keeping_what_staff_wrote() -> None:
    first = mapping.note_with("Gift wrap please", "Held:  address", "note:1")
    assert first == "Gift wrap please\nHeld: address (Clerk ref: note:1)"
    assert mapping.note_with(first, "Held: address", "note:1") is None
    assert mapping.note_with(first, "Other", "note:10") is not None, "a longer key is another key"
    assert mapping.note_with("", "Held", "k") == "Held (Clerk ref: k)"
    assert mapping.parse_order_note({"order": {"id": "o", "note": None}}) == ""
    with pytest.raises(UpstreamError, match="no such order"):
        mapping.parse_order_note({"order": None})


def _fulfillment_orders() -> dict:
    return {"order": {"id": "o", "fulfillmentOrders": {"nodes": [
        {"id": "fo1", "status": "CLOSED", "lineItems": {"nodes": [
            {"id": "x", "sku": "A", "remainingQuantity": 5, "lineItem": {"sku": "A"}}]}},
        {"id": "fo2", "status": "OPEN", "lineItems": {"nodes": [
            {"id": "l1", "sku": "A", "remainingQuantity": 2, "lineItem": {"sku": "A"}},
            {"id": "l2", "sku": None, "remainingQuantity": 1, "lineItem": {"sku": "B"}}]}},
        {"id": "fo3", "status": "IN_PROGRESS", "lineItems": {"nodes": [
            {"id": "l3", "sku": "A", "remainingQuantity": 3, "lineItem": {"sku": "A"}}]}}]}}}


def test_fulfilment_takes_units_from_open_fulfillment_orders() -> None:
    lines = mapping.parse_fulfillment_orders(_fulfillment_orders())
    assert [line.id for line in lines] == ["l1", "l2", "l3"] and lines[1].sku == "B"
    assert mapping.plan_fulfillment(lines, {"A": 4, "B": 1}) == [
        {"fulfillmentOrderId": "fo2", "fulfillmentOrderLineItems": [{"id": "l1", "quantity": 2},
                                                                     {"id": "l2", "quantity": 1}]},
        {"fulfillmentOrderId": "fo3", "fulfillmentOrderLineItems": [{"id": "l3", "quantity": 2}]}]
    assert mapping.plan_fulfillment(lines, {}) == [{"fulfillmentOrderId": "fo2"}, {"fulfillmentOrderId": "fo3"}]
    with pytest.raises(ValueError, match="cannot ship 6 of 'A'"):
        mapping.plan_fulfillment(lines, {"A": 6})
    with pytest.raises(ValueError, match="'C'"):
        mapping.plan_fulfillment(lines, {"C": 1})
    with pytest.raises(ValueError, match="nothing is left"):
        mapping.plan_fulfillment([FulfillmentOrderLine("fo", "l", "A", 0)], {})


def test_fulfillment_input_carries_tracking_and_never_notifies() -> None:
    plan = [{"fulfillmentOrderId": "fo2"}]
    assert mapping.build_fulfillment_input(plan, None) == {"lineItemsByFulfillmentOrder": plan,
                                                           "notifyCustomer": False}
    tracked = mapping.build_fulfillment_input(plan, Tracking("1Z", "UPS", "https://t.example/1Z"))
    assert tracked["trackingInfo"] == {"number": "1Z", "company": "UPS", "url": "https://t.example/1Z"}
    done = {"fulfillmentCreate": {"fulfillment": {"id": "gid://shopify/Fulfillment/3"}, "userErrors": []}}
    assert mapping.parse_create_fulfillment(done) == "gid://shopify/Fulfillment/3"


def test_an_earlier_fulfilment_is_recognised_by_tracking_or_by_its_units() -> None:
    def fulfillment(fid: str, numbers: list[str], units: dict[str, int], status: str = "SUCCESS") -> dict:
        return {"id": fid, "status": status, "trackingInfo": [{"number": n} for n in numbers],
                "fulfillmentLineItems": {"nodes": [{"quantity": q, "lineItem": {"sku": s}} for s, q in units.items()]}}

    data = {"order": {"id": "o", "fulfillments": [
        fulfillment("f0", ["1Z"], {"A": 1}, status="CANCELLED"), fulfillment("f1", ["1Z"], {"A": 1}),
        fulfillment("f2", [], {"A": 2})]}}
    assert mapping.find_fulfillment(data, {"A": 1}, Tracking("1Z", "UPS")) == "f1"
    assert mapping.find_fulfillment(data, {"A": 1}, Tracking("9X", "UPS")) is None
    assert mapping.find_fulfillment(data, {"A": 2}, None) == "f2"
    assert mapping.find_fulfillment(data, {"A": 1}, None) is None


def test_refund_input_returns_units_and_splits_the_amount_over_payments() -> None:
    data = {"order": {"id": "o", "lineItems": {"nodes": [{"id": "l1", "sku": "A", "quantity": 2}]},
                      "transactions": [
                          {"id": "t0", "kind": "AUTHORIZATION", "status": "SUCCESS", "gateway": "g",
                           "amountSet": {"shopMoney": {"amount": "50.0"}}},
                          {"id": "t1", "kind": "SALE", "status": "SUCCESS", "gateway": "shopify_payments",
                           "amountSet": {"shopMoney": {"amount": "10.0"}}},
                          {"id": "t2", "kind": "CAPTURE", "status": "FAILURE", "gateway": "g",
                           "amountSet": {"shopMoney": {"amount": "99.0"}}},
                          {"id": "t3", "kind": "CAPTURE", "status": "SUCCESS", "gateway": "gift_card",
                           "amountSet": {"shopMoney": {"amount": "5.0"}}}]}}
    refundable = mapping.parse_refundable(data)
    assert refundable == Refundable("o", {"A": ("l1", 2)}, [("t1", "shopify_payments", Decimal("10.0")),
                                                            ("t3", "gift_card", Decimal("5.0"))])
    built = mapping.build_refund_input(refundable, {"A": 1}, Decimal("12.00"), "damaged")
    assert built["refundLineItems"] == [{"lineItemId": "l1", "quantity": 1, "restockType": "NO_RESTOCK"}]
    assert [(t["parentId"], t["amount"], t["kind"]) for t in built["transactions"]] == [
        ("t1", "10.0", "REFUND"), ("t3", "2.00", "REFUND")]
    assert built["note"] == "damaged" and built["notify"] is False and built["orderId"] == "o"
    money_only = mapping.build_refund_input(refundable, {}, Decimal("1"), "")
    assert money_only["refundLineItems"] == [] and money_only["note"] is None
    for lines, amount in [({"A": 3}, Decimal(1)), ({"B": 1}, Decimal(1)), ({}, Decimal("15.01"))]:
        with pytest.raises(ValueError):
            mapping.build_refund_input(refundable, lines, amount, "")
    created = {"refundCreate": {"refund": {"id": "gid://shopify/Refund/4"}, "userErrors": []}}
    assert mapping.parse_create_refund(created) == "gid://shopify/Refund/4"


@pytest.mark.skipif(not REAL_SCHEMA.exists(), reason=f"Shopify's schema is not at {REAL_SCHEMA}")
def test_the_sandbox_write_inputs_and_directive_are_shopifys() -> None:
    with gzip.open(REAL_SCHEMA) as handle:
        real = build_client_schema(json.load(handle)["data"])
    ours = load_schema()
    for name, kind in ours.type_map.items():
        if isinstance(kind, GraphQLInputObjectType):
            theirs = real.type_map[name]
            assert isinstance(theirs, GraphQLInputObjectType), name
            for field_name, field in kind.fields.items():
                assert str(field.type) == str(theirs.fields[field_name].type), f"{name}.{field_name}"
    ours_directive, real_directive = ours.get_directive("idempotent"), real.get_directive("idempotent")
    assert real_directive is not None and ours_directive is not None
    assert {n: str(a.type) for n, a in ours_directive.args.items()} == {
        n: str(a.type) for n, a in real_directive.args.items()}
    assert list(ours_directive.locations) == list(real_directive.locations)
