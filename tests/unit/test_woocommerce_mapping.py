"""WooCommerce mapping: payloads shaped like the REST API v3 docs in, Clerk's types out."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from domain.orders import Lifecycle, Risk, address_complete, expected_total
from integrations.protocols import Unreadable
from integrations.woocommerce import mapping
from integrations.woocommerce.mapping import STATUS_TO_LIFECYCLE, Position, parse_order


def line(**overrides: Any) -> dict[str, Any]:
    item = {
        "id": 315, "name": "Woo Single #1", "product_id": 93, "variation_id": 0, "quantity": 2,
        "tax_class": "", "subtotal": "6.00", "subtotal_tax": "0.45", "total": "6.00", "total_tax": "0.45",
        "taxes": [{"id": 75, "total": "0.45", "subtotal": "0.45"}], "meta_data": [], "sku": "WOO-1", "price": 3,
    }
    return item | overrides


def order(**overrides: Any) -> dict[str, Any]:
    """The docs' order 727, with SKUs on both lines (values as WooCommerce spells them)."""
    payload = {
        "id": 727, "parent_id": 0, "number": "727", "order_key": "wc_order_58d2d042d1d", "created_via": "rest-api",
        "version": "3.0.0", "status": "processing", "currency": "USD",
        "date_created": "2017-03-22T16:28:02", "date_created_gmt": "2017-03-22T19:28:02",
        "date_modified": "2017-03-22T16:28:08", "date_modified_gmt": "2017-03-22T19:28:08",
        "discount_total": "0.00", "discount_tax": "0.00", "shipping_total": "10.00", "shipping_tax": "0.00",
        "cart_tax": "1.35", "total": "29.35", "total_tax": "1.35", "prices_include_tax": False,
        "customer_id": 0, "customer_ip_address": "", "customer_user_agent": "", "customer_note": "",
        "billing": {
            "first_name": "John", "last_name": "Doe", "company": "", "address_1": "969 Market", "address_2": "",
            "city": "San Francisco", "state": "CA", "postcode": "94103", "country": "US",
            "email": "john.doe@example.com", "phone": "(555) 555-5555",
        },
        "shipping": {
            "first_name": "John", "last_name": "Doe", "company": "", "address_1": "969 Market", "address_2": "",
            "city": "San Francisco", "state": "CA", "postcode": "94103", "country": "US",
        },
        "payment_method": "bacs", "payment_method_title": "Direct Bank Transfer", "transaction_id": "",
        "meta_data": [{"id": 13106, "key": "_download_permissions_granted", "value": "yes"}],
        "line_items": [
            line(),
            line(id=316, name="Ship Your Idea &ndash; Color: Black, Size: M Test", product_id=22, variation_id=23,
                 quantity=1, subtotal="12.00", subtotal_tax="0.90", total="12.00", total_tax="0.90", sku="Bar3",
                 price=12),
        ],
        "tax_lines": [], "shipping_lines": [{"id": 317, "method_title": "Flat Rate", "method_id": "flat_rate",
                                             "total": "10.00", "total_tax": "0.00", "taxes": [], "meta_data": []}],
        "fee_lines": [], "coupon_lines": [], "refunds": [],
    }
    return payload | overrides


# ------------------------------------------------------------------------ parse_order


def test_reads_the_docs_order() -> None:
    parsed = parse_order(order())
    assert (parsed.channel, parsed.external_id, parsed.number, parsed.currency) == ("woocommerce", "727", "727", "USD")
    assert parsed.placed_at == datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC), "the GMT time, not the site's"
    assert parsed.updated_at == datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC)
    assert parsed.lifecycle is Lifecycle.OPEN
    assert (parsed.total, parsed.shipping, parsed.tax, parsed.discounts) == (
        Decimal("29.35"), Decimal("10.00"), Decimal("1.35"), Decimal("0.00"))
    assert not parsed.taxes_included and parsed.requires_shipping
    first, second = parsed.lines
    assert (first.sku, first.title, first.quantity, first.unit_price, first.discount) == (
        "WOO-1", "Woo Single #1", Decimal(2), Decimal("3.00"), Decimal("0.00"))
    assert (second.sku, second.quantity, second.unit_price) == ("Bar3", Decimal(1), Decimal("12.00"))
    assert expected_total(parsed) == parsed.total
    assert parsed.ship_to is not None and address_complete(parsed.ship_to)
    assert (parsed.ship_to.name, parsed.ship_to.street1, parsed.ship_to.street2, parsed.ship_to.province,
            parsed.ship_to.postal_code, parsed.ship_to.country) == (
        "John Doe", "969 Market", None, "CA", "94103", "US")
    assert parsed.customer is not None
    assert (parsed.customer.external_id, parsed.customer.email, parsed.customer.first_name) == (
        None, "john.doe@example.com", "John")
    assert parsed.risk is Risk.NONE
    assert parsed.extra == {"status": "processing"}


EXPECTED_LIFECYCLES = [
    ("pending", Lifecycle.OPEN),
    ("processing", Lifecycle.OPEN),
    ("on-hold", Lifecycle.OPEN),
    ("completed", Lifecycle.FULFILLED),
    ("refunded", Lifecycle.CLOSED),
    ("cancelled", Lifecycle.CANCELLED),
    ("failed", Lifecycle.CANCELLED),
    ("trash", Lifecycle.CANCELLED),
    ("checkout-draft", Lifecycle.CANCELLED),
]


def test_the_status_table_has_exactly_the_core_statuses() -> None:
    assert STATUS_TO_LIFECYCLE == dict(EXPECTED_LIFECYCLES)


@pytest.mark.parametrize(("status", "lifecycle"), EXPECTED_LIFECYCLES)
def test_each_status_maps_to_its_lifecycle(status: str, lifecycle: Lifecycle) -> None:
    parsed = parse_order(order(status=status))
    assert parsed.lifecycle is lifecycle
    assert parsed.extra["status"] == status


def test_a_status_clerk_does_not_know_is_not_guessed_at() -> None:
    with pytest.raises(Unreadable) as caught:
        parse_order(order(status="shipped"))  # a plugin's own status
    assert caught.value.reason == "malformed" and "status" in caught.value.detail


def test_unit_prices_come_from_the_string_subtotal_never_the_float_price() -> None:
    items = [line(quantity=3, subtotal="10.00", total="9.00", price=3.0000000001),
             line(quantity=4, subtotal="99.96", total="99.96", price=24.99)]
    first, second = parse_order(order(line_items=items)).lines
    assert first.unit_price == Decimal("3.3333"), "to the 4 places Clerk stores when it does not divide"
    assert first.discount == Decimal("1.00")
    assert second.unit_price == Decimal("24.99") and str(second.unit_price) == "24.99"


def test_amounts_are_exact_decimals() -> None:
    parsed = parse_order(order(total="0.30", shipping_total="0.10", total_tax="0.20",
                               line_items=[line(quantity=1, subtotal="0.00", total="0.00")]))
    assert parsed.total == Decimal("0.30") and parsed.shipping + parsed.tax == parsed.total


def test_numbers_instead_of_strings_are_read_as_written() -> None:
    parsed = parse_order(order(total=29.35, shipping_total=10, line_items=[line(subtotal=0.1, total=0.1, quantity=1)]))
    assert (parsed.total, parsed.shipping, parsed.lines[0].unit_price) == (
        Decimal("29.35"), Decimal(10), Decimal("0.1"))


def test_tax_inclusive_prices_add_the_line_taxes_back() -> None:
    """A UK shop at 20% VAT: an item shown at 12.00, a 10% coupon, 6.00 shipping with 1.00 VAT."""
    payload = order(
        prices_include_tax=True, currency="GBP", total="16.80", total_tax="2.80",
        discount_total="1.00", discount_tax="0.20", shipping_total="5.00", shipping_tax="1.00",
        line_items=[line(quantity=1, subtotal="10.00", subtotal_tax="2.00", total="9.00", total_tax="1.80")],
    )
    parsed = parse_order(payload)
    (item,) = parsed.lines
    assert parsed.taxes_included
    assert (item.unit_price, item.discount) == (Decimal("12.00"), Decimal("1.20"))
    assert (parsed.shipping, parsed.discounts, parsed.tax) == (Decimal("6.00"), Decimal("1.20"), Decimal("2.80"))
    assert expected_total(parsed) == parsed.total


@pytest.mark.parametrize("bad", ["N/A", "12,50", "", "12.50.00", "NaN", True, {"amount": "1"}])
@pytest.mark.parametrize("field", ["total", "shipping_total", "total_tax", "discount_total"])
def test_an_amount_that_is_not_one_is_malformed(field: str, bad: Any) -> None:
    with pytest.raises(Unreadable) as caught:
        parse_order(order(**{field: bad}))
    assert (caught.value.reason, caught.value.external_id) == ("malformed", "727")
    assert caught.value.detail == f"{field} is not an amount"


@pytest.mark.parametrize("bad", ["N/A", "12,50", "", "12.50.00", None])
def test_a_line_subtotal_that_is_not_an_amount_is_malformed(bad: Any) -> None:
    with pytest.raises(Unreadable) as caught:
        parse_order(order(line_items=[line(subtotal=bad)]))
    assert caught.value.reason == "malformed" and caught.value.detail.startswith("line_items[0].subtotal")


def without(field: str) -> dict[str, Any]:
    payload = order()
    del payload[field]
    return payload


@pytest.mark.parametrize(("payload", "detail"), [
    ([], "payload is not an object"),
    (without("id"), "id is missing"),
    (order(id="727"), "id is not a positive integer"),
    (order(id=0), "id is not a positive integer"),
    (without("number"), "number is missing"),
    (order(number=" "), "number is empty"),
    (without("date_created_gmt"), "date_created_gmt is missing"),
    (order(date_created_gmt="22/03/2017"), "date_created_gmt is not a timestamp"),
    (order(date_modified_gmt=1490210888), "date_modified_gmt is not a string"),
    (without("total"), "total is missing"),
    (without("status"), "status is missing"),
    (order(line_items={"0": line()}), "line_items is not a list"),
    (order(line_items=["WOO-1"]), "line_items[0] is not an object"),
    (order(line_items=[line(sku=7)]), "line_items[0].sku is not a string"),
    (order(shipping="969 Market"), "shipping is not an object"),
    (order(billing=[]), "billing is not an object"),
    (order(customer_id="12"), "customer_id is not an integer"),
    (order(prices_include_tax="yes"), "prices_include_tax is not a boolean"),
    (order(meta_data={"key": "x"}), "meta_data is not a list"),
])
def test_unreadable_payloads_are_malformed(payload: Any, detail: str) -> None:
    with pytest.raises(Unreadable) as caught:
        parse_order(payload)
    assert caught.value.reason == "malformed"
    assert caught.value.detail == detail
    assert "John" not in caught.value.detail and "969" not in caught.value.detail


def test_the_external_id_is_kept_when_readable() -> None:
    with pytest.raises(Unreadable) as caught:
        parse_order(order(total="N/A"))
    assert caught.value.external_id == "727"
    with pytest.raises(Unreadable) as caught:
        parse_order(order(id="abc"))
    assert caught.value.external_id is None


@pytest.mark.parametrize("quantity", [0, -1, 1.5, "2", None, True])
def test_quantities_are_kept_as_read_for_the_quality_suite(quantity: Any) -> None:
    (item,) = parse_order(order(line_items=[line(quantity=quantity, subtotal="0.00", total="0.00")])).lines
    expected = None if quantity is None or isinstance(quantity, bool | str) else Decimal(str(quantity))
    assert item.quantity == expected


def test_unknown_currency_and_no_lines_pass_through_for_the_quality_suite() -> None:
    parsed = parse_order(order(currency="BYR", line_items=[]))
    assert (parsed.currency, parsed.lines) == ("BYR", ())


def test_a_line_without_a_sku_has_none() -> None:
    (item,) = parse_order(order(line_items=[line(sku="")])).lines
    assert item.sku is None


def test_a_guest_is_a_customer_without_an_id() -> None:
    guest = parse_order(order(customer_id=0)).customer
    assert guest is not None and guest.external_id is None and guest.email == "john.doe@example.com"
    member = parse_order(order(customer_id=12)).customer
    assert member is not None and member.external_id == "12"
    empty = dict.fromkeys(order()["billing"], "")
    assert parse_order(order(customer_id=0, billing=empty)).customer is None


@pytest.mark.parametrize("missing", ["address_1", "city", "postcode", "country"])
def test_an_empty_address_part_is_missing(missing: str) -> None:
    shipping = order()["shipping"] | {missing: ""}
    parsed = parse_order(order(shipping=shipping))
    assert parsed.ship_to is not None and not address_complete(parsed.ship_to)
    assert parsed.requires_shipping


def test_an_empty_address_is_none_and_a_virtual_order_needs_none() -> None:
    empty = dict.fromkeys(order()["shipping"], "")
    virtual = parse_order(order(shipping=empty, shipping_lines=[]))
    assert virtual.ship_to is None and not virtual.requires_shipping
    shipped = parse_order(order(shipping=empty))
    assert shipped.ship_to is None and shipped.requires_shipping, "a shipping line without an address"
    partial = parse_order(order(shipping=order()["shipping"] | {"address_1": ""}, shipping_lines=[]))
    assert partial.requires_shipping, "an address, even incomplete, means goods to send"
    assert parse_order(without("shipping_lines")).requires_shipping


@pytest.mark.parametrize(("value", "risk"), [
    ("high", Risk.HIGH), ("HIGH", Risk.HIGH), (" medium ", Risk.MEDIUM), ("low", Risk.LOW),
    ("pending", Risk.PENDING), ("none", Risk.NONE), ("fraud!", Risk.NONE), (87, Risk.NONE),
])
def test_risk_is_read_from_clerks_meta_entry(value: Any, risk: Risk) -> None:
    meta = order()["meta_data"] + [{"id": 1, "key": "_clerk_risk", "value": value}]
    assert parse_order(order(meta_data=meta)).risk is risk


@pytest.mark.parametrize(("stamp", "expected"), [
    ("2026-03-02T14:05:11", datetime(2026, 3, 2, 14, 5, 11, tzinfo=UTC)),
    ("2026-03-02T14:05:11Z", datetime(2026, 3, 2, 14, 5, 11, tzinfo=UTC)),
    ("2026-03-02T16:05:11+02:00", datetime(2026, 3, 2, 14, 5, 11, tzinfo=UTC)),
])
def test_gmt_times_are_utc_and_an_offset_is_honoured(stamp: str, expected: datetime) -> None:
    assert parse_order(order(date_created_gmt=stamp)).placed_at == expected


def test_a_missing_modification_time_falls_back_to_creation() -> None:
    parsed = parse_order(order(date_modified_gmt=None))
    assert parsed.updated_at == parsed.placed_at


def test_parsing_never_changes_the_payload() -> None:
    payload = order()
    before = copy.deepcopy(payload)
    parse_order(payload)
    assert payload == before


# -------------------------------------------------------------------------- requests


def test_orders_params_ask_for_changes_oldest_first_from_one_second_before() -> None:
    since = datetime(2026, 3, 2, 16, 5, 11, 750_000, tzinfo=timezone(timedelta(hours=2)))
    assert mapping.build_orders_params(since, 3, 50) == {
        "orderby": "modified", "order": "asc", "page": 3, "per_page": 50,
        "modified_after": "2026-03-02T14:05:10", "dates_are_gmt": "true",
    }
    assert "modified_after" not in mapping.build_orders_params(None, 1)
    assert mapping.build_orders_params(None, 1)["per_page"] == 100


def test_products_params() -> None:
    params = mapping.build_products_params(datetime(2026, 1, 1, tzinfo=UTC), 2)
    assert params == {"orderby": "id", "order": "asc", "page": 2, "per_page": 100,
                      "modified_after": "2025-12-31T23:59:59", "dates_are_gmt": "true"}


@pytest.mark.parametrize(("headers", "page", "expected"), [
    ({"Link": '<https://x.test/wp-json/wc/v3/orders?page=3&per_page=10>; rel="next"'}, 2, 3),
    ({"link": '<https://x.test/o?page=1>; rel="prev", <https://x.test/o?status=a,b&page=3>; rel="next"'}, 2, 3),
    ({"Link": '<https://x.test/o?page=1>; rel="prev"', "X-WP-TotalPages": "2"}, 2, None),
    ({"X-WP-TotalPages": "5", "X-WP-Total": "48"}, 4, 5),
    ({"X-WP-TotalPages": "5"}, 5, None),
    ({"X-WP-TotalPages": "0"}, 1, None),
    ({}, 1, None),
])
def test_next_page(headers: dict[str, str], page: int, expected: int | None) -> None:
    assert mapping.next_page(headers, page) == expected


def test_write_bodies() -> None:
    assert mapping.build_status_update("completed") == {"status": "completed"}
    with pytest.raises(ValueError):
        mapping.build_status_update("shipped")
    assert mapping.build_note("Shipped with UPS", "note:42") == {
        "note": "Shipped with UPS\n\nClerk ref: note:42", "customer_note": False}
    assert mapping.build_stock_batch([(93, 7), (94, 0)]) == {"update": [
        {"id": 93, "manage_stock": True, "stock_quantity": 7}, {"id": 94, "manage_stock": True, "stock_quantity": 0}]}
    body = mapping.build_refund(Decimal("30"), "damaged", [{"id": 315, "quantity": 1, "refund_total": "3.00"}],
                                "refund:RMA-1")
    assert body == {
        "amount": "30.00", "reason": "damaged", "line_items": [{"id": 315, "quantity": 1, "refund_total": "3.00"}],
        "api_refund": False, "api_restock": False,
        "meta_data": [{"key": "_clerk_idempotency_key", "value": "refund:RMA-1"}],
    }


def test_refund_line_items_refund_each_lines_share_after_discounts() -> None:
    payload = order(line_items=[line(quantity=3, subtotal="30.00", total="27.00", sku="A"), line(id=9, sku="B")])
    assert mapping.refund_line_items(payload, {"A": 2}) == [{"id": 315, "quantity": 2, "refund_total": "18.00"}]
    for lines in ({"Z": 1}, {"A": 4}, {"A": 0}):
        with pytest.raises(ValueError):
            mapping.refund_line_items(payload, lines)


def test_stock_is_batched_per_product_for_variations_and_read_only_where_managed() -> None:
    assert mapping.stock_place({"id": 93, "type": "simple", "parent_id": 0}) == ("products/batch", 93)
    assert mapping.stock_place({"id": 23, "type": "variation", "parent_id": 22}) == ("products/22/variations/batch", 23)
    assert mapping.stock_place({"type": "simple"}) is None
    assert mapping.shown_stock({"manage_stock": True, "stock_quantity": 4}) == 4
    assert mapping.shown_stock({"manage_stock": False, "stock_quantity": None}) is None
    assert mapping.build_sku_params(["A-1", "B-2"], 2) == {"sku": "A-1,B-2", "orderby": "id", "order": "asc",
                                                          "page": 2, "per_page": 100}


def test_a_batch_answer_names_the_items_it_refused() -> None:
    answer = {"update": [{"id": 93, "stock_quantity": 7},
                         {"id": 94, "error": {"code": "woocommerce_rest_product_invalid_id", "message": "Invalid ID."}}]}
    assert mapping.stock_batch_errors(answer) == ["94: Invalid ID."]
    assert mapping.stock_batch_errors({"update": []}) == []
    assert mapping.stock_batch_errors([{"id": 93}]) is None


def test_finding_what_clerk_wrote_before() -> None:
    refunds = [{"id": 1, "meta_data": []}, {"id": 2, "meta_data": [{"key": "_clerk_idempotency_key", "value": "k1"}]}]
    assert mapping.find_refund(refunds, "k1") == refunds[1]
    assert mapping.find_refund(refunds, "k2") is None
    notes = [{"id": 5, "note": "Shipped\n\nClerk ref: note:1"}, {"id": 6, "note": "Customer called"}]
    assert mapping.find_note(notes, "note:1") == notes[0]
    assert mapping.find_note(notes, "note:") is None and mapping.find_note(notes, "note:10") is None


# -------------------------------------------------------------------------- position


def at(seconds: int) -> str:
    return (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")


def test_position_moves_past_what_it_delivered_and_skips_it_when_seen_again() -> None:
    start = Position.start(datetime(2026, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC))
    assert start.after == datetime(2026, 1, 1, tzinfo=UTC)
    first = [{"id": 1, "date_modified_gmt": at(0)}, {"id": 2, "date_modified_gmt": at(5)},
             {"id": 3, "date_modified_gmt": at(5)}]
    fresh, position = start.advance(first)
    assert fresh == first and position == Position(datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC), frozenset({"2", "3"}))
    again = [{"id": 3, "date_modified_gmt": at(5)}, {"id": 4, "date_modified_gmt": at(5)},
             {"id": 1, "date_modified_gmt": at(0)}]
    fresh, position = position.advance(again)
    assert [p["id"] for p in fresh] == [4], "older and already seen ones are dropped"
    assert position.seen == frozenset({"2", "3", "4"})
    fresh, stuck = position.advance(again[:1])
    assert fresh == [] and stuck.page == 2, "nothing new: look further along the same query"
    assert Position.decode(stuck.encode()) == stuck


def test_a_cursor_that_is_not_ours_is_refused() -> None:
    for cursor in ("", "page=2", '{"after": 1}'):
        with pytest.raises(ValueError):
            Position.decode(cursor)


# --------------------------------------------------------------------------- catalog


def test_products_and_variations_become_catalog_items() -> None:
    product = {"id": 22, "name": "Ship Your Idea", "type": "variable", "sku": "", "price": "12.00",
               "categories": [{"id": 9, "name": "Clothing", "slug": "clothing"}]}
    variation = {"id": 23, "sku": "Bar3", "price": "12.00", "regular_price": "14.00", "global_unique_id": "4006381333931",
                 "date_modified_gmt": "2026-01-02T03:04:05",
                 "attributes": [{"id": 6, "name": "Color", "option": "Black"}, {"id": 0, "name": "Size", "option": "M"}]}
    item = mapping.parse_variation(variation, product, "EUR")
    assert item is not None
    assert (item.sku, item.title, item.price, item.currency, item.product_title, item.barcode, item.category,
            item.channel_ref, item.updated_at) == (
        "Bar3", "Ship Your Idea — Black, M", Decimal("12.00"), "EUR", "Ship Your Idea", "4006381333931",
        "Clothing", "products/22/variations/23", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert mapping.is_variable(product)
    simple = {"id": 93, "name": "Woo Single #1", "type": "simple", "sku": "WOO-1", "price": "", "regular_price": "3.00"}
    item = mapping.parse_product(simple, "EUR")
    assert item is not None and (item.title, item.price, item.barcode, item.category, item.channel_ref) == (
        "Woo Single #1", Decimal("3.00"), None, None, "products/93")
    assert mapping.parse_product(simple | {"sku": ""}, "EUR") is None
    assert mapping.parse_product(simple | {"regular_price": ""}, "EUR") is None
    assert not mapping.is_variable(simple)
