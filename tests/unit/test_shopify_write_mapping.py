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
from integrations.shopify.mapping import (
    Chunk,
    Fulfillment,
    FulfillmentOrder,
    FulfillmentOrderLine,
    LocationShipment,
    Refundable,
    ShapeError,
    WriteInFlight,
)
from tests.shared_specs import shared_file

REAL_SCHEMA = shared_file("specs", "shopify", "admin_2026-10.json.gz")


def test_set_stock_input_compares_with_the_count_read_and_names_the_key() -> None:
    quantities = [mapping.StockQuantity("gid://shopify/InventoryItem/1", 4, 7),
                  mapping.StockQuantity("gid://shopify/InventoryItem/2", 0, None)]
    built = mapping.build_set_stock_input(quantities, "gid://shopify/Location/1", "s:1/a")
    assert built["name"] == "available" and built["reason"] == "correction"
    assert built["quantities"] == [
        {"inventoryItemId": "gid://shopify/InventoryItem/1", "locationId": "gid://shopify/Location/1", "quantity": 4,
         "changeFromQuantity": 7},
        {"inventoryItemId": "gid://shopify/InventoryItem/2", "locationId": "gid://shopify/Location/1", "quantity": 0,
         "changeFromQuantity": None}]
    assert "changeFromQuantity" in built["quantities"][1], "must be sent, even as null"
    assert built["referenceDocumentUri"] == "gid://clerk/StockSync/s%3A1%2Fa"


def test_a_stock_write_key_is_the_same_for_the_same_quantities_only() -> None:
    one = [mapping.StockQuantity("i1", 4, 7), mapping.StockQuantity("i2", 0, None)]
    key = mapping.stock_write_key("sync:1", one)
    assert key.startswith("sync:1:") and key == mapping.stock_write_key("sync:1", one[::-1])
    assert key != mapping.stock_write_key("sync:1", [mapping.StockQuantity("i1", 4, 6), one[1]]), "compared with another"
    assert key != mapping.stock_write_key("sync:1", one[:1])
    assert key != mapping.stock_write_key("sync:2", one)


def test_user_errors_refuse_a_stale_count_is_read_again_and_a_concurrent_key_retries() -> None:
    ok = {"inventorySetQuantities": {"inventoryAdjustmentGroup": {"id": "gid://shopify/InventoryAdjustmentGroup/9"},
                                     "userErrors": []}}
    assert mapping.parse_set_stock(ok) is True
    stale = {"inventorySetQuantities": {"inventoryAdjustmentGroup": None, "userErrors": [
        {"field": ["input", "quantities", "1", "changeFromQuantity"], "message": "stale",
         "code": "CHANGE_FROM_QUANTITY_STALE"}]}}
    assert mapping.parse_set_stock(stale) is False
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


def _variant(sku: str, item: str, level: dict | None) -> dict:
    return {"sku": sku, "inventoryItem": {"id": item, "inventoryLevel": level}}


def test_stock_is_read_for_the_exact_skus_asked() -> None:
    available = {"quantities": [{"name": "available", "quantity": 6}]}
    data = {"productVariants": {"pageInfo": {"hasNextPage": True, "endCursor": "c1"}, "nodes": [
        _variant("AB-10", "i1", available), _variant("AB-1", "i2", available), _variant("CD", "i3", None)]}}
    page = mapping.parse_stock_page(data, {"AB-1", "CD"})
    assert page == Chunk([("AB-1", mapping.StockedItem("i2", 6)), ("CD", mapping.StockedItem("i3", None))], "c1", True)
    assert mapping.build_skus_query(['A"B', "C"]) == 'sku:"A\\"B" OR sku:"C"'
    broken = {"productVariants": {"pageInfo": {"hasNextPage": False}, "nodes": [
        _variant("AB-1", "i2", {"quantities": [{"name": "on_hand", "quantity": 6}]})]}}
    with pytest.raises(ShapeError):
        mapping.parse_stock_page(broken, {"AB-1"})


def test_a_note_line_is_appended_once_keeping_what_staff_wrote() -> None:
    first = mapping.note_with("Gift wrap please", "Held:  address", "note:1")
    assert first == "Gift wrap please\nHeld: address (Clerk ref: note:1)"
    assert mapping.note_with(first, "Held: address", "note:1") is None
    assert mapping.note_with(first, "Other", "note:10") is not None, "a longer key is another key"
    assert mapping.note_with("", "Held", "k") == "Held (Clerk ref: k)"
    assert mapping.parse_order_note({"order": {"id": "o", "note": None}}) == ""
    with pytest.raises(UpstreamError, match="no such order"):
        mapping.parse_order_note({"order": None})


L1, L2, L9, L10, L11 = (f"gid://shopify/Location/{n}" for n in (1, 2, 9, 10, 11))


def _connection(nodes: list, after: str | None = None) -> dict:
    return {"pageInfo": {"hasNextPage": after is not None, "endCursor": after}, "nodes": nodes}


def test_fulfillment_orders_are_read_a_page_at_a_time_with_where_each_goes_on() -> None:
    page = {"order": {"id": "o", "fulfillmentOrders": _connection([
        {"id": "fo1", "status": "IN_PROGRESS", "assignedLocation": {"location": {"id": L1}},
         "lineItems": _connection([{"id": "l1", "sku": None, "remainingQuantity": 2, "lineItem": {"sku": "A"}}], "l1"),
         "fulfillments": _connection([{"id": "f1"}])},
        {"id": "fo2", "status": "CLOSED", "assignedLocation": {"location": None},
         "lineItems": _connection([]), "fulfillments": _connection([{"id": "f2"}], "f2")}], "fo2")}}
    chunk = mapping.parse_fulfillment_orders(page)
    assert chunk.has_next and chunk.end_cursor == "fo2"
    assert chunk.items == [
        FulfillmentOrder("fo1", L1, True, [FulfillmentOrderLine("fo1", "l1", "A", 2)], ["f1"], "l1", None),
        FulfillmentOrder("fo2", "", False, [], ["f2"], None, "f2")]
    more_lines = {"fulfillmentOrder": {"id": "fo1", "lineItems": _connection(
        [{"id": "l2", "sku": "B", "remainingQuantity": 0, "lineItem": {"sku": "B"}}])}}
    assert mapping.parse_fulfillment_order_lines(more_lines).items == [FulfillmentOrderLine("fo1", "l2", "B", 0)]
    more_ids = {"fulfillmentOrder": {"id": "fo2", "fulfillments": _connection([{"id": "f3"}], "f3")}}
    assert mapping.parse_fulfillment_ids(more_ids) == Chunk(["f3"], "f3", True)
    with pytest.raises(UpstreamError, match="no such fulfillmentOrder"):
        mapping.parse_fulfillment_order_lines({"fulfillmentOrder": None})
    with pytest.raises(ShapeError, match="remainingQuantity"):
        mapping.parse_fulfillment_order_lines({"fulfillmentOrder": {"id": "fo1",
                                                                    "lineItems": _connection([{"id": "x"}])}})


def test_a_fulfillment_read_in_pages_adds_up_its_units() -> None:
    def page(status: str, units: list[tuple[str, int]], after: str | None) -> dict:
        return {"fulfillment": {"id": "f1", "status": status, "trackingInfo": [{"number": "1Z"}, {"number": None}],
                                "fulfillmentLineItems": _connection(
                                    [{"quantity": q, "lineItem": {"sku": s}} for s, q in units], after)}}

    first = mapping.parse_fulfillment(page("SUCCESS", [("A", 1), ("B", 2)], "c"), L2)
    last = mapping.parse_fulfillment(page("SUCCESS", [("A", 3)], None), L2)
    assert first.has_next and first.end_cursor == "c" and not last.has_next
    assert mapping.whole_fulfillment(first.items + last.items) == Fulfillment(
        "f1", L2, True, frozenset({"1Z"}), {"A": 4, "B": 2})
    assert not mapping.parse_fulfillment(page("CANCELLED", [], None), L2).items[0].active


def test_fulfilment_takes_units_from_open_lines_in_order() -> None:
    lines = [FulfillmentOrderLine("fo2", "l1", "A", 2), FulfillmentOrderLine("fo2", "l2", "B", 1),
             FulfillmentOrderLine("fo3", "l3", "A", 3)]
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


def _fo(fulfillment_order_id: str, location_id: str, *lines: tuple[str, str, int], open: bool = True
        ) -> FulfillmentOrder:
    return FulfillmentOrder(fulfillment_order_id, location_id, open,
                            [FulfillmentOrderLine(fulfillment_order_id, *line) for line in lines], [])


def _part(location_id: str, made: list[str], fulfillment_order_id: str = "", *items: tuple[str, int]
          ) -> LocationShipment:
    to_ship = [{"fulfillmentOrderId": fulfillment_order_id,
                "fulfillmentOrderLineItems": [{"id": i, "quantity": q} for i, q in items]}] if items else []
    return LocationShipment(location_id, made, to_ship)


def test_a_shipment_is_split_by_location_taking_units_from_the_lowest_location_id_first() -> None:
    orders = [_fo("fo10", L10, ("a10", "A", 5)), _fo("fo9", L9, ("a9", "A", 1), ("b9", "B", 2)),
              _fo("fo1", L1, ("a1", "A", 9), open=False)]
    assert mapping.plan_shipment(orders, [], {"A": 3, "B": 2}, None) == [
        _part(L9, [], "fo9", ("a9", 1), ("b9", 2)), _part(L10, [], "fo10", ("a10", 2))]
    with pytest.raises(ValueError, match="cannot ship 7 of 'A': 6 left"):
        mapping.plan_shipment(orders, [], {"A": 7}, None)
    with pytest.raises(ValueError, match="cannot ship 0 of 'B'"):
        mapping.plan_shipment(orders, [], {"A": 1, "B": 0}, None)


def test_a_location_shipped_from_earlier_is_not_shipped_from_again() -> None:
    wanted = {"A": 3, "B": 2}
    # Location 9 shipped its part (A 1, B 2) before the answer was lost; location 10 has not.
    after = [_fo("fo10", L10, ("a10", "A", 5)), _fo("fo9", L9, ("a9", "A", 0), ("b9", "B", 0), open=False)]
    tracked = Fulfillment("f9", L9, True, frozenset({"1Z"}), {"A": 1, "B": 2})
    assert mapping.plan_shipment(after, [tracked], wanted, Tracking("1Z", "UPS")) == [
        _part(L9, ["f9"]), _part(L10, [], "fo10", ("a10", 2))]
    untracked = Fulfillment("f9", L9, True, frozenset(), {"A": 1, "B": 2})
    assert mapping.plan_shipment(after, [untracked], wanted, None) == [
        _part(L9, ["f9"]), _part(L10, [], "fo10", ("a10", 2))]
    # Both locations of an untracked shipment shipped (the second answer lost too), a third has not.
    third = [*after[1:], _fo("fo10", L10, ("a10", "A", 3), open=False), _fo("fo11", L11, ("c11", "C", 1))]
    second = Fulfillment("f10", L10, True, frozenset(), {"A": 2})
    assert mapping.plan_shipment(third, [untracked, second], {**wanted, "C": 1}, None) == [
        _part(L9, ["f9"]), _part(L10, ["f10"]), _part(L11, [], "fo11", ("c11", 1))]
    done = [_fo("fo10", L10, ("a10", "A", 3)), after[1]]
    both = [tracked, Fulfillment("f10", L10, True, frozenset({"1Z"}), {"A": 2})]
    assert mapping.plan_shipment(done, both, wanted, Tracking("1Z", "UPS")) == [_part(L9, ["f9"]), _part(L10, ["f10"])]
    cancelled = Fulfillment("f9", L9, False, frozenset({"1Z"}), {"A": 1, "B": 2})
    with pytest.raises(ValueError, match="cannot ship 2 of 'B'"):
        mapping.plan_shipment(after, [cancelled], wanted, Tracking("1Z", "UPS"))


def test_an_untracked_shipment_of_other_units_is_not_taken_for_this_one() -> None:
    # An earlier shipment took one A from location 9; this one wants 3 A and 2 B.
    orders = [_fo("fo10", L10, ("a10", "A", 5)), _fo("fo9", L9, ("a9", "A", 1), ("b9", "B", 2))]
    other = Fulfillment("g9", L9, True, frozenset(), {"A": 1})
    assert mapping.plan_shipment(orders, [other], {"A": 3, "B": 2}, None) == [
        _part(L9, [], "fo9", ("a9", 1), ("b9", 2)), _part(L10, [], "fo10", ("a10", 2))]


def test_everything_left_ships_per_location_and_once() -> None:
    orders = [_fo("fo2", L2, ("l", "A", 1)), _fo("fo1", L1, ("m", "B", 2)), _fo("fo1b", L1, ("n", "C", 0))]
    assert mapping.plan_shipment(orders, [], {}, None) == [
        LocationShipment(L1, [], [{"fulfillmentOrderId": "fo1"}]),
        LocationShipment(L2, [], [{"fulfillmentOrderId": "fo2"}])]
    shipped = [_fo("fo2", L2, ("l", "A", 1)), _fo("fo1", L1, ("m", "B", 0), open=False)]
    earlier = Fulfillment("f1", L1, True, frozenset({"1Z"}), {"B": 2})
    assert mapping.plan_shipment(shipped, [earlier], {}, Tracking("1Z", "UPS")) == [
        LocationShipment(L1, ["f1"], []), LocationShipment(L2, [], [{"fulfillmentOrderId": "fo2"}])]
    with pytest.raises(ValueError, match="nothing is left"):
        mapping.plan_shipment(shipped[1:], [], {}, None)


def test_fulfillment_input_carries_tracking_and_never_notifies() -> None:
    plan = [{"fulfillmentOrderId": "fo2"}]
    assert mapping.build_fulfillment_input(plan, None) == {"lineItemsByFulfillmentOrder": plan,
                                                           "notifyCustomer": False}
    tracked = mapping.build_fulfillment_input(plan, Tracking("1Z", "UPS", "https://t.example/1Z"))
    assert tracked["trackingInfo"] == {"number": "1Z", "company": "UPS", "url": "https://t.example/1Z"}
    done = {"fulfillmentCreate": {"fulfillment": {"id": "gid://shopify/Fulfillment/3"}, "userErrors": []}}
    assert mapping.parse_create_fulfillment(done) == "gid://shopify/Fulfillment/3"


def test_refund_input_returns_units_and_splits_the_amount_over_payments_in_the_buyers_currency() -> None:
    def paid(tid: str, kind: str, status: str, gateway: str, amount: str) -> dict:
        # The shop's amount differs: the refund must be read, and made, in the buyer's.
        return {"id": tid, "kind": kind, "status": status, "gateway": gateway, "amountSet": {
            "presentmentMoney": {"amount": amount, "currencyCode": "EUR"},
            "shopMoney": {"amount": str(Decimal(amount) * 2), "currencyCode": "USD"}}}

    data = {"order": {"id": "o", "presentmentCurrencyCode": "EUR",
                      "lineItems": {"nodes": [{"id": "l1", "sku": "A", "quantity": 2}]},
                      "transactions": [paid("t0", "AUTHORIZATION", "SUCCESS", "g", "50.0"),
                                       paid("t1", "SALE", "SUCCESS", "shopify_payments", "10.0"),
                                       paid("t2", "CAPTURE", "FAILURE", "g", "99.0"),
                                       paid("t3", "CAPTURE", "SUCCESS", "gift_card", "5.0")]}}
    refundable = mapping.parse_refundable(data)
    assert refundable == Refundable("o", "EUR", {"A": ("l1", 2)}, [("t1", "shopify_payments", Decimal("10.0")),
                                                                   ("t3", "gift_card", Decimal("5.0"))])
    built = mapping.build_refund_input(refundable, {"A": 1}, Decimal("12.00"), "damaged")
    assert built["currency"] == "EUR"
    assert built["refundLineItems"] == [{"lineItemId": "l1", "quantity": 1, "restockType": "NO_RESTOCK"}]
    assert [(t["parentId"], t["amount"], t["kind"]) for t in built["transactions"]] == [
        ("t1", "10.0", "REFUND"), ("t3", "2.00", "REFUND")]
    assert built["note"] == "damaged" and built["notify"] is False and built["orderId"] == "o"
    money_only = mapping.build_refund_input(refundable, {}, Decimal("1"), "")
    assert money_only["refundLineItems"] == [] and money_only["note"] is None
    for lines, amount in [({"A": 3}, Decimal(1)), ({"B": 1}, Decimal(1)), ({}, Decimal("15.01"))]:
        with pytest.raises(ValueError):
            mapping.build_refund_input(refundable, lines, amount, "")
    with pytest.raises(ShapeError, match="presentmentCurrencyCode"):
        mapping.parse_refundable({"order": {**data["order"], "presentmentCurrencyCode": None}})
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
