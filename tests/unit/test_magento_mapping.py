"""Magento mapping: recorded-style payloads in, Clerk's types out; only `Unreadable` escapes."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.orders import Lifecycle, Risk, expected_total
from integrations.magento import mapping
from integrations.magento.mapping import ORDER_STATES, ShapeError, Track, parse_order
from integrations.protocols import Unreadable


def item(item_id: int = 101, sku: str | None = "MUG-SAGE", qty: Any = 2.0, price: Any = 12.5,
         **overrides: Any) -> dict[str, Any]:
    """An order item as `GET /V1/orders/{id}` prints it (prices tax-exclusive)."""
    node = {
        "item_id": item_id, "order_id": 42, "sku": sku, "name": "Café Crème Mug", "product_id": 7,
        "product_type": "simple", "is_virtual": 0, "qty_ordered": qty, "price": price,
        "base_price": price, "original_price": price, "price_incl_tax": 13.41, "row_total": 25,
        "row_total_incl_tax": 26.81, "tax_amount": 1.74, "discount_amount": 1.0, "base_discount_amount": 1.0,
        "discount_tax_compensation_amount": 0,
    }
    return node | overrides


def address(**overrides: Any) -> dict[str, Any]:
    return {
        "address_type": "shipping", "firstname": "Ada", "lastname": "Lovelace", "company": None,
        "street": ["12 Main St", "Apt 4"], "city": "Portland", "region": "Oregon", "region_code": "OR",
        "postcode": "97201", "country_id": "US", "telephone": "+15035550100",
    } | overrides


def order(**overrides: Any) -> dict[str, Any]:
    """An order in EUR on a USD website: base_* amounts differ from the order's."""
    payload = {
        "entity_id": 42, "increment_id": "000001042", "state": "processing", "status": "processing",
        "created_at": "2026-03-02 14:05:11", "updated_at": "2026-03-02 15:20:45",
        "order_currency_code": "EUR", "base_currency_code": "USD", "base_to_order_rate": 0.92,
        "grand_total": 30.73, "base_grand_total": 33.4, "subtotal": 25, "base_subtotal": 27.17,
        "shipping_amount": 5.0, "base_shipping_amount": 5.43, "shipping_incl_tax": 5.0,
        "tax_amount": 1.73, "base_tax_amount": 1.88, "discount_amount": -1.0, "base_discount_amount": -1.09,
        "is_virtual": 0, "customer_email": "ada@example.com", "customer_firstname": "Ada",
        "customer_lastname": "Lovelace", "customer_id": 9, "customer_is_guest": 0,
        "items": [item()],
        "billing_address": address(address_type="billing"),
        "extension_attributes": {"shipping_assignments": [
            {"shipping": {"address": address(), "method": "flatrate_flatrate"}, "items": []}]},
    }
    return payload | overrides


# ------------------------------------------------------------------------ states

# Every row of the table, spelled out here so a change to it is a change to this test.
STATE_ROWS = [
    ("new", "pending", Lifecycle.OPEN, Risk.NONE),
    ("pending_payment", "pending_payment", Lifecycle.OPEN, Risk.NONE),
    ("processing", "processing", Lifecycle.OPEN, Risk.NONE),
    ("processing", "fraud", Lifecycle.OPEN, Risk.HIGH),
    ("payment_review", "payment_review", Lifecycle.OPEN, Risk.HIGH),
    ("payment_review", "fraud", Lifecycle.OPEN, Risk.HIGH),
    ("holded", "holded", Lifecycle.OPEN, Risk.NONE),
    ("complete", "complete", Lifecycle.FULFILLED, Risk.NONE),
    ("closed", "closed", Lifecycle.CLOSED, Risk.NONE),
    ("canceled", "canceled", Lifecycle.CANCELLED, Risk.NONE),
    # A merchant's own status keeps its state's meaning.
    ("processing", "packing", Lifecycle.OPEN, Risk.NONE),
    ("complete", "delivered", Lifecycle.FULFILLED, Risk.NONE),
]


@pytest.mark.parametrize(("state", "status", "lifecycle", "risk"), STATE_ROWS)
def test_state_and_status_map_through_one_table(state: str, status: str, lifecycle: Lifecycle, risk: Risk) -> None:
    parsed = parse_order(order(state=state, status=status))
    assert (parsed.lifecycle, parsed.risk) == (lifecycle, risk)
    assert parsed.extra["state"] == state and parsed.extra["status"] == status


def test_the_table_has_no_row_the_test_does_not_name() -> None:
    named = {(state, status) for state, status, *_ in STATE_ROWS}
    for state, status in ORDER_STATES:
        if status is None:
            assert any(row_state == state for row_state, _ in named), state
        else:
            assert (state, status) in named, (state, status)
    assert {state for state, _ in ORDER_STATES} == {state for state, *_ in STATE_ROWS}


@pytest.mark.parametrize("state", ["shipped", "", None, 3])
def test_a_state_magento_does_not_have_is_malformed(state: Any) -> None:
    with pytest.raises(Unreadable) as caught:
        parse_order(order(state=state))
    assert caught.value.reason == "malformed" and caught.value.external_id == "42"


# ------------------------------------------------------------------------- money


def test_ids_numbers_times_and_order_currency_amounts() -> None:
    parsed = parse_order(order())
    assert parsed.channel == "magento"
    assert parsed.external_id == "42" and parsed.number == "000001042"
    assert parsed.placed_at == datetime(2026, 3, 2, 14, 5, 11, tzinfo=UTC)
    assert parsed.updated_at == datetime(2026, 3, 2, 15, 20, 45, tzinfo=UTC)
    # The order's currency and its amounts, never the base ones.
    assert parsed.currency == "EUR"
    assert (parsed.total, parsed.shipping, parsed.tax) == (Decimal("30.73"), Decimal("5.0"), Decimal("1.73"))
    assert parsed.extra["base_currency"] == "USD" and parsed.extra["base_total"] == "33.4"


def test_discounts_are_positive_though_the_order_keeps_them_negative() -> None:
    parsed = parse_order(order())
    assert parsed.discounts == Decimal("1.0")
    assert parsed.lines[0].discount == Decimal("1.0")
    assert expected_total(parsed) == Decimal("25.0") + Decimal("5.0") + Decimal("1.73") - Decimal("1.0")
    assert expected_total(parsed) == parsed.total


@pytest.mark.parametrize(("printed", "exact"), [
    (0.1, "0.1"), (19.99, "19.99"), (1234567.89, "1234567.89"), (0.07, "0.07"), (5, "5"), ("12.50", "12.50"),
])
def test_json_numbers_read_exactly(printed: Any, exact: str) -> None:
    parsed = parse_order(order(grand_total=printed, items=[item(price=printed, original_price=printed)]))
    assert parsed.total == Decimal(exact) and str(parsed.total) == exact
    assert parsed.lines[0].unit_price == Decimal(exact)


@pytest.mark.parametrize("bad", ["N/A", "12,50", "", "12.50.00", True, [1], {"amount": 1}, "NaN", "Infinity"])
@pytest.mark.parametrize("where", ["grand_total", "shipping_amount", "tax_amount", "discount_amount", "price"])
def test_an_amount_magento_would_never_print_is_malformed(bad: Any, where: str) -> None:
    payload = order(items=[item(price=bad, original_price=bad)]) if where == "price" else order(**{where: bad})
    with pytest.raises(Unreadable) as caught:
        parse_order(payload)
    assert caught.value.reason == "malformed" and caught.value.external_id == "42"
    assert str(bad) not in caught.value.detail or bad == "", "details never carry values"


def test_tax_inclusive_prices_are_recognised_from_the_items() -> None:
    # Catalog prices include tax: original_price is the gross price as entered.
    gross = item(price=20.83, price_incl_tax=24.99, original_price=24.99, discount_amount=0, qty=1.0)
    parsed = parse_order(order(items=[gross], grand_total=29.99, shipping_incl_tax=5.0, tax_amount=4.16,
                               discount_amount=0))
    assert parsed.taxes_included
    assert parsed.lines[0].unit_price == Decimal("24.99")
    assert expected_total(parsed) == parsed.total
    net = item(price=20.83, price_incl_tax=24.99, original_price=20.83)
    assert not parse_order(order(items=[net])).taxes_included
    assert parse_order(order(items=[net])).lines[0].unit_price == Decimal("20.83")


def test_an_item_on_special_price_does_not_decide_whether_prices_include_tax() -> None:
    special = item(price=16.67, price_incl_tax=20.0, original_price=24.99, qty=1.0)
    regular = item(item_id=102, price=20.83, price_incl_tax=24.99, original_price=24.99, qty=1.0)
    assert parse_order(order(items=[special, regular])).taxes_included
    assert not parse_order(order(items=[special])).taxes_included


def test_shipping_incl_tax_is_used_when_prices_include_tax() -> None:
    gross = item(price=10.0, price_incl_tax=12.0, original_price=12.0, discount_amount=0, qty=1.0)
    parsed = parse_order(order(items=[gross], shipping_amount=5.0, shipping_incl_tax=6.0))
    assert parsed.shipping == Decimal("6.0")


# ------------------------------------------------------------------------- items


def configurable(parent_id: int = 201, child_sku: str = "TEE-M", parent_sku: str = "TEE-M") -> list[dict[str, Any]]:
    parent = item(item_id=parent_id, sku=parent_sku, product_type="configurable", price=30.0,
                  original_price=30.0, name="Tee", qty=1.0, discount_amount=0)
    child = item(item_id=parent_id + 1, sku=child_sku, product_type="simple", price=0, original_price=0,
                 price_incl_tax=0, name="Tee-M", qty=1.0, discount_amount=0, parent_item_id=parent_id)
    return [parent, child]


def test_a_configurable_product_is_one_line_with_the_parents_price_and_the_childs_sku() -> None:
    parsed = parse_order(order(items=[item(), *configurable(parent_sku="TEE")]))
    assert [(line.sku, line.quantity, line.unit_price) for line in parsed.lines] == [
        ("MUG-SAGE", Decimal("2.0"), Decimal("12.5")), ("TEE-M", Decimal("1.0"), Decimal("30.0"))]
    assert parsed.lines[1].title == "Tee"


def test_a_child_without_its_parent_is_a_line_of_its_own() -> None:
    orphan = configurable()[1] | {"price": 9.0, "original_price": 9.0}
    parsed = parse_order(order(items=[orphan]))
    assert [(line.sku, line.unit_price) for line in parsed.lines] == [("TEE-M", Decimal("9.0"))]


def test_a_bundle_with_several_children_keeps_its_own_sku() -> None:
    bundle = item(item_id=300, sku="GIFT-BOX", product_type="bundle", qty=1.0)
    parts = [item(item_id=300 + n, sku=f"PART-{n}", parent_item_id=300, price=0, original_price=0, qty=1.0)
             for n in (1, 2)]
    parsed = parse_order(order(items=[bundle, *parts]))
    assert [line.sku for line in parsed.lines] == ["GIFT-BOX"]


@pytest.mark.parametrize("kind", ["virtual", "downloadable"])
def test_virtual_and_downloadable_items_need_no_shipping(kind: str) -> None:
    parsed = parse_order(order(items=[item(product_type=kind)], is_virtual=1))
    assert not parsed.lines[0].requires_shipping and not parsed.requires_shipping
    mixed = parse_order(order(items=[item(), item(item_id=102, product_type=kind)]))
    assert [line.requires_shipping for line in mixed.lines] == [True, False] and mixed.requires_shipping


@pytest.mark.parametrize(("qty", "read"), [(2.0, Decimal("2.0")), (0, Decimal(0)), (-1.0, Decimal("-1.0")),
                                           (1.5, Decimal("1.5")), ("2", None), (None, None), (True, None)])
def test_quantities_are_kept_as_read_for_the_quality_suite(qty: Any, read: Decimal | None) -> None:
    assert parse_order(order(items=[item(qty=qty)])).lines[0].quantity == read


def test_a_missing_or_empty_sku_is_no_sku() -> None:
    parsed = parse_order(order(items=[item(sku=None), item(item_id=102, sku="")]))
    assert [line.sku for line in parsed.lines] == [None, None]


def test_no_items_is_an_order_without_lines() -> None:
    assert parse_order(order(items=[])).lines == ()


# ---------------------------------------------------------------- address, customer


def test_ship_to_comes_from_the_first_shipping_assignment() -> None:
    ship_to = parse_order(order()).ship_to
    assert ship_to is not None
    assert (ship_to.name, ship_to.street1, ship_to.street2, ship_to.city, ship_to.province,
            ship_to.postal_code, ship_to.country) == ("Ada Lovelace", "12 Main St", "Apt 4", "Portland", "OR",
                                                      "97201", "US")


def test_a_virtual_order_has_no_ship_to() -> None:
    parsed = parse_order(order(extension_attributes={"shipping_assignments": [{"shipping": {}, "items": []}]}))
    assert parsed.ship_to is None
    assert parse_order(order(extension_attributes=None)).ship_to is None


@pytest.mark.parametrize("street", ["12 Main St", [1, 2], {"0": "x"}])
def test_a_street_that_is_not_a_list_of_strings_is_malformed(street: Any) -> None:
    payload = order()
    payload["extension_attributes"]["shipping_assignments"][0]["shipping"]["address"]["street"] = street
    with pytest.raises(Unreadable, match="street"):
        parse_order(payload)


def test_customers_and_guests() -> None:
    customer = parse_order(order()).customer
    assert customer is not None
    assert (customer.external_id, customer.email, customer.phone, customer.first_name) == (
        "9", "ada@example.com", "+15035550100", "Ada")
    guest = parse_order(order(customer_is_guest=1, customer_id=None)).customer
    assert guest is not None and guest.external_id is None and guest.email == "ada@example.com"


# ------------------------------------------------------------------ unreadable


@pytest.mark.parametrize(("field", "value"), [
    ("entity_id", None), ("entity_id", "42"), ("increment_id", None), ("created_at", "2026-03-02T14:05:11Z"),
    ("updated_at", None), ("items", {"0": {}}), ("grand_total", None), ("customer_is_guest", "no"),
])
def test_missing_or_mistyped_fields_are_malformed(field: str, value: Any) -> None:
    with pytest.raises(Unreadable) as caught:
        parse_order(order(**{field: value}))
    assert caught.value.reason == "malformed"
    assert caught.value.external_id == (None if field == "entity_id" else "42")


def test_a_payload_that_is_not_an_object_is_malformed() -> None:
    with pytest.raises(Unreadable):
        parse_order([order()])  # type: ignore[arg-type]


junk = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
        | st.lists(st.integers(), max_size=2))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from([
    ("entity_id",), ("state",), ("status",), ("grand_total",), ("discount_amount",), ("items",), ("items", 0),
    ("items", 0, "price"), ("items", 0, "parent_item_id"), ("items", 0, "sku"), ("items", 0, "qty_ordered"),
    ("items", 0, "product_type"), ("extension_attributes",), ("extension_attributes", "shipping_assignments"),
    ("billing_address",), ("customer_id",), ("created_at",), ("order_currency_code",),
]), value=junk)
def test_any_junk_is_read_or_refused_as_unreadable(path: tuple[Any, ...], value: Any) -> None:
    payload = copy.deepcopy(order())
    node: Any = payload
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    try:
        parse_order(payload)
    except Unreadable as exc:
        assert exc.reason == "malformed"


# ---------------------------------------------------------------- search criteria


def test_orders_search_filters_and_sorts_by_change() -> None:
    since = datetime(2026, 3, 2, 16, 5, 11, 999, tzinfo=timezone(timedelta(hours=2)))
    assert mapping.build_orders_search(since, None, 50) == {
        "searchCriteria[filterGroups][0][filters][0][field]": "updated_at",
        "searchCriteria[filterGroups][0][filters][0][value]": "2026-03-02 14:05:11",
        "searchCriteria[filterGroups][0][filters][0][conditionType]": "gteq",
        "searchCriteria[sortOrders][0][field]": "updated_at",
        "searchCriteria[sortOrders][0][direction]": "ASC",
        "searchCriteria[sortOrders][1][field]": "entity_id",
        "searchCriteria[sortOrders][1][direction]": "ASC",
        "searchCriteria[pageSize]": "50",
        "searchCriteria[currentPage]": "1",
    }
    assert "searchCriteria[filterGroups][0][filters][0][field]" not in mapping.build_orders_search(None, None, 5)


def test_later_pages_go_past_the_last_key_seen() -> None:
    after = (datetime(2026, 3, 2, 14, 5, 11, tzinfo=UTC), 42)
    params = mapping.build_orders_search(datetime(2026, 1, 1, tzinfo=UTC), after, 50)
    assert params["searchCriteria[filterGroups][0][filters][0][value]"] == "2026-03-02 14:05:11"
    assert params["searchCriteria[filterGroups][0][filters][0][conditionType]"] == "gteq"
    assert [params[f"searchCriteria[filterGroups][1][filters][{n}][{part}]"]
            for n in (0, 1) for part in ("field", "value", "conditionType")] == [
        "updated_at", "2026-03-02 14:05:11", "gt", "entity_id", "42", "gt"]
    assert params["searchCriteria[currentPage]"] == "1"


def test_cursors_round_trip_and_refuse_strangers() -> None:
    key = (datetime(2026, 3, 2, 14, 5, 11, tzinfo=UTC), 42)
    assert mapping.decode_cursor(mapping.encode_cursor(*key)) == key
    for bad in ["", "abc", mapping.encode_cursor(key[0], 42)[:-4], "WyJ4IiwgMV0="]:
        with pytest.raises(ValueError):
            mapping.decode_cursor(bad)


def test_search_results_are_read_or_refused() -> None:
    result = mapping.parse_search_result({"items": [{"entity_id": 1}], "total_count": 7,
                                          "search_criteria": {"filter_groups": []}})
    assert (result.items, result.total_count) == ([{"entity_id": 1}], 7)
    for bad in [[], {"items": []}, {"items": {}, "total_count": 1}, {"items": [], "total_count": True}]:
        with pytest.raises(ShapeError):
            mapping.parse_search_result(bad)


def test_newest_update_skips_unreadable_payloads() -> None:
    payloads = [order(), order(entity_id=43, updated_at="2026-03-03 01:00:00"), order(updated_at="yesterday"), 7]
    assert mapping.newest_update(payloads) == datetime(2026, 3, 3, 1, tzinfo=UTC)
    assert mapping.newest_update([]) is None


def test_error_messages_fill_their_placeholders() -> None:
    assert mapping.error_message({"message": "The consumer isn't authorized to access %resources.",
                                  "parameters": {"resources": "Magento_Sales::actions_view"}}) == \
        "The consumer isn't authorized to access Magento_Sales::actions_view."
    assert mapping.error_message({"message": "Most is %1.", "parameters": ["12.5"]}) == "Most is 12.5."
    assert mapping.error_message({"message": '"%fieldName" is required.',
                                  "parameters": [{"fieldName": "qty"}]}) == '"qty" is required.'
    assert mapping.error_message("<html>") == ""


# ----------------------------------------------------------------------- catalog


def test_products_become_catalog_items_in_the_base_currency() -> None:
    simple = {"id": 7, "sku": "MUG-SAGE", "name": "Mug", "price": 12.5, "type_id": "simple",
              "updated_at": "2026-03-01 10:00:00",
              "custom_attributes": [{"attribute_code": "barcode", "value": "4006381333931"}]}
    found = mapping.parse_product(simple, "USD")
    assert found is not None
    assert (found.sku, found.price, found.currency, found.barcode, found.channel_ref) == (
        "MUG-SAGE", Decimal("12.5"), "USD", "4006381333931", "7")
    assert found.updated_at == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert mapping.parse_product(simple | {"type_id": "configurable"}, "USD") is None
    assert mapping.parse_product(simple | {"price": "free"}, "USD") is None
    assert mapping.parse_product(simple | {"sku": " "}, "USD") is None


# ------------------------------------------------------------------- write-backs


def test_items_resolve_to_the_ids_magento_ships_by() -> None:
    payload = order(items=[item(), *configurable()])
    assert mapping.resolve_items(payload, {"TEE-M": 1, "MUG-SAGE": 2}) == [(201, 1), (101, 2)]
    assert mapping.every_item(payload) == [(101, 2), (201, 1)]
    assert mapping.every_item(payload, 0) == [(101, 0), (201, 0)]
    with pytest.raises(ValueError, match="NOPE"):
        mapping.resolve_items(payload, {"NOPE": 1})


def test_shipment_body_carries_tracks_and_the_key() -> None:
    body = mapping.build_shipment([(101, 2)], [Track("1Z999", "ups", "UPS Ground")], "label:42:1")
    assert body == {
        "items": [{"order_item_id": 101, "qty": 2}], "notify": False, "appendComment": True,
        "comment": {"comment": "Shipped by Clerk [clerk:label:42:1]", "is_visible_on_front": 0},
        "tracks": [{"track_number": "1Z999", "title": "UPS Ground", "carrier_code": "ups"}],
        "arguments": {"extension_attributes": {}},
    }


def test_refund_value_and_adjustments() -> None:
    # 25.00 row + 1.74 tax - 1.00 discount = 25.74 for 2 units; one unit is 12.87.
    payload = order()
    assert mapping.refund_value(payload, [(101, 2)]) == Decimal("25.74")
    assert mapping.refund_value(payload, [(101, 1)]) == Decimal("12.87")
    assert mapping.refund_value(payload, [(101, 0)]) == 0
    body = mapping.build_refund([(101, 1)], Decimal("-2.87"), "refund:7")
    assert body["arguments"] == {"shipping_amount": 0, "adjustment_positive": 0.0, "adjustment_negative": 2.87,
                                 "extension_attributes": {"return_to_stock_items": []}}
    assert body["comment"]["comment"].endswith("[clerk:refund:7]")
    assert mapping.build_refund([], Decimal("5"), "k")["arguments"]["adjustment_positive"] == 5.0


def test_comment_and_stock_bodies() -> None:
    assert mapping.build_comment(42, "Held: address", "hold:42") == {"statusHistory": {
        "comment": "Held: address [clerk:hold:42]", "is_customer_notified": 0, "is_visible_on_front": 0,
        "parent_id": 42}}
    assert mapping.build_stock({"A": 3, "B": 0}, "default") == {"sourceItems": [
        {"sku": "A", "source_code": "default", "quantity": 3, "status": 1},
        {"sku": "B", "source_code": "default", "quantity": 0, "status": 0}]}


def test_earlier_writes_are_found_by_key_or_tracking_number() -> None:
    shipments = [{"entity_id": 5, "comments": [{"comment": "Shipped by Clerk [clerk:a]"}], "tracks": []},
                 {"entity_id": 6, "comments": [], "tracks": [{"track_number": "1Z2"}]}]
    assert mapping.find_document(shipments, "a") == 5
    assert mapping.find_document(shipments, "b") is None
    assert mapping.find_document(shipments, "[clerk:a") is None, "a key is matched whole"
    assert mapping.find_tracked_shipment(shipments, ["1Z2"]) == 6
    assert mapping.find_tracked_shipment(shipments, ["1Z3"]) is None
    assert mapping.has_comment([{"comment": "note [clerk:k1]"}], "k1")
    assert not mapping.has_comment([{"comment": "note [clerk:k10]"}], "k1")
